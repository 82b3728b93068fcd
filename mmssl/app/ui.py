"""The Gradio page over a :class:`~mmssl.app.search.SearchService`: Images, Code, Indexes and About tabs.

Handlers are thin: each calls the service and turns its result (or its :class:`UserError`) into
component values. Anything else that goes wrong is logged with its traceback on the server and the
page shows one friendly line, never the traceback. API names (for ``gradio_client``):
``/search_images`` (query, k, index, source), ``/search_by_image`` (image, k, index),
``/search_code`` (query, k, index, package, module), ``/indexes``, ``/build_index``, ``/refresh_index``.
"""

from __future__ import annotations

import functools
import logging

import gradio as gr

from mmssl.app import cards
from mmssl.app.search import EXAMPLE_CODE_QUERY, SearchService, UnreadableUpload, UserError, short_reason

log = logging.getLogger("mmssl.app")

ALL = "(all)"
IMAGE_EXAMPLES = ["a red fire truck", "grinning face", "cat", "a cup of hot coffee", "rainbow flag", "musical notes",
                  "chat bubble", "smiling cat"]
CODE_EXAMPLES = [EXAMPLE_CODE_QUERY, "read a file and return its lines", "compute the median of a list of numbers",
                 "convert a date string to a datetime", "escape special characters in HTML", "merge two sorted lists"]
TABLE_COLUMNS = ["index", "kind", "items", "model", "structure", "built", "updated", "source", "status"]


def forgiving_upload(component: gr.Image) -> gr.Image:
    """Make an image input hand :class:`UnreadableUpload` to its handler, instead of raising, when the
    upload is not a decodable image, so the handler can answer kindly (Gradio's own error is a bare toast).

    The instance's ``preprocess`` is wrapped rather than the class subclassed: Gradio writes a ``.pyi``
    stub beside the source file of every component subclass, at import time.
    """
    original = component.preprocess

    def preprocess(payload):
        try:
            image = original(payload)
            if image is not None:
                image.load()  # truncated files fail here, not at open
            return image
        except Exception as e:  # noqa: BLE001 - any decoder failure is the user's file, said kindly
            return UnreadableUpload("That file could not be read as an image (is it a PNG, JPEG or WebP, and "
                                    f"complete?). Details: {short_reason(e)}")

    component.preprocess = preprocess
    return component


def friendly(empty: tuple):
    """Wrap a handler: :class:`UserError` -> its message; anything else -> logged, one line shown.

    ``empty`` are the values of the other outputs when there is no result; the message replaces the
    output named by the sentinel ``MESSAGE`` in it.
    """
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as e:
                text = cards.message(str(e))
            except Exception as e:  # noqa: BLE001 - the page must never show a traceback
                log.exception("handler %s failed", fn.__name__)
                text = cards.message(f"Something went wrong on the server ({type(e).__name__}); the server log has "
                                     "the details. Try another query.")
            return tuple(text if value is MESSAGE else value for value in empty)
        return run
    return wrap


MESSAGE = object()


def _choice(value):
    return None if value in (None, "", ALL) else value


def _gallery(result):
    return [(h.metadata["path"], cards.image_caption(h)) for h in result.hits]


