"""The Gradio page over a :class:`~mmssl.app.search.SearchService`: Images, Code, Indexes and About tabs.

Handlers are thin: each calls the service and turns its result (or its :class:`UserError`) into
component values. Anything else that goes wrong is logged with its traceback on the server and the
page shows one friendly line, never the traceback. API names (for ``gradio_client``):
``/search_images`` (query — terms may add and subtract, ``beach -people`` —, k, index, source, fold
near-duplicates), ``/more_images`` and ``/more_code`` (the next page of the session's last text search),
``/search_by_image`` (image, k, index, optional text modifier "…but red"),
``/search_code`` (query, k, index, package, module, path glob, "any"/"function"/"method", exclude tests,
"hybrid"/"dense"/"lexical"), ``/indexes``, ``/build_index``, ``/refresh_index``, ``/rate_image_up`` and
``/rate_code_down`` (and the other two: index, query, result position), ``/evaluate_queries``
(index, queries text, baselines, optional uploaded .tsv/.jsonl file), ``/retrain`` (index, new index name,
steps), ``/retrain_progress`` and ``/switch_to_retrained``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import gradio as gr

from mmssl.app import cards
from mmssl.app.search import EXAMPLE_CODE_QUERY, SearchService, UnreadableUpload, UserError, short_reason
from mmssl.app.why import query_terms
from mmssl.index.code_filters import FUNCTION_KINDS
from mmssl.index.hybrid import SEARCH_MODES

log = logging.getLogger("mmssl.app")

ALL = "(all)"
IMAGE_EXAMPLES = ["a red fire truck", "grinning face", "cat", "a cup of hot coffee", "rainbow flag", "musical notes",
                  "chat bubble", "smiling cat", "face -smiling"]
CODE_EXAMPLES = [EXAMPLE_CODE_QUERY, "read a file and return its lines", "compute the median of a list of numbers",
                 "convert a date string to a datetime", "escape special characters in HTML", "merge two sorted lists"]
TABLE_COLUMNS = ["index", "kind", "items", "model", "structure", "built", "updated", "source", "status"]
JOB_COLUMNS = ["index", "tab", "searchable now", "status"]
JOB_POLL_SECONDS = 2.0


def forgiving_upload(component: gr.Image) -> gr.Image:
    """Make an image input hand :class:`UnreadableUpload` to its handler, instead of raising, when the
    upload is not an image at all, so the handler can answer kindly (Gradio's own error is a bare toast).
    The input is a file path (``type="filepath"``): Gradio reads only its header, and the service decodes
    it within the pixel budget (:mod:`mmssl.data.imageio`).

    The instance's ``preprocess`` is wrapped rather than the class subclassed: Gradio writes a ``.pyi``
    stub beside the source file of every component subclass, at import time.
    """
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except Exception as e:  # noqa: BLE001 - any decoder failure is the user's file, said kindly
            return UnreadableUpload("That file could not be read as an image (is it a PNG, JPEG or WebP, and "
                                    f"complete?). Details: {short_reason(e)}")

    component.preprocess = preprocess
    return component


def raw_when_invalid(component):
    """Hand the raw value to the handler when the component's own check fails (a slider sent ``"ten"``
    over the API), so the service answers with its message; Gradio's own failure reaches an API client
    as ``{"error": null}``."""
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except Exception:  # noqa: BLE001 - the service validates the raw value with a message
            return payload

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
    return _gallery_items(result.hits, result.similar)


def _gallery_items(hits: list, similar: list | None = None) -> list:
    """Gallery values of ``hits``; ``similar`` (per hit, its folded near-duplicates) adds "+N similar"."""
    similar = similar or [[] for _ in hits]
    return [(h.metadata["path"], cards.image_caption(h, len(more))) for h, more in zip(hits, similar)]


def _page_of(result, **search) -> dict | None:
    """What the "more results" button needs to fetch the page after ``result`` (None: there is none)."""
    return {**search, "offset": result.offset + len(result.hits)} if result.more else None


def _more_button(page) -> dict:
    return gr.update(visible=page is not None)


def build_app(service: SearchService) -> gr.Blocks:
    """The whole page, one function per tab; launch it with :func:`mmssl.app.serve.launch`."""
    with gr.Blocks(title="mmssl search", analytics_enabled=False) as demo:
        gr.Markdown("# mmssl search\nFind images by describing them or by example, and Python functions by "
                    "saying what they do. Everything runs on this machine.")
        with gr.Tab("Images", id="images"):
            images = images_tab(service)
        with gr.Tab("Code", id="code"):
            code = code_tab(service)
        with gr.Tab("Indexes", id="indexes"):
            table = indexes_tab(service, images.index, code.index)
            jobs_table = gr.Dataframe(_job_rows(service), headers=JOB_COLUMNS, label="background builds",
                                      interactive=False, wrap=True, elem_id="build-jobs",
                                      visible=service.jobs is not None)
        with gr.Tab("About", id="about"):
            gr.Markdown(_about(service))
        if service.jobs is not None:  # poll the background builds until they are done
            timer = gr.Timer(JOB_POLL_SECONDS, active=service.jobs.running)
            timer.tick(lambda: _job_progress(service), None,
                       [images.notice, code.notice, jobs_table, table, images.banner, code.banner, images.filter,
                        code.filter, images.index, code.index, timer], api_name="build_progress")

        # every page load (a new session, a reload) sees the indexes loaded now, including ones built since
        demo.load(lambda: (_names_update(service, "image"), _names_update(service, "code"), _table(service)),
                  None, [images.index, code.index, table], api_name=False)
    return demo


@dataclass
class SearchTab:
    """What other parts of the page update in a search tab: its index chooser, the "no index" banner,
    the background-build notice and its filter (image source or code package)."""

    index: gr.Dropdown
    banner: gr.Markdown
    notice: gr.Markdown
    filter: gr.Dropdown


def images_tab(service: SearchService) -> SearchTab:
    """Text → image and image → image search."""
    banner, notice = _missing_banner(service, "image", "images-missing")
    with gr.Row(equal_height=True):
        image_query = gr.Textbox(label="Describe the image", placeholder="e.g. a red fire truck, or beach -people",
                                 info="add and subtract: “cat -smiling”, “2:heart + fire” (2: weighs a term twice)",
                                 scale=5, max_lines=1, elem_id="image-query", autofocus=True)
        image_button = gr.Button("Search", variant="primary", scale=1, elem_id="image-search")
    with gr.Row():
        image_k, image_index = _results_and_index(service, "image", 12)
        image_source = gr.Dropdown([ALL, *service.sources()], value=ALL, label="from", allow_custom_value=True)
        image_collapse = gr.Checkbox(True, label="fold near-duplicates", elem_id="image-collapse",
                                     info="the same concept in several artworks, sets or skin tones: shown once, "
                                          "“+N similar”")
    gr.Examples(IMAGE_EXAMPLES, inputs=image_query, label="try")
    with gr.Accordion("…or search with an image", open=False):
        with gr.Row():
            upload = forgiving_upload(gr.Image(type="filepath", image_mode=None,
                                               label="an image like the ones you want",
                                               sources=["upload", "clipboard"], height=180,
                                               elem_id="image-upload"))
            with gr.Column(scale=0, min_width=220):
                modifier = gr.Textbox("", label="…but (optional)", placeholder="e.g. red, or -text", max_lines=1,
                                      info="this image, moved by these terms", elem_id="image-modifier")
                upload_button = gr.Button("Find similar images", elem_id="image-upload-search")
    image_status = gr.Markdown("Type a description and press Enter. Click a result to find images like it.",
                               label="status", elem_id="image-status")
    gallery = gr.Gallery(label="results", columns=6, height="auto", allow_preview=False, object_fit="contain",
                         elem_id="image-results")
    more_button = gr.Button("More results", visible=False, size="sm", elem_id="image-more")
    image_hits, image_similar, image_page = gr.State([]), gr.State([]), gr.State(None)
    with gr.Accordion("near-duplicates folded into a result", open=False, elem_id="image-similar-box"):
        similar_choice = raw_when_invalid(gr.Dropdown([], label="show the similar versions of",
                                                      elem_id="image-similar-choice"))
        similar_gallery = gr.Gallery(label="similar versions", columns=8, height="auto", allow_preview=False,
                                     object_fit="contain", elem_id="image-similar")

    outputs = [gallery, image_status, image_hits, image_similar, image_page, more_button]
    empty = ([], MESSAGE, [], [], None, gr.update(visible=False))

    def shown(result, note, page=None):
        return (_gallery(result), cards.status_line(len(result.hits), result.seconds, note), result.hits,
                result.similar or [[] for _ in result.hits], page, _more_button(page))

    @friendly(empty)
    def images_by_text(query, k, index, source, fold=True):
        result = service.search_images(query, k, _choice(index), _choice(source), collapse=bool(fold))
        return shown(result, result.note, _page_of(result, query=query, k=k, index=_choice(index),
                                                   source=_choice(source), collapse=bool(fold)))

    @friendly((gr.update(), MESSAGE, gr.update(), gr.update(), None, gr.update(visible=False)))
    def more_images(page, hits, similar):
        if not page:
            raise UserError("Search with words first; “more results” then fetches the next page.")
        result = service.search_images(page["query"], page["k"], page["index"], page["source"],
                                       offset=page["offset"], collapse=page["collapse"])
        hits, similar = [*(hits or []), *result.hits], [*(similar or []), *result.similar]
        note = _join_note(f"Results {result.offset + 1}–{result.offset + len(result.hits)} added.", result.note)
        next_page = _page_of(result, **{key: page[key] for key in ("query", "k", "index", "source", "collapse")})
        return (_gallery_items(hits, similar), cards.status_line(len(hits), result.seconds, note), hits,
                similar, next_page, _more_button(next_page))

    @friendly(empty)
    def images_by_image(image, k, index, but=""):
        result = service.search_by_image(image, k, _choice(index), modifier=but or "")
        return shown(result, result.note or "Images like your upload.")

    @friendly(empty)
    def images_like_clicked(hits, k, index, evt: gr.SelectData):
        if not hits or evt.index is None or not 0 <= int(evt.index) < len(hits):
            raise UserError("Search first, then click a result to find images like it.")
        hit = hits[int(evt.index)]
        result = service.search_like_hit(hit, k, _choice(index))
        name = hit.metadata.get("caption") or "that image"
        return shown(result, f"Images like “{name}”.")

    text_inputs = [image_query, image_k, image_index, image_source, image_collapse]
    image_button.click(images_by_text, text_inputs, outputs, api_name="search_images")
    image_query.submit(images_by_text, text_inputs, outputs, api_name=False)
    more_button.click(more_images, [image_page, image_hits, image_similar], outputs, api_name="more_images")
    similar_folds(image_similar, image_hits, similar_choice, similar_gallery)
    upload_inputs = [upload, image_k, image_index, modifier]
    upload_button.click(images_by_image, upload_inputs, outputs, api_name="search_by_image")
    upload.upload(images_by_image, upload_inputs, outputs, api_name=False)
    modifier.submit(images_by_image, upload_inputs, outputs, api_name=False)
    gallery.select(images_like_clicked, [image_hits, image_k, image_index], outputs, api_name=False)
    feedback_row(service, "image", image_index, image_query, image_hits, [image_button.click, image_query.submit],
                 [upload_button.click, upload.upload, gallery.select])
    return SearchTab(image_index, banner, notice, image_source)


def _join_note(first: str, second: str) -> str:
    return f"{first} {second}" if second else first


def similar_folds(similar: gr.State, hits: gr.State, choice: gr.Dropdown, folded: gr.Gallery) -> None:
    """The "+N similar" of each shown result: choose one, see the near-duplicates folded into it. A search only
    refreshes the choices (the folded images are sent when a user asks for them, not with every search)."""
    def choices(found, hits_now):
        options = [(f"{_hit_label(i, h)} (+{len(more)} similar)", i)
                   for i, (h, more) in enumerate(zip(hits_now or [], found or [])) if more]
        return gr.update(choices=options, value=None), []

    similar.change(choices, [similar, hits], [choice, folded], api_name=False)
    choice.input(_folded, [similar, choice], folded, api_name=False)


def _folded(similar, position) -> list:
    """The gallery of the near-duplicates folded into result ``position`` (none: empty)."""
    if position is None or not str(position).isdigit() or not similar or int(position) >= len(similar):
        return []
    return _gallery_items(similar[int(position)])


def code_tab(service: SearchService) -> SearchTab:
    """Text → code search (hybrid by default) with package, module, path, function/method and test filters."""
    banner, notice = _missing_banner(service, "code", "code-missing")
    with gr.Row(equal_height=True):
        code_query = gr.Textbox(label="What should the function do?", placeholder=f"e.g. {EXAMPLE_CODE_QUERY}",
                                scale=5, max_lines=1, elem_id="code-query")
        code_button = gr.Button("Search", variant="primary", scale=1, elem_id="code-search")
    with gr.Row():
        code_k, code_index = _results_and_index(service, "code", 10)
        package = gr.Dropdown([ALL, *service.packages()], value=ALL, label="package", allow_custom_value=True)
        module = gr.Textbox(label="module prefix", placeholder="e.g. json or urllib.parse", max_lines=1)
    with gr.Row():
        path_glob = gr.Textbox("", label="path glob", placeholder="e.g. *parse*.py or src/*/io.py", max_lines=1,
                               elem_id="code-path-glob")
        function_kind = raw_when_invalid(gr.Radio(list(FUNCTION_KINDS), value="any", label="functions or methods",
                                                  elem_id="code-kind"))
        exclude_tests = gr.Checkbox(False, label="exclude tests", elem_id="code-exclude-tests")
        ranking = raw_when_invalid(gr.Radio(list(SEARCH_MODES), value="hybrid", label="ranking",
                                            info="hybrid: embeddings + BM25 words", elem_id="code-ranking"))
    gr.Examples(CODE_EXAMPLES, inputs=code_query, label="try")
    code_status = gr.Markdown("Describe a function in plain words and press Enter.", label="status",
                              elem_id="code-status")
    code_results = gr.HTML(label="results", elem_id="code-results")
    code_more = gr.Button("More results", visible=False, size="sm", elem_id="code-more")
    code_hits, code_page = gr.State([]), gr.State(None)

    def shown(hits, query, index, seconds, note, page):
        files = [service.source_file(h, index) for h in hits]
        return (cards.status_line(len(hits), seconds, note), cards.code_cards(hits, query_terms(query), files), hits,
                page, _more_button(page))

    @friendly((MESSAGE, "", [], None, gr.update(visible=False)))
    def code_search(query, k, index, package_name, module_prefix, glob="", kind="any", no_tests=False,
                    mode="hybrid"):
        search = dict(query=query, k=k, index=_choice(index), package=_choice(package_name), module=module_prefix,
                      path_glob=glob, kind=kind or "any", exclude_tests=bool(no_tests), mode=mode or "hybrid")
        result = _code_page(service, search, 0)
        return shown(result.hits, query, search["index"], result.seconds, result.note, _page_of(result, **search))

    @friendly((MESSAGE, gr.update(), gr.update(), None, gr.update(visible=False)))
    def more_code(page, hits):
        if not page:
            raise UserError("Search first; “more results” then fetches the next page.")
        search = {key: value for key, value in page.items() if key != "offset"}
        result = _code_page(service, search, page["offset"])
        note = _join_note(f"Results {result.offset + 1}–{result.offset + len(result.hits)} added.", result.note)
        return shown([*(hits or []), *result.hits], page["query"], page["index"], result.seconds, note,
                     _page_of(result, **search))

    code_inputs = [code_query, code_k, code_index, package, module, path_glob, function_kind, exclude_tests, ranking]
    code_outputs = [code_status, code_results, code_hits, code_page, code_more]
    code_button.click(code_search, code_inputs, code_outputs, api_name="search_code")
    code_query.submit(code_search, code_inputs, code_outputs, api_name=False)
    path_glob.submit(code_search, code_inputs, code_outputs, api_name=False)  # Enter in the glob box searches too
    code_more.click(more_code, [code_page, code_hits], code_outputs, api_name="more_code")
    feedback_row(service, "code", code_index, code_query, code_hits, [code_button.click, code_query.submit])
    code_index.change(lambda name: gr.update(choices=[ALL, *service.packages(_choice(name))], value=ALL),
                      code_index, package, api_name=False)
    return SearchTab(code_index, banner, notice, package)


def _code_page(service: SearchService, search: dict, offset: int):
    """One page of a code search from the tab's values (``search``: query, k, index and the filters)."""
    return service.search_code(search["query"], search["k"], search["index"], search["package"], search["module"],
                               path_glob=search["path_glob"], kind=search["kind"],
                               exclude_tests=search["exclude_tests"], mode=search["mode"], offset=offset)


