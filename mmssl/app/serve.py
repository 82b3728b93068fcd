"""Start the app: load the service, build the page and the REST API beside it (:mod:`mmssl.app.api`), launch
them (loopback by default, no share link, no analytics, only indexed image files served, uploads limited in size
and type and deleted after a while).

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
    """Serve the page and the REST API (:mod:`mmssl.app.api`) for ``service``; returns the page's ``gr.Blocks``
    (its ``local_url`` says where it listens).

    ``block=False`` returns at once with the server running in a thread (tests, benchmarks); close it
    with ``demo.close()``.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from mmssl.app.api import create_app
    from mmssl.app.ui import build_app

    config = service.config
    import gradio as gr
    from gradio import http_server

    # result images are served straight from the indexed folders, not copied and hashed into Gradio's
    # cache on every search; HttpGuard then lets only the indexed files of those folders out
    gr.set_static_paths(service.image_folders())
    demo = build_app(service)
    service.on_loaded.append(lambda name: _serve_new_folders(demo, service))
    # uploads older than upload_max_age are deleted (checked every quarter of it)
    demo.delete_cache = (max(1, config.upload_max_age // 4), config.upload_max_age)
    # searches run side by side (one torch thread each by default, see AppConfig.threads)
    demo.queue(default_concurrency_limit=8, api_open=True)
    demo.state_session_capacity = SESSIONS_KEPT
    app = create_app(service, demo)
    host, port, url, server = http_server.start_server(app=app, server_name=config.host,
                                                       server_port=config.port or None)
    # what Blocks.launch records, so that demo.close() and demo.block_thread() stop this server
    demo.server_name, demo.server_port, demo.local_url, demo.server, demo.is_running = host, port, url, server, True
    if not quiet:
        print(f"* Running on local URL: {url} (REST API: {url}api/indexes, {url}api/search)")
    if config.share:
        _open_share_link(demo)
    if block:
        demo.block_thread()
    return demo


def _open_share_link(demo) -> None:
    """A public Gradio share link to the running server (``--share``), as ``Blocks.launch(share=True)`` opens."""
    import secrets

    from gradio import networking

    demo.share_url = networking.setup_tunnel(local_host=demo.server_name, local_port=demo.server_port,
                                             share_token=secrets.token_urlsafe(32), share_server_address=None,
                                             share_server_tls_certificate=None)
    print(f"* Running on public URL: {demo.share_url}")


def serve(config: AppConfig | None = None) -> None:
    """Build the missing default indexes if asked, load everything, and serve until interrupted."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    config = config or AppConfig()
    config.credentials()  # a malformed --auth fails before anything slow happens
    models: dict = {}
    runner = plan_default_builds(config, models) if config.build_missing else None
    if config.threads > 0 and runner is None:
        set_threads(config.threads)
    service = SearchService.load(config, models)
    service.jobs = runner
    if runner is not None:
        for job in runner.jobs:
            if job.index not in service.indexes:
                service.problems[job.index] = "building in the background; its progress is in the Indexes tab."
        runner.on_ready = lambda job, step: _reload(service, job.index)
        runner.start()
    for name, problem in service.problems.items():
        if runner is None or name not in {job.index for job in runner.jobs}:
            print(f"index {name}: {problem}")
    launch(service)


def plan_default_builds(config: AppConfig, models: dict):
    """Plan the missing default indexes (and the corpora they need) and start building them behind the
    page (call ``start()`` on the result), with every core until they are done, then ``config.threads``;
    None when nothing is missing."""
    from mmssl.app.defaults import default_build_jobs
    from mmssl.app.jobs import JobRunner

    jobs, schedule = default_build_jobs(config, models, build_corpora=True)
    if not jobs:
        return None
    for job in jobs:
        print(f"indexes/{job.index}: building in the background ({', '.join(s.label for s in job.steps)}); "
              "the page serves what is ready")
    set_threads(os.cpu_count() or 1)
    return JobRunner(jobs, schedule, on_idle=lambda: set_threads(config.threads) if config.threads > 0 else None)


def _serve_new_folders(demo, service: SearchService) -> None:
    """An index was (re)loaded after launch (a background build's stage, a build from the Indexes tab):
    serve its image folders too."""
    import gradio as gr

    from mmssl.app.ui import _allow_new_folders

    gr.set_static_paths(service.image_folders())
    _allow_new_folders(demo, service)


def _reload(service: SearchService, name: str) -> None:
    """A stage of a background build is in place: search it from now on."""
    service.open_index(name)


def set_threads(threads: int) -> None:
    """Intra-op threads of torch and FAISS for this process (see :attr:`AppConfig.threads`)."""
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
