"""How the Indexes tab shows an evaluation on the user's own queries: table rows and an HTML bar chart
(one group of bars per system: MRR and Recall@K), from :func:`mmssl.index.user_eval.evaluate_index_queries`.
Plain HTML, so the chart needs no plotting library and reads the same in every browser."""

from __future__ import annotations

import html

EVAL_COLUMNS = ["system", "MRR", "R@1", "R@5", "R@10", "note"]
METRIC_COLOURS = {"mrr": "#4f46e5", "recall@1": "#0891b2", "recall@5": "#16a34a", "recall@10": "#ca8a04"}
BAR_WIDTH_PX = 360


def eval_rows(results: dict) -> list[list]:
    """One table row per system: name, MRR, R@1/5/10 (3 decimals), note."""
    return [[row["system"], *(round(float(row[k]), 3) for k in METRIC_COLOURS), row.get("note", "")]
            for row in results["rows"]]


def _label(metric: str) -> str:
    return "MRR" if metric == "mrr" else metric.replace("recall@", "R@")


def _bar(metric: str, value: float) -> str:
    width = max(0.0, min(1.0, value)) * BAR_WIDTH_PX
    return (f'<div style="display:flex;align-items:center;gap:6px;margin:1px 0">'
            f'<span style="width:44px;font-size:12px">{_label(metric)}</span>'
            f'<span role="img" aria-label="{_label(metric)} {value:.3f}" style="display:inline-block;height:12px;'
            f'width:{width:.1f}px;background:{METRIC_COLOURS[metric]}"></span>'
            f'<span style="font-size:12px">{value:.3f}</span></div>')


def bar_chart_html(results: dict) -> str:
    """MRR and Recall@K per system as horizontal bars on a 0–1 scale."""
    groups = []
    for row in results["rows"]:
        bars = "".join(_bar(metric, float(row[metric])) for metric in METRIC_COLOURS)
        groups.append(f'<div style="margin:8px 0"><div style="font-weight:600">{html.escape(row["system"])}</div>'
                      f"{bars}</div>")
    title = (f"{html.escape(results['index'])}: {results['num_queries']} queries over all {results['num_items']} "
             f"items (0–1 scale)")
    return f'<div class="eval-chart"><div style="font-size:13px">{title}</div>{"".join(groups)}</div>'


def eval_summary(results: dict) -> str:
    """A status line: what was evaluated, the model's MRR beside the best baseline's, and the notes."""
    model, *others = results["rows"]
    line = (f"**{results['index']}**: {results['num_queries']} queries, every one ranked over all "
            f"{results['num_items']} items in {results['seconds']} s. {model['system']}: MRR {model['mrr']:.3f}")
    baselines = [row for row in others if not row["system"].startswith(model["system"])]
    if baselines:
        best = max(baselines, key=lambda row: row["mrr"])
        line += f"; best baseline {best['system']}: MRR {best['mrr']:.3f}"
    return line + "." + "".join(f"\n\n{note[0].upper()}{note[1:]}." for note in results.get("notes", []))
