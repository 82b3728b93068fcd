"""End-to-end latency of the search app over loopback: p50/p95 with 1, 4 and 16 concurrent clients.

The app runs as its own process (``python -m mmssl serve`` on 127.0.0.1 at a free port) over the demo
indexes; each client is a thread of this process sending queries back to back, through one of two
clients (``--client``, both by default):

* ``http``: Gradio's HTTP API over a keep-alive httpx connection (POST ``/gradio_api/call/<api>``,
  then the result's event stream): the same queue, handler and post-processing as the page's own
  requests. This is the goal's measure.
* ``gradio_client``: the Python client. It polls its message queue every 50 ms, so it adds ~100-200 ms
  per call by itself (an echo endpoint measures p50 191 ms through it vs 29 ms over HTTP here).

A request's latency is the client's wall time from sending the query to holding the ranked results;
the gallery's image files are fetched too with ``--download-files`` (a browser fetches them as
separate static requests). An error is an exception or a reply without results.

    python bench/app.py                              # demo indexes: indexes/emoji-clipart, indexes/code
    python bench/app.py --clients 1 4 16 --requests 200 --index emoji-clipart --index code

Prints a table and writes bench/results/app.json. Goal (issue 6): p95 <= 150 ms at 4 clients on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IMAGE_QUERIES = ["a red fire truck", "grinning face", "cat", "a cup of hot coffee", "rainbow flag", "musical notes",
                 "chat bubble", "smiling cat", "a green tree", "airplane", "birthday cake", "sleepy face"]
CODE_QUERIES = ["parse a query string into a dictionary", "read a file and return its lines",
                "compute the median of a list of numbers", "convert a date string to a datetime",
                "escape special characters in HTML", "merge two sorted lists", "split a string into shell words",
                "return the absolute path of a file", "encode bytes as base64", "sort a dictionary by value"]
GOAL_P95_MS, GOAL_CLIENTS = 150.0, 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "mmssl", "serve", "--host", "127.0.0.1", "--port", str(port)]
    for index in args.index:
        command += ["--index", index]
    if args.code_model:
        command += ["--code-model", args.code_model]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 300) -> float:
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with {server.returncode}: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the app did not answer at {url} within {timeout} s")


API = {"text-to-image": "search_images", "code": "search_code"}


def _arguments(endpoint: str, query: str, k: int) -> list:
    # the page's defaults for the rest: near-duplicates folded; code: no path glob, any kind, tests kept, hybrid
    return ([query, k, None, "(all)", True] if endpoint == "text-to-image" else
            [query, k, None, "(all)", "", "", "any", False, "hybrid"])


def _counted(endpoint: str, outputs) -> tuple[int, str]:
    """(results, status line) of an endpoint's outputs."""
    if endpoint == "text-to-image":
        gallery, status = outputs[:2]
        return len(gallery), status
    status, cards = outputs[:2]
    return cards.count("class='mmssl-card'"), status


class GradioClientSession:
    """Python ``gradio_client`` (what tests and scripts use). It polls its message queue every
    50 ms, so it adds ~100-200 ms to every call on this machine (an echo endpoint: p50 191 ms)."""

    name = "gradio_client"

    def __init__(self, url: str, download: bool):
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=download)

    def call(self, endpoint: str, query: str, k: int) -> tuple[int, str]:
        return _counted(endpoint, self.client.predict(*_arguments(endpoint, query, k), api_name=f"/{API[endpoint]}"))

    def close(self):
        self.client.close()


class HTTPSession:
    """Gradio's HTTP API over one keep-alive connection, as a browser or ``curl`` uses it: POST
    ``/gradio_api/call/<api>`` (joins the same queue as the page's events), then read the result's
    server-sent event stream. With ``download`` it also fetches every gallery image, as a page would."""

    name = "http"

    def __init__(self, url: str, download: bool):
        import httpx

        self.url, self.download = url.rstrip("/"), download
        self.http = httpx.Client(timeout=60)

    def call(self, endpoint: str, query: str, k: int) -> tuple[int, str]:
        api = f"{self.url}/gradio_api/call/{API[endpoint]}"
        reply = self.http.post(api, json={"data": _arguments(endpoint, query, k)})
        reply.raise_for_status()
        stream = self.http.get(f"{api}/{reply.json()['event_id']}")
        event, data = None, None
        for line in stream.text.splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "complete":
                data = json.loads(line.split(":", 1)[1])
        if data is None:
            raise RuntimeError(f"no result from {api}: {stream.text[-300:]}")
        if self.download and endpoint == "text-to-image":
            for item in data[0]:
                self.http.get(item["image"]["url"]).raise_for_status()
        return _counted(endpoint, data)

    def close(self):
        self.http.close()


