"""First-run timings of ``make demo``: from starting the server on a machine where ``make test`` has run
(the emoji sources fetched, no corpus built, no index) to the first text->image result, the first
standard-library code result, and complete indexes.

    python bench/first_run.py                      # fresh data and index folders under /tmp
    python bench/first_run.py --data-dir /tmp/fr   # keep them (a second run measures a warm start)

It fetches the emoji sources into the fresh data folder first (what ``make test`` does, not timed),
then runs ``python -m mmssl serve --build-missing`` on a free loopback port and asks the page's HTTP
API every couple of seconds. Prints a table and writes ``bench/results/first_run.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.app import HTTPSession, free_port, wait_until_up  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "first_run.json"
IMAGE_QUERY, CODE_QUERY = "a red fire truck", "parse a query string into a dictionary"
GOALS_S = {"first text->image result": 180, "standard-library code search": 300, "whole code index": 900}


def _env(data_dir: Path, index_dir: Path) -> dict:
    return {**os.environ, "MMSSL_DATA_DIR": str(data_dir), "MMSSL_INDEX_DIR": str(index_dir),
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _complete(index_dir: Path, name: str) -> dict | None:
    """The manifest source of ``name`` once its last stage is in place."""
    path = index_dir / name / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("source", {}).get("complete", True) else None


def _hits(session: HTTPSession, endpoint: str, query: str) -> int:
    try:
        return session.call(endpoint, query, 5)[0]
    except Exception:  # noqa: BLE001 - not answering yet is what we are waiting for
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None, help="data root (default: a fresh temp folder)")
    parser.add_argument("--index-dir", type=Path, default=None, help="index root (default: a fresh temp folder)")
    parser.add_argument("--timeout", type=float, default=2400, help="give up after this many seconds")
    parser.add_argument("--poll", type=float, default=2.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="mmssl-first-run-"))
    data_dir = args.data_dir or scratch / "data"
    index_dir = args.index_dir or scratch / "indexes"
    env = _env(data_dir, index_dir)
    subprocess.run([sys.executable, "-m", "mmssl", "data", "fetch", "emoji"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # what `make test` leaves behind

    port = free_port()
    load_before = os.getloadavg()
    log = open(scratch / "serve.log", "w")
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "mmssl", "serve", "--build-missing", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    times: dict[str, float] = {}
    try:
        url = f"http://127.0.0.1:{port}/"
        times["page serves"] = wait_until_up(url, server, timeout=args.timeout)
        session = HTTPSession(url, download=False)
        while time.perf_counter() - start < args.timeout and len(times) < 6:
            now = time.perf_counter() - start
            if "first text->image result" not in times and _hits(session, "text-to-image", IMAGE_QUERY):
                times["first text->image result"] = time.perf_counter() - start
            if "standard-library code search" not in times and _hits(session, "code", CODE_QUERY):
                times["standard-library code search"] = time.perf_counter() - start
            if "whole code index" not in times and _complete(index_dir, "code"):
                times["whole code index"] = now
            if "whole image index" not in times and _complete(index_dir, "emoji-clipart"):
                times["whole image index"] = now
            if "whole code index" in times and "whole image index" in times:
                times["all indexes"] = max(times["whole code index"], times["whole image index"])
            if server.poll() is not None:
                raise RuntimeError(f"the app exited with {server.returncode}; see {scratch / 'serve.log'}")
            time.sleep(args.poll)
        session.close()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    counts = {name: (_complete(index_dir, name) or {}).get("count") for name in ("emoji-clipart", "code")}
    rows = [{"milestone": m, "seconds": round(s, 1), "goal_s": GOALS_S.get(m), "met": s <= GOALS_S[m] if m in GOALS_S
             else None} for m, s in sorted(times.items(), key=lambda kv: kv[1])]
    print(f"{'milestone':32} {'seconds':>8} {'goal':>6}  met")
    for row in rows:
        print(f"{row['milestone']:32} {row['seconds']:8.1f} {row['goal_s'] or '':>6}  {row['met'] if row['met'] is not None else ''}")
    result = {"rows": rows, "index_counts": counts, "cpu_count": os.cpu_count(), "load_before": load_before,
              "log": str(scratch / "serve.log"), "note": "from `make test` state: emoji sources fetched, no corpus"
              " built, no index; sources fetched over the network where needed (code wheels, clipart .deb)"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0 if len(times) >= 6 else 1


if __name__ == "__main__":
    sys.exit(main())
