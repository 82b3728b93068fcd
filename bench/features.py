"""Search features, measured in one run: the calibrated "nothing close" of text → image search, near-duplicate
collapse, what "more results" costs, and the REST API's latency beside the Gradio API's.

Nothing close (issue 19): the index is the held-out test split of the emoji and clipart corpora, embedded
with models/clip-default. Queries:

* present: each distinct caption of the index (its relevant items: those it names);
* absent: the captions of the train and valid splits of emoji, clipart, stamps and game-icons that share no
  content word with any caption of the index (their concept is not in it by any name,
  :func:`mmssl.index.closeness.calibration_queries`).

Both are split in two by a hash of the text: each statistic's threshold (and the product's weights,
:func:`mmssl.index.closeness.calibrate`) is chosen on one half and measured on the other. A row per statistic
(the flat cosine, per-query z-scores and margins of :func:`mmssl.index.closeness.query_statistics`, and the
hub-corrected statistic the page uses) gives the share of absent queries flagged (goal ≥ 0.8) and the share of
the present queries' R@10 kept (goal ≥ 0.95).

Near-duplicates: an index over the test splits of emoji + emoji-artworks and a seeded sample of 1,500 iconsets
test items (held-out concepts in several artworks, sets and skin tones); 300 of its distinct captions as
queries. The share of the top-12 slots taken by a near-duplicate of an earlier slot (ground truth: the corpora's
split group, an emoji's base code point or an icon's concept name), before and after collapsing by the caption's
concept key or by item cosine, with the share of folded hits that were another concept (wrong merges).

More results: p50 ms of a first page, of the next page searched with the query's kept vector, and of the next
page with the query encoded again (what re-asking from scratch costs).

REST vs Gradio API: the app serves the same index in this process (127.0.0.1, ports 7950-7969); one client
sends the same text queries, interleaved, to ``GET /api/search`` and to Gradio's HTTP API
(``/gradio_api/call/search_images`` and its event stream, bench/app.py's HTTPSession), one keep-alive
connection each; p50/p95 of the client's wall time per request.

    python bench/features.py                   # builds its index once under --work, then measures
    python bench/features.py --work /tmp/feat  # reuse a built index

Prints a table and writes bench/results/features.json.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from itertools import chain
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "features.json"
INDEX_CORPORA = ("emoji", "clipart")
DEDUP_CORPORA = (("emoji", None), ("emoji-artworks", None), ("iconsets", 1500))  # (corpus, test items kept)
DEDUP_SEED = 19
GOALS = {"absent_flagged": 0.8, "present_kept": 0.95}
LATENCY_QUERIES = ["a red fire truck", "grinning face", "cat", "a cup of hot coffee", "rainbow flag", "musical notes",
                   "chat bubble", "smiling cat", "a green tree", "airplane", "birthday cake", "sleepy face"]


def half(text: str) -> int:
    """0 (calibrate) or 1 (measure), fixed per text."""
    return hashlib.sha1(text.encode()).digest()[0] % 2


def build_bench_index(work: Path, model):
    from mmssl.index import build_index, image_corpus_items, load_index
    from mmssl.index.errors import IndexNotFoundError

    folder = work / "emoji-clipart-test"
    try:
        return load_index(folder)
    except IndexNotFoundError:
        pass
    items = chain.from_iterable(image_corpus_items(name, "test")[0] for name in INDEX_CORPORA)
    print(f"building {folder} (emoji + clipart test splits) ...")
    return build_index(folder, model, items, source={"type": "image-corpus", "corpus": "+".join(INDEX_CORPORA),
                                                     "split": "test"})


def build_dedup_index(work: Path, model):
    """The test splits of emoji + emoji-artworks + a seeded sample of 1,500 iconsets test items: the same concept
    in several artworks, icon sets and skin tones."""
    from mmssl.data.corpus import split_records
    from mmssl.index import build_index, load_index
    from mmssl.index.errors import IndexNotFoundError
    from mmssl.index.sources import image_record_item

    folder = work / "emoji-artworks-iconsets-test"
    try:
        return load_index(folder)
    except IndexNotFoundError:
        pass
    records = [r for name, limit in DEDUP_CORPORA for r in split_records(name, "test", limit, DEDUP_SEED)]
    print(f"building {folder} ({len(records)} items) ...")
    return build_index(folder, model, [image_record_item(r) for r in records],
                       source={"type": "image-corpus", "corpus": "+".join(n for n, _ in DEDUP_CORPORA), "split": "test"})


def same_concept(a, b) -> bool:
    """The ground truth of a near-duplicate: the corpora's own split group (an emoji's base code point, shared by
    its artworks and skin tones; an icon's concept name), within the emoji family or within the icon sets."""
    family = {"emoji": "emoji", "emoji-artworks": "emoji"}
    return (a.metadata["folder"] == b.metadata["folder"]
            and family.get(a.metadata["source"], a.metadata["source"]) == family.get(b.metadata["source"],
                                                                                    b.metadata["source"]))


