"""HTML for results: code cards (function, ``path:line``, signature, score, highlighted source) and
the status line (count, latency, notes). Every value from an index is escaped; Pygments escapes the code.
"""

from __future__ import annotations

import html
from functools import lru_cache
from urllib.parse import quote

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


def _scores(hit: Hit) -> str:
    """The hit's score, and its dense (cosine) and lexical (BM25) parts when it has them."""
    parts = []
    if hit.dense is not None or hit.lexical is not None:
        dense = "—" if hit.dense is None else f"{hit.dense:.3f}"
        lexical = "—" if hit.lexical is None else f"{hit.lexical:.2f}"
        parts.append(f"<span class='mmssl-parts' title='dense: cosine similarity of the embeddings; lexical: BM25 "
                     f"score of the words (— : not among that side&#39;s candidates)'>dense {dense} · lexical "
                     f"{lexical}</span>")
    parts.append(f"<span class='mmssl-score' title='ranking score'>{hit.score:.3f}</span>")
    return "".join(parts)


def editor_url(path: str, line) -> str:
    """``vscode://file/PATH:LINE`` (the path percent-quoted, slashes kept)."""
    return f"vscode://file{quote(path if path.startswith('/') else '/' + path)}" + (f":{int(line)}" if line else "")


def _copy_button(label: str, text: str, title: str) -> str:
    """A button that copies ``text`` (kept in an escaped data attribute, never in script)."""
    return (f"<button type='button' class='mmssl-copy' title='{html.escape(title)}' data-copy='{html.escape(text)}' "
            "onclick='navigator.clipboard.writeText(this.dataset.copy);this.textContent=\"copied\"'>"
            f"{html.escape(label)}</button>")


def code_card(rank: int, hit: Hit, terms: frozenset[str] = frozenset(), file: str | None = None) -> str:
    """One hit as a card; ``terms`` (see :func:`mmssl.app.why.query_terms`) are marked in its name and
    docstring and listed when its code holds them; ``file`` (the real file) adds an editor link."""
    from mmssl.app.why import found_terms, mark_terms

    m = hit.metadata
    full_source = m.get("original_string") or ""
    source, lines, cut = full_source, full_source.splitlines(), ""
    if len(lines) > MAX_SOURCE_LINES:
        source = "\n".join(lines[:MAX_SOURCE_LINES])
        cut = f"<div class='mmssl-cut'>… {len(lines) - MAX_SOURCE_LINES} more lines</div>"
    location = m.get("url") or (f"{m.get('path', '')}:{m.get('line')}" if m.get("line") else m.get("path", ""))
    package = m.get("repo") or m.get("source") or ""
    docstring = m.get("docstring") or ""
    in_code = found_terms(full_source, terms)
    copy_location = f"{file}:{m.get('line')}" if file and m.get("line") else (file or str(location))
    editor = (f" <a class='mmssl-editor' href='{html.escape(editor_url(file, m.get('line')))}'>open in VS Code</a>"
              if file else "")
    return (
        f"<div class='mmssl-card' data-rank='{rank}'>"
        f"<div class='mmssl-card-head'><span class='mmssl-rank'>{rank}</span>"
        f"<span class='mmssl-func'>{mark_terms(str(m.get('func_name', '')), terms)}</span>{_scores(hit)}</div>"
        f"<div class='mmssl-loc'><code>{html.escape(str(location))}</code>"
        f"{' · <b>' + html.escape(package) + '</b>' if package else ''}"
        f" {_copy_button('copy path:line', copy_location, 'copy ' + copy_location)}"
        f" {_copy_button('copy code', full_source, 'copy the whole function')}{editor}</div>"
        f"<div class='mmssl-sig'><code>{html.escape(str(m.get('signature', '')))}</code></div>"
        f"{'<p class=mmssl-doc>' + mark_terms(docstring, terms) + '</p>' if docstring else ''}"
        f"{'<div class=mmssl-why>in the code: ' + ', '.join(f'<mark>{html.escape(t)}</mark>' for t in in_code) + '</div>' if in_code else ''}"
        f"<details{' open' if rank <= 3 else ''}><summary>source</summary>{highlight_python(source)}{cut}</details>"
        "</div>")


def code_cards(hits: list[Hit], terms: frozenset[str] = frozenset(), files: list | None = None) -> str:
    """All hits as cards, best first (``files``: each hit's real file or None, for editor links)."""
    files = files or [None] * len(hits)
    return "<div class='mmssl-cards'>" + "".join(code_card(i, h, terms, f)
                                                 for i, (h, f) in enumerate(zip(hits, files), 1)) + "</div>"


def image_caption(hit: Hit, similar: int = 0) -> str:
    """The gallery caption of an image hit: its name, score and how many near-duplicates are folded into it."""
    m = hit.metadata
    name = m.get("caption") or m.get("path", "").rsplit("/", 1)[-1]
    return f"{name} · {hit.score:.3f}" + (f" · +{similar} similar" if similar else "")


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
.mmssl-parts { margin-left: auto; font-family: var(--font-mono); font-size: 0.85em;
               color: var(--body-text-color-subdued); }
.mmssl-parts + .mmssl-score { margin-left: 8px; }
.mmssl-copy { font-size: 0.8em; padding: 0 6px; border: 1px solid var(--border-color-primary); border-radius: 4px;
              cursor: pointer; background: var(--background-fill-secondary); }
.mmssl-editor { font-size: 0.85em; }
.mmssl-why { font-size: 0.85em; color: var(--body-text-color-subdued); }
.mmssl-card mark { background: #fde68a; color: inherit; padding: 0 1px; border-radius: 2px; }
.mmssl-card details summary { cursor: pointer; font-size: 0.9em; color: var(--body-text-color-subdued); }
"""
