"""Soak test of the app under hostile use: 16 clients send N text queries each, mixed with uploads of
hostile images, against ``python -m mmssl serve`` on 127.0.0.1 (loopback only); bounded, it stops by itself.

Each client, in a loop of N rounds: a text→image query (must return results), and every
``--upload-every`` rounds one upload + image search, cycling through

* ``huge.png``: 11000×11000 px in a few hundred KB (1.4 GB if decoded) -> must be refused with a message;
* ``truncated.png``: a real PNG cut short -> a "could not be read" message;
* ``noise.png``: random bytes named .png -> a "could not be read" message;
* ``payload.bin``: not an image type -> the upload itself refused (HTTP 415 with a message);
* ``good.png``: a real emoji image -> results.

A refused hostile upload answered with its clear message counts as correct; an error is an
exception, an unexpected status, a missing message or no results where results were due. The
server's RSS (``/proc/PID/status``) is read after a warm-up, sampled during the run, and read again
after it; the goal is 0 errors and RSS back within 10 % of its starting value.

    nice -n 15 python bench/soak.py --rounds 12          # ~a few minutes on 2 busy cores

Builds (once) a small index of the emoji corpus's test split with models/clip-default in
$TMPDIR/mmssl-soak/ (outside the repo), prints a table, writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INDEX_NAME = "soak-emoji"
GOAL_RSS_RATIO = 1.10
HOSTILE = ("huge.png", "truncated.png", "noise.png", "payload.bin", "good.png")
EXPECTED = {"huge.png": "image too large", "truncated.png": "could not be read", "noise.png": "could not be read",
            "payload.bin": "Only PNG, JPEG or WebP images", "good.png": "results"}


def _app_bench():
    """bench/app.py's server and HTTP session helpers (one way to start and call the app)."""
    spec = importlib.util.spec_from_file_location("app_bench", ROOT / "bench" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_soak_index(index_dir: Path, limit: int) -> int:
    """The emoji test split (first ``limit`` images) as ``INDEX_NAME`` under ``index_dir``; built once."""
    from itertools import islice

    from mmssl.index import build_index, image_corpus_items, load_index
    from mmssl.model import load_model

    os.environ["MMSSL_INDEX_DIR"] = str(index_dir)
    if (index_dir / INDEX_NAME / "manifest.json").is_file():
        return len(load_index(INDEX_NAME))
    items, source = image_corpus_items("emoji", "test")
    items = list(islice(items, limit))
    build_index(INDEX_NAME, load_model(ROOT / "models" / "clip-default"), items, source=source, progress=False)
    return len(items)


def write_hostile_files(folder: Path) -> dict[str, Path]:
    """The uploads of the soak (see the module docstring)."""
    import struct
    import zlib

    from mmssl.data.folder import image_files
    from mmssl.data.paths import corpus_dir

    folder.mkdir(parents=True, exist_ok=True)
    good = next(iter(image_files(corpus_dir("emoji") / "images")))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row = zlib.compressobj(9), b"\x00" + b"\xff" * 33000  # 11000 RGB pixels a row
    body = b"".join(compressor.compress(row) for _ in range(11000)) + compressor.flush()
    (folder / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 11000, 11000, 8, 2,
                                                                                        0, 0, 0))
                                      + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    data = good.read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 3])
    (folder / "noise.png").write_bytes(np.random.default_rng(0).bytes(50_000))
    (folder / "payload.bin").write_bytes(b"\0" * 200_000)
    (folder / "good.png").write_bytes(data)
    return {name: folder / name for name in HOSTILE}


def proc_status(pid: int, field: str) -> int:
    """A number from ``/proc/PID/status`` (``VmRSS`` in kB, ``Threads``)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def rss_mb(pid: int) -> float:
    return proc_status(pid, "VmRSS") / 1024


class Uploader:
    """One client's upload + image search over HTTP (POST /gradio_api/upload, then /gradio_api/call)."""

    def __init__(self, session):
        self.session = session

    def search_with(self, path: Path) -> str:
        """The status line (or the upload's refusal text) of searching with the file at ``path``."""
        http, url = self.session.http, self.session.url
        reply = http.post(f"{url}/gradio_api/upload", files={"files": (path.name, path.read_bytes())})
        if reply.status_code != 200:
            return f"HTTP {reply.status_code}: {reply.text}"
        stored = reply.json()[0]
        api = f"{url}/gradio_api/call/search_by_image"
        file_data = {"path": stored, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}
        event = http.post(api, json={"data": [file_data, 6, None]})
        event.raise_for_status()
        stream = http.get(f"{api}/{event.json()['event_id']}")
        kind = None
        for line in stream.text.splitlines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "complete":
                gallery, status = json.loads(line.split(":", 1)[1])[:2]
                return status if gallery or "results" not in status else "no results: " + status
        raise RuntimeError(f"no result from {api}: {stream.text[-300:]}")