def build_app(service: SearchService) -> gr.Blocks:
    """The whole page; launch it with :func:`mmssl.app.serve.launch`."""
    max_k = service.config.max_k
    image_names, code_names = service.names("image"), service.names("code")

    with gr.Blocks(title="mmssl search", analytics_enabled=False) as demo:
        gr.Markdown("# mmssl search\nFind images by describing them or by example, and Python functions by "
                    "saying what they do. Everything runs on this machine.")

        # ---------------------------------------------------------------- images
        with gr.Tab("Images", id="images"):
            if not image_names:
                gr.Markdown(cards.message(_missing("image", service)), elem_id="images-missing")
            with gr.Row(equal_height=True):
                image_query = gr.Textbox(label="Describe the image", placeholder="e.g. a red fire truck", scale=5,
                                         max_lines=1, elem_id="image-query", autofocus=True)
                image_button = gr.Button("Search", variant="primary", scale=1, elem_id="image-search")
            with gr.Row():
                image_k = gr.Slider(1, max_k, value=min(12, max_k), step=1, label="results")
                image_index = gr.Dropdown(image_names, value=image_names[0] if image_names else None,
                                          label="index", visible=len(image_names) > 1)
                image_source = gr.Dropdown([ALL, *service.sources()], value=ALL, label="from")
            gr.Examples(IMAGE_EXAMPLES, inputs=image_query, label="try")
            with gr.Accordion("…or search with an image", open=False):
                with gr.Row():
                    upload = forgiving_upload(gr.Image(type="pil", label="an image like the ones you want",
                                                       sources=["upload", "clipboard"], height=180,
                                                       elem_id="image-upload"))
                    upload_button = gr.Button("Find similar images", scale=0)
            image_status = gr.Markdown("Type a description and press Enter. Click a result to find images like it.",
                                       label="status", elem_id="image-status")
            gallery = gr.Gallery(label="results", columns=6, height="auto", allow_preview=False, object_fit="contain",
                                 elem_id="image-results")
            image_hits = gr.State([])

            outputs = [gallery, image_status, image_hits]
            empty = ([], MESSAGE, [])

            @friendly(empty)
            def images_by_text(query, k, index, source):
                result = service.search_images(query, k, _choice(index), _choice(source))
                return _gallery(result), cards.status_line(len(result.hits), result.seconds, result.note), result.hits

            @friendly(empty)
            def images_by_image(image, k, index):
                result = service.search_by_image(image, k, _choice(index))
                return _gallery(result), cards.status_line(len(result.hits), result.seconds, "Images like your upload."), \
                    result.hits

            @friendly(empty)
            def images_like_clicked(hits, k, index, evt: gr.SelectData):
                if not hits or evt.index is None or not 0 <= int(evt.index) < len(hits):
                    raise UserError("Search first, then click a result to find images like it.")
                hit = hits[int(evt.index)]
                result = service.search_like_hit(hit, k, _choice(index))
                name = hit.metadata.get("caption") or "that image"
                return _gallery(result), cards.status_line(len(result.hits), result.seconds,
                                                           f"Images like “{name}”."), result.hits

            text_inputs = [image_query, image_k, image_index, image_source]
            image_button.click(images_by_text, text_inputs, outputs, api_name="search_images")
            image_query.submit(images_by_text, text_inputs, outputs, api_name=False)
            upload_button.click(images_by_image, [upload, image_k, image_index], outputs, api_name="search_by_image")
            upload.upload(images_by_image, [upload, image_k, image_index], outputs, api_name=False)
            gallery.select(images_like_clicked, [image_hits, image_k, image_index], outputs, api_name=False)

        # ---------------------------------------------------------------- code
        with gr.Tab("Code", id="code"):
            if not code_names:
                gr.Markdown(cards.message(_missing("code", service)), elem_id="code-missing")
            with gr.Row(equal_height=True):
                code_query = gr.Textbox(label="What should the function do?", placeholder=f"e.g. {EXAMPLE_CODE_QUERY}",
                                        scale=5, max_lines=1, elem_id="code-query")
                code_button = gr.Button("Search", variant="primary", scale=1, elem_id="code-search")
            with gr.Row():
                code_k = gr.Slider(1, max_k, value=min(10, max_k), step=1, label="results")
                code_index = gr.Dropdown(code_names, value=code_names[0] if code_names else None, label="index",
                                         visible=len(code_names) > 1)
                package = gr.Dropdown([ALL, *service.packages()], value=ALL, label="package")
                module = gr.Textbox(label="module prefix", placeholder="e.g. json or urllib.parse", max_lines=1)
            gr.Examples(CODE_EXAMPLES, inputs=code_query, label="try")
            code_status = gr.Markdown("Describe a function in plain words and press Enter.", label="status",
                                      elem_id="code-status")
            code_results = gr.HTML(label="results", elem_id="code-results")

            @friendly((MESSAGE, ""))
            def code_search(query, k, index, package_name, module_prefix):
                result = service.search_code(query, k, _choice(index), _choice(package_name), module_prefix)
                return cards.status_line(len(result.hits), result.seconds, result.note), cards.code_cards(result.hits)

            code_inputs = [code_query, code_k, code_index, package, module]
            code_button.click(code_search, code_inputs, [code_status, code_results], api_name="search_code")
            code_query.submit(code_search, code_inputs, [code_status, code_results], api_name=False)
            code_index.change(lambda name: gr.update(choices=[ALL, *service.packages(_choice(name))], value=ALL),
                              code_index, package, api_name=False)

        # ---------------------------------------------------------------- indexes
        with gr.Tab("Indexes", id="indexes"):
            table = gr.Dataframe(_table(service), headers=TABLE_COLUMNS, label="indexes", interactive=False,
                                 wrap=True, elem_id="index-table")
            reload_button = gr.Button("Reload list", size="sm")
            reload_button.click(lambda: _table(service), None, table, api_name="indexes")
            index_status = gr.Markdown()
            if service.allowed_build_folders:
                gr.Markdown("### Build or refresh an index\nThe operator allows these folders "
                            "(`--allow-folder`); an index of the same name is replaced atomically.")
                with gr.Row():
                    folder = gr.Dropdown(service.allowed_build_folders, value=service.allowed_build_folders[0],
                                         label="folder")
                    kind = gr.Radio(["image", "code"], value="image", label="it holds",
                                    info="image: png/jpg/webp files; code: a Python project")
                    name = gr.Textbox(label="index name", placeholder="my-photos", max_lines=1)
                build_button = gr.Button("Build index", variant="primary")
                with gr.Row():
                    refresh_name = gr.Dropdown(_refreshable(service), label="image index to refresh")
                    refresh_button = gr.Button("Refresh (re-embed changed files only)")

                @friendly((MESSAGE, gr.update(), gr.update(), gr.update(), gr.update(), gr.update()))
                def build(folder_value, kind_value, name_value, progress=gr.Progress(track_tqdm=True)):
                    loaded = service.build_from_folder(name_value, folder_value, kind_value)
                    _allow_new_folders(demo, service)
                    text = (f"Built **{loaded.name}**: {loaded.index.manifest.count} {loaded.index.manifest.kind} items. "
                            f"Search it in the {'Images' if loaded.kind == 'image' else 'Code'} tab.")
                    return (text, _table(service), _names_update(service, "image"), _names_update(service, "code"),
                            gr.update(choices=_refreshable(service)), gr.update())

                build_button.click(build, [folder, kind, name],
                                   [index_status, table, image_index, code_index, refresh_name, name],
                                   api_name="build_index")

                @friendly((MESSAGE, gr.update()))
                def refresh(name_value, progress=gr.Progress(track_tqdm=True)):
                    return service.refresh(name_value), _table(service)

                refresh_button.click(refresh, refresh_name, [index_status, table], api_name="refresh_index")
            else:
                gr.Markdown("Building from the app is off: start it with `--allow-folder PATH` to let users index "
                            "that folder here. From a shell: `python -m mmssl index build NAME --model "
                            "models/clip-default --images FOLDER` (or `--model models/code-default --project "
                            "FOLDER`), then `python -m mmssl serve --index NAME`.")

        # ---------------------------------------------------------------- about
        with gr.Tab("About", id="about"):
            gr.Markdown(_about(service))
    return demo


