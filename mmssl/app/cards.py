"""HTML for results: code cards (function, ``path:line``, signature, score, highlighted source) and
the status line (count, latency, notes). Every value from an index is escaped; Pygments escapes the code.
"""

from __future__ import annotations

import html
from functools import lru_cache

from mmssl.index import Hit

MAX_SOURCE_LINES = 60  # longer functions are cut in the card, with a line saying so


@lru_cache(maxsize=1)
def _highlighter():
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    # inline styles: the card needs no stylesheet, so it looks the same in any Gradio theme
    return PythonLexer(), HtmlFormatter(noclasses=True, style="friendly", nowrap=False,
                                        cssstyles="margin:0;padding:8px;border-radius:6px;overflow-x:auto")


@lru_cache(maxsize=4096)  # ~1 ms a function: popular results are rendered once (a few MB at most)
def highlight_python(source: str) -> str:
    """``source`` as HTML with inline Pygments colours (escaped)."""
    from pygments import highlight

    lexer, formatter = _highlighter()
    return highlight(source, lexer, formatter)


def code_card(rank: int, hit: Hit) -> str:
    m = hit.metadata
    source = m.get("original_string") or ""
    lines = source.splitlines()
    cut = ""
    if len(lines) > MAX_SOURCE_LINES:
        source = "\n".join(lines[:MAX_SOURCE_LINES])
        cut = f"<div class='mmssl-cut'>… {len(lines) - MAX_SOURCE_LINES} more lines</div>"
    location = m.get("url") or (f"{m.get('path', '')}:{m.get('line')}" if m.get("line") else m.get("path", ""))
    package = m.get("repo") or m.get("source") or ""
    docstring = m.get("docstring") or ""
    return (
        f"<div class='mmssl-card' data-rank='{rank}'>"
        f"<div class='mmssl-card-head'><span class='mmssl-rank'>{rank}</span>"
        f"<span class='mmssl-func'>{html.escape(str(m.get('func_name', '')))}</span>"
        f"<span class='mmssl-score' title='cosine similarity'>{hit.score:.3f}</span></div>"
        f"<div class='mmssl-loc'><code>{html.escape(str(location))}</code>"
        f"{' · <b>' + html.escape(package) + '</b>' if package else ''}</div>"
        f"<div class='mmssl-sig'><code>{html.escape(str(m.get('signature', '')))}</code></div>"
        f"{'<p class=mmssl-doc>' + html.escape(docstring) + '</p>' if docstring else ''}"
        f"<details{' open' if rank <= 3 else ''}><summary>source</summary>{highlight_python(source)}{cut}</details>"
        "</div>")


def code_cards(hits: list[Hit]) -> str:
    """All hits as cards, best first."""
    return "<div class='mmssl-cards'>" + "".join(code_card(i, h) for i, h in enumerate(hits, 1)) + "</div>"


def image_caption(hit: Hit) -> str:
    """The gallery caption of an image hit: its name and score."""
    m = hit.metadata
    name = m.get("caption") or m.get("path", "").rsplit("/", 1)[-1]
    return f"{name} · {hit.score:.3f}"


def status_line(count: int, seconds: float, note: str = "") -> str:
    """``"12 results in 23 ms"`` plus any note, as Markdown."""
    text = f"**{count} result{'s' if count != 1 else ''}** in {seconds * 1000:.0f} ms"
    return f"{text}. {note}" if note else text


def message(text: str) -> str:
    """A friendly message in place of results (Markdown, shown in the status line)."""
    return f"ℹ️ {text}"


CSS = """
.mmssl-cards { display: flex; flex-direction: column; gap: 12px; }
.mmssl-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px;
              background: var(--background-fill-primary); }
.mmssl-card-head { display: flex; align-items: baseline; gap: 10px; }
.mmssl-rank { color: var(--body-text-color-subdued); font-size: 0.9em; }
.mmssl-func { font-weight: 700; font-size: 1.1em; font-family: var(--font-mono); }
.mmssl-score { margin-left: auto; font-family: var(--font-mono); color: var(--color-accent); }
.mmssl-loc, .mmssl-sig { font-size: 0.9em; margin-top: 2px; }
.mmssl-doc { margin: 6px 0; color: var(--body-text-color-subdued); }
.mmssl-cut { font-size: 0.85em; color: var(--body-text-color-subdued); padding: 2px 8px; }
.mmssl-card details summary { cursor: pointer; font-size: 0.9em; color: var(--body-text-color-subdued); }
"""