def indexes_tab(service: SearchService, image_index: gr.Dropdown, code_index: gr.Dropdown) -> gr.Dataframe:
    """The table of indexes (loaded or with their problem), and building/refreshing from allowed folders;
    returns the table."""
    table = gr.Dataframe(_table(service), headers=TABLE_COLUMNS, label="indexes", interactive=False,
                         wrap=True, elem_id="index-table")
    reload_button = gr.Button("Reload list", size="sm")
    reload_button.click(lambda: _table(service), None, table, api_name="indexes")
    index_status = gr.Markdown()
    if service.allowed_build_folders:
        gr.Markdown("### Build or refresh an index\nThe operator allows these folders "
                    "(`--allow-folder`). An index of the same name is replaced (atomically) only if you "
                    "tick “replace”; the server's own indexes cannot be replaced from here.")
        with gr.Row():
            folder = gr.Dropdown(service.allowed_build_folders, value=service.allowed_build_folders[0],
                                 label="folder")
            kind = gr.Radio(["image", "code"], value="image", label="it holds",
                            info="image: png/jpg/webp files; code: a Python project")
            name = gr.Textbox(label="index name", placeholder="my-photos", max_lines=1)
            replace = gr.Checkbox(False, label="replace an index of this name")
        build_button = gr.Button("Build index", variant="primary")
        with gr.Row():
            refresh_name = gr.Dropdown(_refreshable(service), label="image index to refresh",
                                       allow_custom_value=True)
            refresh_button = gr.Button("Refresh (re-embed changed files only)")

        @friendly((MESSAGE, gr.update(), gr.update(), gr.update(), gr.update(), gr.update()))
        def build(folder_value, kind_value, name_value, replace_value=False,
                  progress=gr.Progress(track_tqdm=True)):
            # its image folders are served from now on (SearchService.on_loaded, see serve.launch)
            loaded = service.build_from_folder(name_value, folder_value, kind_value, replace=bool(replace_value))
            text = (f"Built **{loaded.name}**: {loaded.index.manifest.count} {loaded.index.manifest.kind} items. "
                    f"Search it in the {'Images' if loaded.kind == 'image' else 'Code'} tab.")
            if loaded.build_note:
                text += f"\n\n{loaded.build_note[0].upper()}{loaded.build_note[1:]}."
            return (text, _table(service), _names_update(service, "image"), _names_update(service, "code"),
                    gr.update(choices=_refreshable(service)), gr.update())

        build_button.click(build, [folder, kind, name, replace],
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
    evaluation_section(service, table)
    retrain_section(service, table, image_index, code_index)
    return table


def _hit_label(position: int, hit) -> str:
    m = hit.metadata
    name = f"{m.get('func_name', '')} ({m.get('path', '')})" if "func_name" in m else (m.get("caption") or m["path"])
    return f"{position + 1}. {name}"


def feedback_row(service: SearchService, kind: str, index: gr.Dropdown, query: gr.Textbox, hits: gr.State,
                 text_searches: list, other_searches: list = ()) -> None:
    """👍/👎 on one result of the last text search, appended to the index's feedback file
    (:mod:`mmssl.app.feedback`), which the Indexes tab evaluates. Results of an image search are not
    rated: a vote pairs the words of a query with a result."""
    last_query = gr.State(None)  # the page's last search: its text, or "" for a search by image
    with gr.Row(equal_height=True):
        choice = raw_when_invalid(gr.Dropdown([], label="rate a result of this search", scale=4,
                                              elem_id=f"{kind}-rate-choice"))  # the service checks the position
        up = gr.Button("👍 good result", scale=1, size="sm", elem_id=f"{kind}-rate-up")
        down = gr.Button("👎 wrong result", scale=1, size="sm", elem_id=f"{kind}-rate-down")
    status = gr.Markdown(elem_id=f"{kind}-rate-status")
    gr.on(text_searches, lambda text: text, query, last_query, api_name=False)
    if other_searches:
        gr.on(list(other_searches), lambda: "", None, last_query, api_name=False)
    hits.change(lambda found: gr.update(choices=[(_hit_label(i, h), i) for i, h in enumerate(found or [])],
                                        value=0 if found else None), hits, choice, api_name=False)

    def vote(label):
        @friendly((MESSAGE,))
        def run(index_name, searched, text, found, position):
            # an API client runs the search endpoint alone, so the page's last query is unknown (None):
            # the query box, which it passes, is the query
            text = text if searched is None else searched
            if not text:
                raise UserError("Rate the results of a text search: a vote pairs your words with a result.")
            if position is None and found:
                # the chooser fills in (top result) just after the results arrive: a vote clicked in
                # between rates what the chooser is about to show
                position = 0
            if position is None or not found or not str(position).isdigit() or not int(position) < len(found):
                raise UserError("Search, then choose the result you want to rate.")
            note = service.record_feedback(_choice(index_name), text, found[int(position)], label, kind=kind)
            return (cards.message(note),)

        def one_output(index_name, searched, text, found, position):
            return run(index_name, searched, text, found, position)[0]
        return one_output

    for button, label in ((up, "up"), (down, "down")):
        # the status only: a chooser among the outputs would get a per-session copy without raw_when_invalid
        button.click(vote(label), [index, last_query, query, hits, choice], status, api_name=f"rate_{kind}_{label}")


def evaluation_section(service: SearchService, table: gr.Dataframe) -> None:
    """Evaluate an index on the user's own queries (uploaded, pasted, or its 👍/👎 feedback): the table of
    MRR and Recall@K per system and a bar chart."""
    from mmssl.app.eval_view import EVAL_COLUMNS, bar_chart_html, eval_rows, eval_summary

    gr.Markdown("### Evaluate on your own queries\nOne query a line: `query<TAB>expected[;expected…]` (an image "
                "path relative to the indexed folder; for code `path` or `path:function`), or JSONL "
                "`{\"query\": …, \"expected\": […]}`. Leave it empty to use the index's 👍/👎 feedback. "
                "Every query is ranked over the whole index.")
    with gr.Row():
        names = list(service.indexes)
        eval_index = gr.Dropdown(names, value=names[0] if names else None, label="index", allow_custom_value=True,
                                 elem_id="eval-index")
        baselines = gr.Checkbox(True, label="baselines", info="BM25, random, MiniLM zero-shot (code)")
    with gr.Row():
        pasted = gr.Textbox(label="your queries (paste a TSV or JSONL file's lines)", lines=4, scale=3,
                            placeholder="a red fire truck\tvehicles/fire_truck.png", elem_id="eval-text")
        # the guard (mmssl.app.guard) lets through images and small UTF-8 .tsv/.jsonl files only
        uploaded = gr.File(label="…or upload a .tsv / .jsonl file (up to 1 MB)", file_types=[".tsv", ".jsonl"],
                           type="filepath", scale=2, elem_id="eval-file")
    run = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
    status = gr.Markdown(elem_id="eval-status")
    results_table = gr.Dataframe(headers=EVAL_COLUMNS, label="your queries", interactive=False, wrap=True,
                                 elem_id="eval-table")
    chart = gr.HTML(elem_id="eval-chart")

    @friendly((MESSAGE, gr.update(), ""))
    def evaluate(index_name, text, with_baselines=True, upload=None, progress=gr.Progress()):
        if upload:
            if text and text.strip():
                raise UserError("Paste queries or upload a file, not both: clear one of them.")
            text = service.queries_upload_text(upload)
        results = service.evaluate_own_queries(_choice(index_name), text, bool(with_baselines))
        return eval_summary(results), eval_rows(results), bar_chart_html(results)

    run.click(evaluate, [eval_index, pasted, baselines, uploaded], [status, results_table, chart],
              api_name="evaluate_queries")
    table.change(lambda: gr.update(choices=list(service.indexes)), None, eval_index, api_name=False)


RETRAIN_POLL_SECONDS = 1.0


def retrain_section(service: SearchService, table: gr.Dataframe, image_index: gr.Dropdown,
                    code_index: gr.Dropdown) -> None:
    """Retrain an index's model on its 👍 votes in the background (progress, then old vs new on the held-out
    votes); the new model indexes the same items as a new index, and the user chooses to switch to it."""
    from mmssl.app.eval_view import EVAL_COLUMNS, bar_chart_html, eval_rows

    gr.Markdown("### Retrain on your votes\nFine-tunes the index's model on its 👍 pairs (👎 are kept out), "
                "indexes the same items with the new model under a new name, and compares old and new on the "
                "voted queries held out of training. Nothing is replaced: switch when the numbers say so.")
    if not service.allowed_build_folders:
        gr.Markdown("Retraining from the app is off: start it with `--allow-folder PATH` (building on). From a "
                    "shell: `python -m mmssl train clip --data feedback:INDEX` (or `train code`), then "
                    "`python -m mmssl index build NEW --model NEW_MODEL ...`.", elem_id="retrain-off")
        return
    with gr.Row():
        names = list(service.indexes)
        source = gr.Dropdown(names, value=names[0] if names else None, label="index whose votes train",
                             allow_custom_value=True, elem_id="retrain-index")
        new_name = gr.Textbox(label="new index name", placeholder="my-photos-v2", max_lines=1,
                              elem_id="retrain-name")
        steps = raw_when_invalid(gr.Number(50, label="training steps", precision=0, minimum=1,
                                           elem_id="retrain-steps"))
    start = gr.Button("Retrain", variant="primary", elem_id="retrain-run")
    status = gr.Markdown(elem_id="retrain-status")
    progress = gr.Dataframe(headers=JOB_COLUMNS, label="retrain", interactive=False, wrap=True,
                            elem_id="retrain-jobs")
    results = gr.Dataframe(headers=EVAL_COLUMNS, label="old and new model", interactive=False, wrap=True,
                           elem_id="retrain-table")
    chart = gr.HTML(elem_id="retrain-chart")
    switch = gr.Button("Search with the new index", visible=False, elem_id="retrain-switch")
    timer = gr.Timer(RETRAIN_POLL_SECONDS, active=False)

    @friendly((MESSAGE, gr.update()))
    def begin(name, new, step_count):
        retrain = service.start_retrain(_choice(name), new, step_count)
        return (f"Retraining **{retrain.plan.index}** into **{retrain.plan.new_index}** "
                f"({retrain.plan.steps} steps, new model {retrain.plan.new_model}).", gr.Timer(active=True))

    def poll():
        retrain = service.latest_retrain()
        if retrain is None:
            return "", [], [], "", gr.update(visible=False), gr.Timer(active=False), gr.update(), gr.update(), \
                gr.update()
        job, plan = retrain.job, retrain.plan
        rows = [[job.row()[c] for c in JOB_COLUMNS]]
        running = job.state in ("queued", "running")
        done = job.state == "done" and retrain.comparison is not None
        text = (cards.message(f"Retrain failed: {job.message}") if job.state == "failed" else
                f"Retraining **{plan.index}** into **{plan.new_index}**: {job.summary()}.")
        if done:
            before, after = retrain.comparison["rows"]
            text = (f"**{plan.new_index}** is ready. MRR {before['mrr']:.3f} → {after['mrr']:.3f} on "
                    f"{retrain.comparison['num_queries']} voted queries "
                    f"({'; '.join(retrain.comparison['notes'])}). The old index and model stay; switch if you "
                    "like the new one.")
        return (text, rows, eval_rows(retrain.comparison) if done else [],
                bar_chart_html(retrain.comparison) if done else "", gr.update(visible=done),
                gr.Timer(active=running), _table(service), _names_update(service, "image"),
                _names_update(service, "code"))

    def switch_to():
        retrain = service.latest_retrain()
        if retrain is None or retrain.comparison is None:
            return gr.update(), gr.update()
        chosen = gr.update(choices=service.names(retrain.plan.kind), value=retrain.plan.new_index, visible=True)
        return (chosen, gr.update()) if retrain.plan.kind == "image" else (gr.update(), chosen)

    start.click(begin, [source, new_name, steps], [status, timer], api_name="retrain")
    timer.tick(poll, None, [status, progress, results, chart, switch, timer, table, image_index, code_index],
               api_name="retrain_progress")
    switch.click(switch_to, None, [image_index, code_index], api_name="switch_to_retrained")
    table.change(lambda: gr.update(choices=list(service.indexes)), None, source, api_name=False)


def _missing_banner(service: SearchService, kind: str, elem_id: str) -> tuple[gr.Markdown, gr.Markdown]:
    """A line saying why no ``kind`` index is loaded (and how to build one), shown while none is, and
    one saying what is building in the background for this tab."""
    banner = gr.Markdown(cards.message(_missing(kind, service)), elem_id=elem_id, visible=not service.names(kind))
    notice = gr.Markdown(_notice(service, kind), elem_id=f"{kind}-jobs")
    return banner, notice


def _notice(service: SearchService, kind: str) -> str:
    return service.jobs.notice(kind) if service.jobs is not None else ""


def _job_rows(service: SearchService) -> list[list]:
    if service.jobs is None:
        return []
    return [[row[c] for c in JOB_COLUMNS] for row in service.jobs.rows()]


def _job_progress(service: SearchService) -> tuple:
    """One poll of the background builds: notices, tables, the tabs' filters, and whether to poll again."""
    has_image, has_code = bool(service.names("image")), bool(service.names("code"))
    return (_notice(service, "image"), _notice(service, "code"), _job_rows(service), _table(service),
            gr.update(visible=not has_image, value=cards.message(_missing("image", service))),
            gr.update(visible=not has_code, value=cards.message(_missing("code", service))),
            gr.update(choices=[ALL, *service.sources()]), gr.update(choices=[ALL, *service.packages()]),
            _names_update(service, "image"), _names_update(service, "code"), gr.Timer(active=service.jobs.running))


def _results_and_index(service: SearchService, kind: str, default_k: int) -> tuple[gr.Slider, gr.Dropdown]:
    """A search tab's results slider (any value reaches the service, which checks it) and index chooser.

    The chooser's choices are refreshed for every page load and after a build: the service's registry is
    the one list of indexes, and a name sent over the API is checked by the service, not the dropdown."""
    max_k, names = service.config.max_k, service.names(kind)
    k = raw_when_invalid(gr.Slider(1, max_k, value=min(default_k, max_k), step=1, label="results"))
    index = gr.Dropdown(names, value=names[0] if names else None, label="index", visible=len(names) > 1,
                        allow_custom_value=True)
    return k, index


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
    return gr.update(choices=names, visible=len(names) > 1)  # value kept: the session's choice stays


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
             "built with the same model. Image scores are cosine similarities (−1…1); code results are ranked "
             "hybrid by default (cosine fused with BM25 word scores, both shown per hit); the latency shown is the "
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
