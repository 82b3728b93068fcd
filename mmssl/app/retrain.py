"""Retrain from the Indexes tab: fine-tune an index's model on the index's 👍 votes, embed the index's
items again with the new model into a NEW index, and evaluate old and new on the voted queries held
out of training: one background job (:class:`~mmssl.app.jobs.JobRunner`) with progress (steps done /
total, rate, ETA), nothing replaced. Switching the search tab to the new index is the user's click.

    plan = RetrainPlan(index="my-photos", index_folder=Path("indexes/my-photos"), new_index="my-photos-v2",
                       start_model=Path("models/clip-default"), new_model=Path("models/clip-default-my-photos-v2"))
    retrain = Retrain(plan, on_indexed=lambda plan: service.open_index(plan.new_index))
    retrain.runner().start()   # retrain.comparison: both rows of MRR / Recall@K once the job is done

Plain Python over the library (:mod:`mmssl.index.feedback_pairs`, :mod:`mmssl.recipes.finetune`,
:mod:`mmssl.index.reindex`, :mod:`mmssl.index.user_eval`); :class:`~mmssl.app.search.SearchService`
checks the names and runs it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmssl.app.jobs import BuildJob, JobRunner, Step

WATCH_SECONDS = 0.5


@dataclass
class RetrainPlan:
    """Which index's votes train which model into which new model and index."""

    index: str
    index_folder: Path
    new_index: str
    start_model: Path
    new_model: Path
    steps: int = 50
    batch_size: int = 16
    kind: str = "image"  # the tab: "image" or "code"


def _last_step(metrics: Path) -> int | None:
    """The last step the trainer logged (``metrics.jsonl``), None before the first."""
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _watch_steps(metrics: Path, total: int, report, stop: threading.Event) -> None:
    while not stop.wait(WATCH_SECONDS):
        step = _last_step(metrics)
        if step is not None:
            report(step, total)


@dataclass
class Retrain:
    """One retrain: its plan, its job (for the tables) and, once done, the comparison."""

    plan: RetrainPlan
    corpus: str = ""
    held_out: int = 0  # voted queries never trained on
    comparison: dict | None = None  # evaluate_index_queries-shaped: rows "before" and "after"
    on_indexed: Callable[[RetrainPlan], None] | None = None  # the new index is built (the app loads it here)
    job: BuildJob = field(init=False)

    def __post_init__(self):
        self.job = BuildJob(self.plan.new_index, self.plan.kind, [
            Step("fine-tuning on the 👍 votes", self._fine_tune, unit="steps"),
            Step("indexing with the new model", self._reindex, ready="all items"),
            Step("evaluating old and new on held-out votes", self._evaluate)])

    def runner(self, log=print) -> JobRunner:
        return JobRunner([self.job], [(self.job, step) for step in self.job.steps], log=log)

    def _fine_tune(self, report) -> str:
        from mmssl.data.user import DataSpec
        from mmssl.index.feedback_pairs import feedback_corpus
        from mmssl.recipes.finetune import finetune_dual_encoder, user_train_config

        plan = self.plan
        self.corpus, data, _ = feedback_corpus(DataSpec("feedback", plan.index_folder))
        self.held_out = data.pairs.get("valid", 0) + data.pairs.get("test", 0)
        train = user_train_config(plan.new_model, max_steps=plan.steps, batch_size=plan.batch_size, log_every=1,
                                  progress=False)
        report(0, plan.steps)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_steps, args=(Path(train.run_dir) / "metrics.jsonl", plan.steps,
                                                              report, stop), daemon=True)
        watcher.start()
        try:
            finetune_dual_encoder(plan.start_model, [self.corpus], plan.new_model, train,
                                  command=["mmssl serve (Retrain button)", plan.index, plan.new_index])
        finally:
            stop.set()
            watcher.join()
        report(plan.steps, plan.steps)
        return f"fine-tuned {plan.start_model} on {data.pairs['train']} 👍 pairs into {plan.new_model}"

    def _reindex(self, report) -> str:
        from mmssl.index.reindex import reindex
        from mmssl.model import BUILD_ENCODING, load_model

        model = load_model(self.plan.new_model, encoding=BUILD_ENCODING)
        index = reindex(self.plan.index_folder, model, self.plan.new_index, on_progress=report)
        count = index.manifest.count
        index.close()
        if self.on_indexed is not None:
            self.on_indexed(self.plan)
        return f"indexed {count} items with {self.plan.new_model}"

    def _evaluate(self, report) -> str:
        self.comparison = compare(self.plan, self.corpus)
        rows = self.comparison["rows"]
        return f"MRR on {self.comparison['num_queries']} voted queries: {rows[0]['mrr']:.3f} -> {rows[1]['mrr']:.3f}"


def _model_row(folder: Path, model_path: Path, queries, label: str) -> tuple[dict, dict]:
    from mmssl.index import load_index, read_manifest
    from mmssl.index.user_eval import evaluate_index_queries
    from mmssl.model import load_model

    model = load_model(model_path, encoding=read_manifest(folder).encoding)
    index = load_index(folder, model)
    try:
        results = evaluate_index_queries(index, model, queries, baselines=False, index_name=folder.name)
    finally:
        index.close()
    row = {**results["rows"][0], "system": f"{label}: {Path(model_path).name} on {folder.name}"}
    return row, results


def compare(plan: RetrainPlan, corpus: str) -> dict:
    """Old model on the old index and new model on the new one, on the voted queries held out of training
    (all voted queries, said in a note, when none was held out)."""
    from mmssl.index import index_folder
    from mmssl.index.feedback_pairs import held_out_queries

    queries, notes = held_out_queries(corpus), []
    if not queries:
        queries = held_out_queries(corpus, splits=("train",))
        notes.append("no voted query was held out (too few votes), so these are the queries it trained on: "
                     "vote on more queries for a fair comparison")
    else:
        notes.append("voted queries held out of training (split by query)")
    before, _ = _model_row(plan.index_folder, plan.start_model, queries, "before")
    after, results = _model_row(index_folder(plan.new_index), plan.new_model, queries, "after")
    return {**results, "index": f"{plan.index} → {plan.new_index}", "rows": [before, after], "notes": notes}