SESSIONS = {"http": HTTPSession, "gradio_client": GradioClientSession}


def run_level(url: str, endpoint: str, clients: int, requests: int, k: int, download: bool,
              client: str = "http") -> dict:
    queries = IMAGE_QUERIES if endpoint == "text-to-image" else CODE_QUERIES
    per_client = max(1, requests // clients)
    sessions = [SESSIONS[client](url, download) for _ in range(clients)]
    for session in sessions:  # warm each session's connection
        session.call(endpoint, queries[0], k)

    def worker(c: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        for i in range(per_client):
            query = queries[(c * 7 + i) % len(queries)]
            start = time.perf_counter()
            try:
                count, status = sessions[c].call(endpoint, query, k)
                if count == 0 or "results" not in status:
                    errors += 1
            except Exception:  # noqa: BLE001 - counted, not raised: the bench reports errors
                errors += 1
            latencies.append((time.perf_counter() - start) * 1000)
        return latencies, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - start
    latencies = np.array([x for lat, _ in results for x in lat])
    for session in sessions:
        session.close()
    return {"client": client, "endpoint": endpoint, "clients": clients, "requests": int(latencies.size),
            "errors": int(sum(e for _, e in results)), "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)), "max_ms": float(latencies.max()),
            "throughput_rps": float(latencies.size / wall)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", action="append", help="indexes to serve (default: emoji-clipart and code)")
    parser.add_argument("--code-model", help="code model (default: models/code-default)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=96, help="requests per endpoint and concurrency level")
    parser.add_argument("-k", type=int, default=12, help="results per query")
    parser.add_argument("--download-files", action="store_true", help="also fetch every gallery image")
    parser.add_argument("--client", nargs="+", choices=sorted(SESSIONS), default=["http", "gradio_client"],
                        help="http: Gradio's HTTP API over httpx (the goal's measure); gradio_client: the Python client")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "app.json"))
    args = parser.parse_args(argv)
    args.index = args.index or ["emoji-clipart", "code"]

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    load_before = os.getloadavg()
    server = start_server(args, port)
    try:
        startup = wait_until_up(url, server)
        probe = HTTPSession(url, download=False)
        endpoints = ["text-to-image"]
        count, status = probe.call("code", "warm up", 1)
        if count:
            endpoints.append("code")
        else:  # no code index served: measure the image endpoint only
            print(f"code endpoint skipped: {status}")
        probe.close()
        rows = [run_level(url, endpoint, clients, args.requests, args.k, args.download_files, client)
                for client in args.client for endpoint in endpoints for clients in args.clients]
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()

    print(f"app over loopback, {os.cpu_count()} cores, load average before/after {load_before[0]:.1f}/"
          f"{load_after[0]:.1f}; app start {startup:.1f} s; k={args.k}; files downloaded: {args.download_files}")
    print(f"{'client':<15}{'endpoint':<14}{'clients':>8}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
          f"{'req/s':>8}{'errors':>7}")
    for r in rows:
        print(f"{r['client']:<15}{r['endpoint']:<14}{r['clients']:>8}{r['requests']:>9}{r['p50_ms']:>9.1f}"
              f"{r['p95_ms']:>9.1f}{r['max_ms']:>9.1f}{r['throughput_rps']:>8.1f}{r['errors']:>7}")
    goal = [r for r in rows if r["clients"] == GOAL_CLIENTS and r["client"] == "http"]
    for r in goal:
        verdict = "met" if r["p95_ms"] <= GOAL_P95_MS and r["errors"] == 0 else "NOT met"
        print(f"goal p95 <= {GOAL_P95_MS:.0f} ms at {GOAL_CLIENTS} clients, zero errors ({r['endpoint']}, HTTP API): "
              f"{verdict}")
    result = {"cores": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after,
              "startup_s": startup, "k": args.k, "download_files": args.download_files, "indexes": args.index,
              "goal": {"clients": GOAL_CLIENTS, "p95_ms": GOAL_P95_MS}, "rows": rows,
              "note": "the machine is shared with other jobs; load averages show how busy it was"}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