def dedup(index, model, queries: int = 300, k: int = 12) -> dict:
    """Share of the top-k slots taken by a near-duplicate of an earlier slot, before and after collapsing, and the
    share of folded hits that were not the same concept (wrong merges), per method."""
    import random

    import numpy as np

    from mmssl.index.dedup import collapsed_page, duplicate_share

    captions = sorted({row.metadata["caption"] for row in index.store.live_rows()})
    texts = random.Random(DEDUP_SEED).sample(captions, queries)
    vectors = model.encode_text(texts)  # (Q, D)

    def run(method: str, threshold: float = 0.0) -> dict:
        shares, folded, wrong = [], 0, 0
        for vector in vectors:
            groups, _ = collapsed_page(lambda n: index.search(vector, n)[0], k, method=method, index=index,
                                       threshold=threshold)
            shares.append(duplicate_share([g.hit for g in groups], same_concept))
            folded += sum(len(g.similar) for g in groups)
            wrong += sum(not same_concept(g.hit, h) for g in groups for h in g.similar)
        return {"method": method, "threshold": threshold or None, "duplicate_share": float(np.mean(shares)),
                "folded": folded, "wrong_merges": wrong / max(1, folded)}

    before = float(np.mean([duplicate_share(index.search(v, k)[0], same_concept) for v in vectors]))
    rows = [run("concept")] + [run("cosine", t) for t in (0.8, 0.85, 0.9, 0.95, 0.97)]
    return {"index": str(index.folder), "items": index.manifest.count, "queries": queries, "k": k,
            "sample": "test splits of emoji + emoji-artworks, a seeded sample of 1,500 iconsets test items; queries: "
                      f"{queries} distinct item captions (held-out concepts), seed {DEDUP_SEED}",
            "before": before, "rows": rows}


def print_dedup(result: dict) -> None:
    print(f"\nnear-duplicates — {result['items']} items, {result['queries']} queries, share of the top-{result['k']} "
          f"slots taken by a near-duplicate of an earlier slot: {result['before']:.3f} before collapsing")
    print(f"{'method':<8} {'threshold':>9} {'dup share after':>16} {'folded':>7} {'wrong merges':>13}")
    for row in result["rows"]:
        threshold = "" if row["threshold"] is None else f"{row['threshold']:.2f}"
        print(f"{row['method']:<8} {threshold:>9} {row['duplicate_share']:>16.3f} {row['folded']:>7} "
              f"{row['wrong_merges']:>13.3f}")


