"""Metrics CSV and a PNG of the training curves, rewritten at every checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

from mmssl.io import atomic_open, atomic_path


def write_metrics_csv(rows: list[dict], path: Path) -> None:
    """One row per logged step, one column per metric ever logged (blank where absent)."""
    columns = ["step"] + sorted({k for r in rows for k in r} - {"step"})
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(rows: list[dict], path: Path, title: str = "") -> None:
    """One panel per metric (loss first), against step."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("loss", "lr") if any(k in r for r in rows)]
    keys += sorted({k for r in rows for k in r} - {"step", "loss", "lr"})
    cols = min(3, len(keys))
    nrows = -(-len(keys) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
