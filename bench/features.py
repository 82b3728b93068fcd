"""Search features, measured in one run: the calibrated "nothing close" of text → image search.

Nothing close (issue 19): the index is the held-out test split of the emoji and clipart corpora, embedded
with models/clip-default. Queries:

* present: each distinct caption of the index (its relevant items: those it names);
* absent: the captions of the train and valid splits of emoji, clipart, stamps and game-icons that share no
  content word with any caption of the index (their concept is not in it by any name,
  :func:`mmssl.index.closeness.calibration_queries`).

Both are split in two by a hash of the text: the threshold is calibrated on one half
(:func:`mmssl.index.closeness.calibrate`) and measured on the other. A row per statistic (the top
hit's cosine as a flat cut-off, and the calibrated statistic) gives the share of absent queries flagged
(goal ≥ 0.8) and the share of the present queries' R@10 kept (goal ≥ 0.95).

    python bench/features.py                   # builds its index once under --work, then measures
    python bench/features.py --work /tmp/feat  # reuse a built index

Prints a table and writes bench/results/features.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from itertools import chain
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "features.json"
INDEX_CORPORA = ("emoji", "clipart")
GOALS = {"absent_flagged": 0.8, "present_kept": 0.95}


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


def nothing_close(index, model) -> dict:
    from mmssl.index.closeness import calibrate, calibration_queries, corpus_captions, evaluate, measure

    absent, present = calibration_queries(index, corpus_captions())
    calibrate_absent = [t for t in absent if half(t) == 0]
    calibrate_present = {t: ids for t, ids in present.items() if half(t) == 0}
    started = time.perf_counter()
    closeness = calibrate(index, model.encode_text, calibrate_absent, calibrate_present)
    seconds = time.perf_counter() - started
    measure_absent = [t for t in absent if half(t) == 1]
    measure_present = {t: ids for t, ids in present.items() if half(t) == 1}
    absent_run = measure(index, model.encode_text, measure_absent)
    present_run = measure(index, model.encode_text, list(measure_present), list(measure_present.values()))
    rows = []
    for name, a, b, calibrated in (("flat cosine", 0.0, 0.0, closeness.report["flat_cosine"]),
                                   ("calibrated", closeness.a, closeness.b, closeness.report["chosen"])):
        measured = evaluate(closeness, absent_run, present_run, a, b, calibrated["threshold"])
        rows.append({"statistic": name, "a": a, "b": b, "calibration": calibrated, **measured})
    return {"index": str(index.folder), "items": index.manifest.count,
            "queries": {"absent": len(absent), "present": len(present), "calibrate_absent": len(calibrate_absent),
                        "calibrate_present": len(calibrate_present), "measure_absent": len(measure_absent),
                        "measure_present": len(measure_present)},
            "absent_examples": measure_absent[:8], "calibration_seconds": seconds, "rows": rows, "goals": GOALS}


def print_table(result: dict) -> None:
    q = result["queries"]
    print(f"\nnothing close — {result['items']} items; measured on {q['measure_absent']} absent and "
          f"{q['measure_present']} present queries (calibrated on {q['calibrate_absent']} + {q['calibrate_present']})")
    print(f"{'statistic':<12} {'a':>4} {'b':>4} {'threshold':>10} {'absent flagged':>15} {'present R@10 kept':>18} "
          f"{'R@10':>6}")
    for row in result["rows"]:
        print(f"{row['statistic']:<12} {row['a']:>4.1f} {row['b']:>4.1f} {row['threshold']:>10.4f} "
              f"{row['absent_flagged']:>15.3f} {row['present_kept']:>18.3f} {row['present_recall']:>6.3f}")
    print(f"goals: absent flagged >= {GOALS['absent_flagged']}, present R@10 kept >= {GOALS['present_kept']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmssl-bench-features"),
                        help="where the bench index is built (once) and kept")
    parser.add_argument("--model", default=str(ROOT / "models" / "clip-default"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    from mmssl.io import write_json
    from mmssl.model import load_model

    model = load_model(args.model)
    index = build_bench_index(args.work, model)
    result = {"nothing_close": nothing_close(index, model), "model": args.model,
              "note": "timings taken on a shared 2-core machine"}
    print_table(result["nothing_close"])
    write_json(args.output, result, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