def paging(index, model, model_path: str, queries: int = 60, k: int = 12) -> dict:
    """Seconds of a first page, of the next page with the query's kept vector, and of the next page encoding the
    query again (the vector cache emptied): what "more results" costs each way (p50, ms)."""
    import numpy as np

    from mmssl.app import AppConfig, SearchService

    service = SearchService.load(AppConfig(indexes=[str(index.folder)], image_model=model_path), {model_path: model})
    captions = sorted({row.metadata["caption"] for row in index.store.live_rows()})[::7][:queries]
    times = {"first_page": [], "next_page_kept_vector": [], "next_page_encoded_again": []}
    for text in captions:
        for name, clear in (("first_page", True), ("next_page_kept_vector", False), ("next_page_encoded_again", True)):
            if clear:
                service.query_vectors.clear()
            started = time.perf_counter()
            service.search_images(text, k, offset=0 if name == "first_page" else k, collapse=True)  # as the page
            times[name].append(time.perf_counter() - started)
    return {"queries": len(captions), "k": k, **{name: float(np.median(t) * 1000) for name, t in times.items()}}


def nothing_close(index, model) -> dict:
    from mmssl.index.closeness import calibrate, calibration_queries, corpus_captions, measure

    absent, present = calibration_queries(index, corpus_captions())
    calibrate_absent = [t for t in absent if half(t) == 0]
    calibrate_present = {t: ids for t, ids in present.items() if half(t) == 0}
    started = time.perf_counter()
    closeness = calibrate(index, model.encode_text, calibrate_absent, calibrate_present)
    seconds = time.perf_counter() - started
    calibrate_run = (measure(index, model.encode_text, calibrate_absent),
                     measure(index, model.encode_text, list(calibrate_present), list(calibrate_present.values())))
    measure_absent = [t for t in absent if half(t) == 1]
    measure_present = {t: ids for t, ids in present.items() if half(t) == 1}
    absent_run = measure(index, model.encode_text, measure_absent)
    present_run = measure(index, model.encode_text, list(measure_present), list(measure_present.values()))
    rows = tried_statistics(index, closeness, calibrate_run, (absent_run, present_run))
    return {"index": str(index.folder), "items": index.manifest.count, "product_statistic": "hub-corrected (a, b)",
            "a": closeness.a, "b": closeness.b,
            "queries": {"absent": len(absent), "present": len(present), "calibrate_absent": len(calibrate_absent),
                        "calibrate_present": len(calibrate_present), "measure_absent": len(measure_absent),
                        "measure_present": len(measure_present)},
            "absent_examples": measure_absent[:8], "calibration_seconds": seconds, "rows": rows, "goals": GOALS}


def print_paging(result: dict) -> None:
    print(f"\nmore results — {result['queries']} text queries, k={result['k']}, p50 ms: first page "
          f"{result['first_page']:.1f}, next page with the kept query vector {result['next_page_kept_vector']:.1f}, "
          f"next page encoding the query again {result['next_page_encoded_again']:.1f}")


def tried_statistics(index, closeness, calibration, measured) -> list[dict]:
    """One row per per-query statistic (:func:`mmssl.index.closeness.query_statistics`): its threshold chosen on the
    calibration queries (keeping 0.95 of their R@10), the shares measured on the other half."""
    from mmssl.index.closeness import choose_threshold, query_statistics, shares

    def values(run):
        return {**query_statistics(index, run.queries),
                "hub-corrected (a, b)": closeness.values(run.queries, run.top_scores, run.top_ids)}

    (cal_absent, cal_present), (absent, present) = calibration, measured
    cal_a, cal_p, a, p = values(cal_absent), values(cal_present), values(absent), values(present)
    rows = []
    for name in cal_a:
        threshold = choose_threshold(cal_p[name], cal_present.found)
        rows.append({"statistic": name, "threshold": threshold,
                     "calibration": shares(threshold, cal_a[name], cal_p[name], cal_present.found),
                     **shares(threshold, a[name], p[name], present.found)})
    return rows


