"""A server's background build, alone in a process (for kill -9 tests): ``python -m tests.app.jobs_worker ARGS``.

Runs the default-index job machinery (:class:`mmssl.app.jobs.JobRunner` over two staged steps, as
``serve --build-missing`` does) with a stub code model into ``--folder``, then writes
``{"encoded": N, "state": ...}`` to ``--report``. With ``--kill-after-batches B`` the model SIGKILLs
the process on its call B + 1, so nothing gets to clean up and no report is written.
"""

import argparse
import json
from pathlib import Path

from mmssl.app.defaults import _stage_step
from mmssl.app.jobs import BuildJob, JobRunner
from tests.index.stub_model import StubModel, code_items

ITEMS, FIRST, CHUNK = 60, 25, 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--kill-after-batches", type=int, default=None)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    model = StubModel("code", 16, kill_after_batches=args.kill_after_batches)
    items = code_items(ITEMS)
    labels = ["first", "rest"]
    steps = [_stage_step(args.folder, model, labels, 0, lambda: items[:FIRST], {}, "functions", chunk_size=CHUNK),
             _stage_step(args.folder, model, labels, 1, lambda: items, {}, "functions", chunk_size=CHUNK)]
    job = BuildJob("code", "code", steps)
    JobRunner([job], [(job, s) for s in steps], log=lambda line: None).run()
    args.report.write_text(json.dumps({"encoded": len(model.encoded), "state": job.state}))


if __name__ == "__main__":
    main()
