"""Background builds behind the page: a search answers from the built stage while the rest builds, a
server killed mid-build resumes without re-embedding finished chunks, and progress reads as done/total,
rate and ETA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mmssl.app import AppConfig, SearchService
from mmssl.app.defaults import _stage_step
from mmssl.app.jobs import BuildJob, JobRunner, Step
from mmssl.index import code_folder_items, load_index
from mmssl.index.build import work_folder

ROOT = Path(__file__).resolve().parents[2]


def test_a_search_answers_from_the_built_stage_while_the_rest_builds(app_root, tmp_path):
    name = str(tmp_path / "indexes" / "projects")
    config = AppConfig(indexes=[name], code_model=str(app_root["code_model"]), image_model=str(tmp_path / "none"))
    service = SearchService.load(config, dict(app_root["models"]))
    assert service.names("code") == []  # nothing built yet
    model = service.model_for("code")
    textkit = list(code_folder_items(app_root["projects"]["textkit"], repo="textkit")[0])
    numkit = list(code_folder_items(app_root["projects"]["numkit"], repo="numkit")[0])
    release = threading.Event()

    def everything():
        release.wait(60)  # the second stage is "still embedding" until the test has searched
        return textkit + numkit

    labels = ["textkit", "all"]
    steps = [_stage_step(name, model, labels, 0, lambda: textkit, {"type": "test"}, "functions"),
             _stage_step(name, model, labels, 1, everything, {"type": "test"}, "functions")]
    job = BuildJob("projects", "code", steps)
    runner = JobRunner([job], [(job, s) for s in steps], on_ready=lambda j, s: service.open_index(name),
                       log=lambda line: None)
    service.jobs = runner.start()
    deadline = time.monotonic() + 60
    while (job.searchable, job.current) != ("textkit", "all") and time.monotonic() < deadline:  # stage 2 began
        time.sleep(0.05)
    assert job.searchable == "textkit" and job.state == "running" and job.current == "all"
    assert "is building in the background" in runner.notice("code") and "searching textkit" in runner.notice("code")

    result = service.search_code("split a string into shell-like words", k=50)
    assert result.hits and {h.metadata["repo"] for h in result.hits} == {"textkit"}  # only the built part
    assert service.packages() == ["textkit"]

    release.set()
    assert runner.wait(60) and job.state == "done"
    assert service.packages() == ["numkit", "textkit"]
    assert service.search_code("the median of some numbers", k=5, package="numkit").hits
    assert runner.notice("code") == ""
    assert load_index(name).manifest.count == len(textkit) + len(numkit)


def _run_worker(folder: Path, report: Path, kill_after_batches: int | None = None):
    command = [sys.executable, "-m", "tests.app.jobs_worker", "--folder", str(folder), "--report", str(report)]
    if kill_after_batches is not None:
        command += ["--kill-after-batches", str(kill_after_batches)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_server_killed_mid_build_resumes_without_re_embedding_finished_chunks(tmp_path):
    folder, report = tmp_path / "indexes" / "code", tmp_path / "report.json"
    # 60 items in chunks of 10, one model call per chunk: stage 0 = 3 calls (25 items), then stage 1
    # embeds chunks 2 and 3 and is killed on chunk 4
    killed = _run_worker(folder, report, kill_after_batches=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not report.exists()
    assert load_index(folder).manifest.count == 25  # the first stage is in place and searchable
    assert len(list(work_folder(folder).glob("chunk-*.json"))) == 4

    resumed = _run_worker(folder, report)
    assert resumed.returncode == 0, resumed.stderr
    outcome = json.loads(report.read_text())
    assert outcome == {"encoded": 20, "state": "done"}  # stage 0 skipped; only chunks 4 and 5 embedded
    assert load_index(folder).manifest.count == 60 and not work_folder(folder).exists()


def test_progress_reads_as_done_total_rate_and_eta(monkeypatch):
    clock = iter([100.0, 110.0])
    monkeypatch.setattr("mmssl.app.jobs._now", lambda: next(clock))
    step = Step("libraries", lambda report: "", ready="libraries")
    job = BuildJob("code", "code", [step])
    assert job.summary() == "waiting for the jobs before it"
    job.begin(step)
    job.report(0, 3000)
    job.report(500, 3000)  # 500 items in 10 s
    assert job.rate == 50.0 and job.eta_seconds == 50.0
    assert job.summary() == "libraries 500 / 3,000 (50 items/s, about 50 s left)"


def test_a_failed_step_is_reported_and_the_other_jobs_go_on():
    def boom(report):
        raise RuntimeError("corpus fetch failed: no network")

    ran = []
    bad = BuildJob("emoji-clipart", "image", [Step("clipart corpus", boom), Step("never", lambda r: ran.append(1))])
    good = BuildJob("code", "code", [Step("standard library", lambda r: ran.append(2) or "", ready="standard library")])
    lines = []
    runner = JobRunner([bad, good], [(bad, bad.steps[0]), (good, good.steps[0]), (bad, bad.steps[1])],
                       log=lines.append)
    runner.run()
    assert ran == [2] and bad.state == "failed" and good.state == "done"
    assert bad.summary() == "failed: clipart corpus: corpus fetch failed: no network"
    assert any("clipart corpus failed" in line for line in lines)
    assert runner.rows()[0] == {"index": "emoji-clipart", "tab": "Images", "searchable now": "nothing yet",
                                "status": "failed: clipart corpus: corpus fetch failed: no network"}
