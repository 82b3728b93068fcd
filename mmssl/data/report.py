"""What a corpus build produced and what it skipped, by reason."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mmssl.data.splits import ALL_SPLITS, SPLITS, UNSEEN_SPLIT
from mmssl.io import write_json


@dataclass
class CorpusReport:
    """Counts of one corpus build.

    ``pairs`` maps split -> number of (input, caption/query) pairs; ``skipped`` maps a reason
    ("truncated image", "syntax error", "not utf-8", "noisy title: author name", ...) -> count;
    ``examples`` keeps a few skipped paths per reason so a user can look; ``extra`` holds corpus
    specific facts (e.g. number of base emoji per split).
    """

    corpus: str
    pairs: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def skip(self, reason: str, where: str = "") -> None:
        """Count one skipped item; remember up to 5 examples per reason."""
        self.skipped[reason] += 1
        if where and len(self.examples.setdefault(reason, [])) < 5:
            self.examples[reason].append(where)

    def skipped_line(self) -> str:
        """``"skipped 2 files: 1 corrupt or truncated image (/p/a.png), 1 image too large (/p/b.png)"``; "" if none."""
        if not self.skipped:
            return ""
        parts = [f"{count} {reason} ({', '.join(self.examples.get(reason, [])[:3])}"
                 f"{', ...' if count > 3 else ''})" for reason, count in self.skipped.most_common()]
        total = sum(self.skipped.values())
        return f"skipped {total} file{'s' if total != 1 else ''}: " + "; ".join(parts)

    @property
    def total(self) -> int:
        return sum(self.pairs.values())

    def to_dict(self) -> dict:
        return {"corpus": self.corpus, "pairs": dict(self.pairs), "total": self.total,
                "skipped": dict(self.skipped), "examples": self.examples, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "CorpusReport":
        return cls(corpus=d["corpus"], pairs=dict(d["pairs"]), skipped=Counter(d.get("skipped", {})),
                   examples=dict(d.get("examples", {})), extra=dict(d.get("extra", {})))

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def load(cls, path: Path) -> "CorpusReport":
        return cls.from_dict(json.loads(Path(path).read_text()))


def format_reports(reports: list[CorpusReport]) -> str:
    """A plain-text table: corpus, pairs per split (``unseen`` only if a corpus has it), total,
    skipped by reason."""
    splits = ALL_SPLITS if any(UNSEEN_SPLIT in r.pairs for r in reports) else SPLITS
    head = f"{'corpus':<15}" + "".join(f"{s:>8}" for s in splits) + f"{'total':>8}  skipped"
    rows = [head, "-" * len(head)]
    for r in reports:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(r.skipped.items())) or "-"
        counts = "".join(f"{r.pairs.get(s, 0):>8}" for s in splits)
        rows.append(f"{r.corpus:<15}{counts}{r.total:>8}  {skipped}")
    return "\n".join(rows)
