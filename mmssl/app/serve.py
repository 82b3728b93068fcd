"""Start the app: load the service, build the page, launch it (loopback by default, no share link,
no analytics, only indexed image files served, uploads limited in size and type and deleted after a while).

    from mmssl.app import AppConfig, serve
    serve(AppConfig(port=7860, indexes=["emoji-clipart", "code"], allow_folders=["~/Pictures"]))
"""

from __future__ import annotations

import os

from mmssl.app.config import AppConfig
from mmssl.app.search import SearchService


# Sessions whose state Gradio keeps in memory (the page's result list, updated components); the oldest
# go first. Every API call is a session of its own, so Gradio's default of 10,000 let a busy server's
# RSS grow with every request until then (bench/soak.py).
SESSIONS_KEPT = 128


def launch(service: SearchService, *, block: bool = True, quiet: bool = False):
    """Launch the page for ``service``; returns the ``gr.Blocks`` (its ``local_url`` says where it listens).

    ``block=False`` returns at once with the server running in a thread (tests, benchmarks); close it
    with ``demo.close()``.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from mmssl.app.cards import CSS
    from mmssl.app.ui import build_app

    from starlette.middleware import Middleware

    from mmssl.app.guard import HttpGuard

    config = service.config
    import gradio as gr

    # result images are served straight from the indexed folders, not copied and hashed into Gradio's
    # cache on every search; HttpGuard then lets only the indexed files of those folders out
    gr.set_static_paths(service.image_folders())
    demo = build_app(service)
    # uploads older than upload_max_age are deleted (checked every quarter of it)
    demo.delete_cache = (max(1, config.upload_max_age // 4), config.upload_max_age)
    # searches run side by side (one torch thread each by default, see AppConfig.threads)
    demo.queue(default_concurrency_limit=8, api_open=True)
    credentials = config.credentials()
    demo.launch(server_name=config.host, server_port=config.port or None, share=config.share,
                auth=credentials, allowed_paths=service.image_folders(), show_error=False,
                prevent_thread_lock=not block, quiet=quiet, ssr_mode=False, mcp_server=False, css=CSS,
                footer_links=["api"], max_file_size=int(config.max_upload_mb * 1024 * 1024),
                state_session_capacity=SESSIONS_KEPT,
                app_kwargs={"middleware": [Middleware(HttpGuard, service=service, login=credentials is not None)]})
    return demo


def serve(config: AppConfig | None = None) -> None:
    """Build the missing default indexes if asked, load everything, and serve until interrupted."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    config = config or AppConfig()
    config.credentials()  # a malformed --auth fails before anything slow happens
    models: dict = {}
    if config.build_missing:
        from mmssl.app.defaults import ensure_default_indexes

        ensure_default_indexes(config, models)
    if config.threads > 0:
        set_threads(config.threads)
    service = SearchService.load(config, models)
    for name, problem in service.problems.items():
        print(f"index {name}: {problem}")
    launch(service)


def set_threads(threads: int) -> None:
    """Intra-op threads of torch and FAISS for this process (see :attr:`AppConfig.threads`)."""
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