def print_table(result: dict) -> None:
    q = result["queries"]
    print(f"\nnothing close — {result['items']} items; thresholds chosen on {q['calibrate_absent']} absent + "
          f"{q['calibrate_present']} present queries, measured on {q['measure_absent']} + {q['measure_present']}; "
          f"the page uses {result['product_statistic']} (a={result['a']}, b={result['b']})")
    print(f"{'statistic':<22} {'threshold':>10} {'calib flagged':>14} {'calib kept':>11} {'absent flagged':>15} "
          f"{'present R@10 kept':>18} {'R@10':>6}")
    for row in result["rows"]:
        print(f"{row['statistic']:<22} {row['threshold']:>10.4f} {row['calibration']['absent_flagged']:>14.3f} "
              f"{row['calibration']['present_kept']:>11.3f} {row['absent_flagged']:>15.3f} {row['present_kept']:>18.3f} "
              f"{row['present_recall']:>6.3f}")
    print(f"goals: absent flagged >= {GOALS['absent_flagged']}, present R@10 kept >= {GOALS['present_kept']}")


def loopback_port(ports=range(7950, 7970)) -> int:
    """A free port of this project's bench range on 127.0.0.1."""
    import socket

    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def gradio_http_session(url: str):
    """bench/app.py's client of Gradio's HTTP API (the one the app benchmark measures)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_app", ROOT / "bench" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HTTPSession(url, download=False)


def rest_latency(index, model, model_path: str, requests: int, k: int = 12) -> dict:
    import httpx
    import numpy as np

    from mmssl.app import AppConfig, SearchService, launch

    config = AppConfig(indexes=[str(index.folder)], image_model=model_path, port=loopback_port(), auth="")
    demo = launch(SearchService.load(config, {model_path: model}), block=False, quiet=True)
    url = demo.local_url.rstrip("/")
    name = Path(index.folder).name
    rest, gradio = httpx.Client(timeout=60), gradio_http_session(url)
    times = {"rest": [], "gradio": []}
    try:
        for i in range(requests + 5):  # the first 5 of each warm up
            query = LATENCY_QUERIES[i % len(LATENCY_QUERIES)]
            started = time.perf_counter()
            reply = rest.get(f"{url}/api/search", params={"index": name, "q": query, "k": k})
            reply.raise_for_status()
            assert len(reply.json()["hits"]) == k
            middle = time.perf_counter()
            count, _ = gradio.call("text-to-image", query, k)
            assert count == k
            if i >= 5:
                times["rest"].append(middle - started)
                times["gradio"].append(time.perf_counter() - middle)
    finally:
        rest.close()
        gradio.close()
        demo.close(verbose=False)
    rows = {api: {"p50_ms": float(np.percentile(t, 50) * 1000), "p95_ms": float(np.percentile(t, 95) * 1000)}
            for api, t in times.items()}
    return {"requests": requests, "k": k, **rows,
            "p50_ratio_gradio_over_rest": rows["gradio"]["p50_ms"] / rows["rest"]["p50_ms"]}


def print_latency(result: dict) -> None:
    print(f"\nREST vs Gradio API — {result['requests']} text queries each, k={result['k']}, one client, interleaved")
    print(f"{'api':<28} {'p50 ms':>8} {'p95 ms':>8}")
    for api, label in (("rest", "GET /api/search"), ("gradio", "Gradio /gradio_api/call")):
        print(f"{label:<28} {result[api]['p50_ms']:>8.1f} {result[api]['p95_ms']:>8.1f}")
    print(f"Gradio p50 / REST p50: {result['p50_ratio_gradio_over_rest']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmssl-bench-features"),
                        help="where the bench index is built (once) and kept")
    parser.add_argument("--model", default=str(ROOT / "models" / "clip-default"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per API")
    args = parser.parse_args()
    from mmssl.io import write_json
    from mmssl.model import load_model

    model = load_model(args.model)
    index = build_bench_index(args.work, model)
    dedup_index = build_dedup_index(args.work, model)
    result = {"nothing_close": nothing_close(index, model), "dedup": dedup(dedup_index, model),
              "paging_ms": paging(dedup_index, model, args.model), "model": args.model,
              "rest_latency": rest_latency(index, model, args.model, args.requests),
              "note": "timings taken on a shared 2-core machine, busy with two training runs"}
    print_table(result["nothing_close"])
    print_dedup(result["dedup"])
    print_paging(result["paging_ms"])
    print_latency(result["rest_latency"])
    write_json(args.output, result, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