def run(url: str, files: dict[str, Path], clients: int, rounds: int, upload_every: int, bench) -> dict:
    sessions = [bench.HTTPSession(url, download=False) for _ in range(clients)]
    stats = {name: {"latencies": [], "errors": 0, "examples": []} for name in ("text query", *HOSTILE)}
    lock = threading.Lock()

    def record(kind: str, seconds: float, ok: bool, detail: str) -> None:
        with lock:
            stats[kind]["latencies"].append(seconds * 1000)
            if not ok:
                stats[kind]["errors"] += 1
                if len(stats[kind]["examples"]) < 3:
                    stats[kind]["examples"].append(detail[:300])

    def client(c: int) -> None:
        session, uploads = sessions[c], Uploader(sessions[c])
        for i in range(rounds):
            query = bench.IMAGE_QUERIES[(c * 5 + i) % len(bench.IMAGE_QUERIES)]
            start = time.perf_counter()
            try:
                count, status = session.call("text-to-image", query, 8)
                record("text query", time.perf_counter() - start, count > 0 and "results" in status, status)
            except Exception as e:  # noqa: BLE001 - counted: the soak reports errors
                record("text query", time.perf_counter() - start, False, repr(e))
            if i % upload_every == 0:
                name = HOSTILE[(c + i // upload_every) % len(HOSTILE)]
                start = time.perf_counter()
                try:
                    status = uploads.search_with(files[name])
                    record(name, time.perf_counter() - start, EXPECTED[name] in status, status)
                except Exception as e:  # noqa: BLE001
                    record(name, time.perf_counter() - start, False, repr(e))

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    for session in sessions:
        session.close()
    rows = []
    for kind, s in stats.items():
        lat = np.array(s["latencies"] or [0.0])
        rows.append({"request": kind, "count": len(s["latencies"]), "errors": s["errors"],
                     "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
                     "max_ms": float(lat.max()), "examples": s["examples"]})
    return {"rows": rows, "wall_s": wall}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=12, help="text queries per client (N)")
    parser.add_argument("--upload-every", type=int, default=3, help="an upload every this many rounds")
    parser.add_argument("--limit", type=int, default=300, help="emoji images in the soak index")
    parser.add_argument("--port", type=int, default=7930, help="loopback port of the app")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait before the final RSS reading")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = parser.parse_args(argv)
    bench = _app_bench()
    index_dir = Path(tempfile.gettempdir()) / "mmssl-soak"  # outside the repo: indexes are not committed
    items = build_soak_index(index_dir, args.limit)
    files = write_hostile_files(index_dir / "uploads")
    server = bench.start_server(argparse.Namespace(index=[INDEX_NAME], code_model=None), args.port)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        startup = bench.wait_until_up(url, server)
        warm = bench.HTTPSession(url, download=False)
        for query in bench.IMAGE_QUERIES:  # warm-up: every code path once, before the starting reading
            warm.call("text-to-image", query, 8)
        Uploader(warm).search_with(files["good.png"])
        Uploader(warm).search_with(files["truncated.png"])
        warm.close()
        rss_start, threads_start = rss_mb(server.pid), proc_status(server.pid, "Threads")
        peak = [rss_start]
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                peak[0] = max(peak[0], rss_mb(server.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = run(url, files, args.clients, args.rounds, args.upload_every, bench)
        done.set()
        sampler.join()
        time.sleep(args.settle)
        rss_end, threads_end = rss_mb(server.pid), proc_status(server.pid, "Threads")
    finally:
        server.terminate()
        server.wait(30)
    errors = sum(r["errors"] for r in result["rows"])
    report = {"clients": args.clients, "rounds": args.rounds, "upload_every": args.upload_every, "index_items": items,
              "startup_s": startup, "wall_s": result["wall_s"], "errors": errors, "rss_start_mb": rss_start,
              "rss_peak_mb": peak[0], "rss_end_mb": rss_end, "rss_end_ratio": rss_end / rss_start,
              "server_threads_start": threads_start, "server_threads_end": threads_end,
              "goal": {"errors": 0, "rss_end_ratio_max": GOAL_RSS_RATIO},
              "met": errors == 0 and rss_end / rss_start <= GOAL_RSS_RATIO, "rows": result["rows"]}
    print(f"soak: {args.clients} clients x {args.rounds} queries, an upload every {args.upload_every}; index of "
          f"{items} images; {result['wall_s']:.0f} s")
    print(f"{'request':<14} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for r in result["rows"]:
        print(f"{r['request']:<14} {r['count']:>6} {r['errors']:>6} {r['p50_ms']:>8.0f} {r['p95_ms']:>8.0f} "
              f"{r['max_ms']:>8.0f}")
        for example in r["examples"]:
            print(f"    e.g. {example}")
    print(f"server RSS: {rss_start:.0f} MB at start, {peak[0]:.0f} MB peak, {rss_end:.0f} MB after "
          f"({100 * (rss_end / rss_start - 1):+.1f} %); server threads {threads_start} -> {threads_end}; errors {errors}; "
          f"goal {'met' if report['met'] else 'NOT met'}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.output).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, args.output)
    return 0 if report["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
