"""Run one index build in a fresh process (for kill -9 tests): ``python -m tests.index.build_worker ARGS``.

Builds ``--items`` stub code items into ``--folder`` and writes ``{"encoded": N}`` (items the model
embedded) to ``--report``; with ``--kill-after-batches B`` the stub model SIGKILLs the process on
its call B + 1, so the report is never written.
"""

import argparse
import json
from pathlib import Path

from mmssl.index import build_index
from tests.index.stub_model import StubModel, code_items


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--chunk-size", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--kill-after-batches", type=int, default=None)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    model = StubModel("code", 16, kill_after_batches=args.kill_after_batches)
    build_index(args.folder, model, code_items(args.items), chunk_size=args.chunk_size, batch_size=args.batch_size,
                progress=False)
    args.report.write_text(json.dumps({"encoded": len(model.encoded)}))


if __name__ == "__main__":
    main()
