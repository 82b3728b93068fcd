"""The corpus browser: what ``make demo`` serves until the search app lands.

Shows every built corpus's report (pairs per split, what was skipped and why) and lets a user page
through samples — images with their captions, functions with their docstrings — so the data the
encoders will train on can be inspected. Text search over images and code arrives with the dual
encoders and indexes; the page says so instead of pretending.
"""

from __future__ import annotations

import html
import json
import random

from mmssl.data.build import CORPORA, IMAGE_CORPORA
from mmssl.data.paths import corpus_dir
from mmssl.data.report import CorpusReport, format_reports
from mmssl.data.splits import SPLITS


def built_corpora() -> list[str]:
    return [n for n in CORPORA if (corpus_dir(n) / "report.json").exists()]


def _read_rows(name: str, split: str) -> list[dict]:
    path = corpus_dir(name) / f"{split}.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sample_images(name: str, split: str, n: int = 24, seed: int = 0) -> list[tuple[str, str]]:
    """(absolute image path, caption) for ``n`` random samples of an image corpus split."""
    rows = _read_rows(name, split)
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    folder = corpus_dir(name)
    return [(str(folder / r["image"]), r["text"]) for r in rows]


def sample_code_html(split: str, n: int = 8, seed: int = 0) -> str:
    rows = _read_rows("code", split)
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    cards = []
    for r in rows:
        cards.append(f"<div style='border:1px solid #ddd;border-radius:8px;padding:8px;margin:8px 0'>"
                     f"<b>{html.escape(r['func_name'])}</b> <code>{html.escape(r['url'])}</code> "
                     f"<i>({html.escape(r['repo'])})</i><p>{html.escape(r['docstring'])}</p>"
                     f"<pre style='max-height:240px;overflow:auto'>{html.escape(r['code'])}</pre></div>")
    return "".join(cards) or "<p>The code corpus is not built yet: <code>python -m mmssl data build code</code></p>"


def build_app():
    import gradio as gr

    names = built_corpora()
    image_names = [n for n in names if n in IMAGE_CORPORA]
    reports = [CorpusReport.load(corpus_dir(n) / "report.json") for n in names]
    with gr.Blocks(title="mmssl — corpus browser") as demo:
        gr.Markdown("# mmssl — corpus browser\nThe corpora the encoders train on. Text→image and "
                    "natural-language→code search arrive with the dual encoders and FAISS indexes; "
                    "until then this page shows the data.")
        with gr.Tab("Images"):
            if image_names:
                with gr.Row():
                    corpus = gr.Dropdown(image_names, value=image_names[0], label="corpus")
                    split = gr.Dropdown(list(SPLITS), value="test", label="split")
                    seed = gr.Number(0, label="shuffle seed", precision=0)
                gallery = gr.Gallery(label="samples", columns=8, height="auto")
                inputs = [corpus, split, seed]
                for control in inputs:
                    control.change(lambda c, s, k: sample_images(c, s, seed=int(k or 0)), inputs, gallery)
                demo.load(lambda c, s, k: sample_images(c, s, seed=int(k or 0)), inputs, gallery)
            else:
                gr.Markdown("No image corpus built yet: `python -m mmssl data build emoji`.")
        with gr.Tab("Code"):
            code_split = gr.Dropdown(list(SPLITS), value="test", label="split")
            code_html = gr.HTML()
            code_split.change(sample_code_html, code_split, code_html)
            demo.load(sample_code_html, code_split, code_html)
        with gr.Tab("Corpora"):
            gr.Markdown("```\n" + (format_reports(reports) if reports else "nothing built yet") + "\n```")
    return demo, [str(corpus_dir(n)) for n in image_names]


def serve(host: str = "127.0.0.1", port: int = 7860) -> None:
    demo, allowed = build_app()
    demo.launch(server_name=host, server_port=port, share=False, allowed_paths=allowed, show_error=False)