def _missing(kind: str, service: SearchService) -> str:
    try:
        service.get(None, kind)
    except UserError as e:
        return str(e)
    return ""


def _table(service: SearchService) -> list[list]:
    return [[row[c] for c in TABLE_COLUMNS] for row in service.describe()]


def _refreshable(service: SearchService) -> list[str]:
    return [n for n in service.names("image") if service.indexes[n].index.manifest.source.get("folder")]


def _names_update(service: SearchService, kind: str):
    names = service.names(kind)
    return gr.update(choices=names, visible=len(names) > 1)


def _allow_new_folders(demo: gr.Blocks, service: SearchService) -> None:
    """After a build, serve the new index's image folders too (Gradio reads ``allowed_paths`` per request)."""
    known = set(demo.allowed_paths)
    demo.allowed_paths.extend(f for f in service.image_folders() if f not in known)


def _about(service: SearchService) -> str:
    from pathlib import Path

    from mmssl.eval.evaluate import format_table
    from mmssl.model import read_model_card

    parts = ["## How it works\nA query is embedded by a dual encoder (a text tower and an image or code tower "
             "trained with symmetric InfoNCE) and compared by cosine similarity with every item of a FAISS index "
             "built with the same model. Scores are cosine similarities (−1…1); the latency shown is the "
             "server's time to embed the query and search."]
    seen = set()
    for loaded in service.indexes.values():
        model = loaded.model
        if id(model) in seen:
            continue
        seen.add(id(model))
        parts.append(f"## Model `{Path(model.path).name}` ({model.kind})\n`{model.path}` · fingerprint "
                     f"`{model.fingerprint}` · embedding width {model.embed_dim}")
        try:
            card = read_model_card(model.path)
            if card is not None and card.facts:
                parts.append("Training: " + " · ".join(f"{k}: {v}" for k, v in card.facts.items()))
            if card is not None and card.metrics:
                parts.append("Held-out evaluation:\n```\n" + format_table(card.metrics) + "\n```")
        except (ValueError, KeyError, TypeError) as e:
            parts.append(f"(its manifest could not be read: {e})")
    for kind, path in (("image", service.config.image_model), ("code", service.config.code_model)):
        if not service.names(kind):
            parts.append(f"## No {kind} index\n{_missing(kind, service)} (model: `{path}`)")
    return "\n\n".join(parts)
