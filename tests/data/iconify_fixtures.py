"""Tiny hand-made Iconify packages (``json/<prefix>.json``) for the icon-set and emoji-artwork tests."""

import json
from pathlib import Path

SQUARE = '<path fill="currentColor" d="M4 4h16v16H4z"/>'
CIRCLE = '<circle cx="12" cy="12" r="8" fill="currentColor"/>'
RED_CIRCLE = '<circle cx="12" cy="12" r="8" fill="#e02020"/>'
BROKEN = '<path d="M4 4h16v16H4z"'  # not well-formed XML: no renderer can draw it
ENGLISH = frozenset({"shopping", "cart", "home", "traffic", "light", "battery", "house", "star", "heart",
                     "tree", "leaf", "bell", "book", "camera", "folder"})


def info(spdx: str | None, palette: bool = False, name: str = "") -> dict:
    out = {"name": name or "fixture", "author": {"name": "fixture author"}, "palette": palette}
    if spdx is not None:
        out["license"] = {"title": spdx, "spdx": spdx}
    return out


def write_set(package: Path, prefix: str, icons: dict[str, str], spdx: str | None = "MIT", *,
              palette: bool = False, aliases: dict | None = None, hidden: tuple[str, ...] = (),
              chars: dict | None = None, category: str | None = None) -> Path:
    data = {"prefix": prefix, "info": info(spdx, palette, prefix), "width": 24, "height": 24,
            "icons": {name: ({"body": body, "hidden": True} if name in hidden else {"body": body})
                      for name, body in icons.items()}}
    if category:
        data["info"]["category"] = category
    if aliases:
        data["aliases"] = aliases
    if chars:
        data["chars"] = chars
    path = package / "json" / f"{prefix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def read_records(out: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(out.glob("*.jsonl")) for line in path.read_text().splitlines()]
