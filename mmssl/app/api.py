"""The JSON REST API beside the page: a FastAPI app with the Gradio page mounted at ``/``.

    GET  /api/indexes                                   what is loaded (and why others are not)
    GET  /api/search?index=emoji&q=red+car&k=10         text -> images or code (the index's kind decides)
         code filters: &package=&module=&path=GLOB&kind=function|method&exclude_tests=true&mode=hybrid|dense|lexical
         image filter: &source=; &collapse=true folds near-duplicates (the page's default; off here, as in the
         CLI): the same concept in several artworks or skin tones is one hit, the others in its "similar" list
         paging: &offset=N (the rank, from 0, of the page's first hit; the reply's "more" says if a page follows)
         an image query may add and subtract weighted terms: q=beach -people, q=2:cat + hat
    POST /api/search  (multipart: image=@file.png, index=, k=, q=)   image -> images; q moves it ("red": this, but red)

Replies are JSON; an error is ``{"error": "<what to fix>"}`` with a 4xx status (400 bad input, 401 no
login, 404 no such index, 413 too large, 415 not an image, 503 an index that is not loaded), never a
traceback. With a login configured (``--auth user:password``) every route needs it: ``/api/*`` takes
the same credentials as HTTP Basic (``curl -u user:password``) or the page's session cookie (Gradio's
``/login`` form sets ``access-token-…``; Gradio itself has no HTTP Basic), and the page's own routes
take only that cookie (:class:`~mmssl.app.guard.HttpGuard`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import tempfile

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from mmssl.app.guard import UPLOAD_TYPES_TEXT, HttpGuard, has_login_cookie, is_image_name
from mmssl.app.search import LoadedIndex, SearchResult, SearchService, UserError

log = logging.getLogger("mmssl.app")

UPLOAD_FIELD = "image"
MULTIPART_SLACK = 64 * 1024  # form fields and part headers around the image itself
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


class ApiError(Exception):
    """A request the client can fix: answered ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def create_app(service: SearchService, demo) -> FastAPI:
    """The API routes, with ``demo`` (the page's ``gr.Blocks``, queued) mounted at ``/`` as
    :func:`mmssl.app.serve.launch` serves it: same login, file guard, upload limit and settings."""
    import gradio as gr
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    from mmssl.app.cards import CSS

    config = service.config
    credentials = config.credentials()
    app = FastAPI(title="mmssl search API", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(Exception, _server_error)
    app.include_router(api_router(service, lambda: demo.server_app, credentials))
    gr.mount_gradio_app(app, demo, "/", server_name=config.host, server_port=config.port, auth=credentials,
                        allowed_paths=service.image_folders(), show_error=False, ssr_mode=False, mcp_server=False,
                        css=CSS, footer_links=["api"], max_file_size=upload_limit(service),
                        app_kwargs={"middleware": [Middleware(HttpGuard, service=service,
                                                              login=credentials is not None)]})
    # the mounted Gradio app (its login tokens, its stop event) is the one Blocks.launch would record
    demo.server_app = demo.app = next(route.app for route in app.routes if isinstance(route, Mount))
    return app


def upload_limit(service: SearchService) -> int:
    """The largest upload in bytes (``--max-upload-mb``), for the page and the API alike."""
    return int(service.config.max_upload_mb * 1024 * 1024)


def api_router(service: SearchService, gradio_app, credentials: tuple[str, str] | None) -> APIRouter:
    """``/api/*``; ``gradio_app()`` is the mounted Gradio app, whose login cookies are accepted too."""
    router = APIRouter(prefix="/api", dependencies=[Depends(login_check(gradio_app, credentials))])

    @router.get("/indexes")
    def indexes():
        return {"indexes": service.describe()}

    @router.get("/search")
    def search(request: Request, index: str = "", q: str = "", k: str = "10", source: str = "", package: str = "",
               module: str = "", path: str = "", kind: str = "any", exclude_tests: str = "", mode: str = "hybrid",
               offset: str = "0", collapse: str = "false"):
        loaded = _index(service, index)
        count = _k(k, service.config.max_k)
        start = _offset(offset, count)
        if loaded.kind == "image":
            result = _answer(service.search_images, q, count, loaded.name, source or None, offset=start,
                             collapse=_flag("collapse", collapse))
        else:
            result = _answer(service.search_code, q, count, loaded.name, package or None, module or None,
                             path_glob=path, kind=kind, exclude_tests=_flag("exclude_tests", exclude_tests), mode=mode,
                             offset=start)
        return result_json(loaded, result, query=q)

    @router.post("/search")
    async def search_by_image(request: Request):
        form = await _bounded_form(request, upload_limit(service))
        loaded = _index(service, str(form.get("index") or ""))
        if loaded.kind != "image":
            raise ApiError(400, f"{loaded.name} is a code index; search it with GET /api/search?q=….")
        count = _k(str(form.get("k") or "10"), service.config.max_k)
        upload = form.get(UPLOAD_FIELD)
        if upload is None or isinstance(upload, str):
            raise ApiError(400, f"Send the image as a file field named {UPLOAD_FIELD!r} "
                                f"(curl -F {UPLOAD_FIELD}=@photo.png).")
        if not is_image_name(upload.filename or ""):
            raise ApiError(415, f"Only {UPLOAD_TYPES_TEXT} can be searched with (not {upload.filename!r}).")
        modifier = _modifier(str(form.get("q") or ""))
        data = await upload.read()
        result = await run_in_threadpool(_search_upload, service, loaded, data, upload.filename, count, modifier)
        return result_json(loaded, result, query=modifier)

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"], include_in_schema=False)
    def unknown(rest: str):
        raise ApiError(404, f"No API route /api/{rest}; the routes are GET /api/indexes, GET /api/search and "
                            "POST /api/search.")

    return router


def login_check(gradio_app, credentials: tuple[str, str] | None):
    """A dependency that answers 401 unless the request has the login: HTTP Basic or the page's cookie."""
    def check(request: Request) -> None:
        if credentials is None or _basic_matches(request.headers.get("authorization", ""), credentials):
            return
        if has_login_cookie(gradio_app(), request.scope.get("headers", [])):
            return
        raise ApiError(401, "Log in first: pass the server's login as HTTP Basic (curl -u user:password) or log "
                            "in on the page.", headers={"WWW-Authenticate": 'Basic realm="mmssl"'})
    return check


def _basic_matches(header: str, credentials: tuple[str, str]) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # both compared, always: the time taken says nothing about which one was wrong
    same_user = secrets.compare_digest(user.encode(), credentials[0].encode())
    same_password = secrets.compare_digest(password.encode(), credentials[1].encode())
    return bool(sep) and same_user and same_password


def _index(service: SearchService, name: str) -> LoadedIndex:
    """The loaded index ``name``: 400 without a name, 503 when it is known but not loaded, 404 when unknown."""
    names = ", ".join(service.indexes) or "none"
    if not name:
        raise ApiError(400, f"Name the index to search: index=NAME (loaded: {names}; GET /api/indexes lists them).")
    if name in service.indexes:
        return service.indexes[name]
    if name in service.problems:
        raise ApiError(503, f"{name} is not loaded: {service.problems[name]}")
    raise ApiError(404, f"There is no index named {name!r}; choose one of: {names}.")


def _k(text: str, max_k: int) -> int:
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 1 <= k <= max_k:
        raise ApiError(400, f"k must be a whole number from 1 to {max_k} (got {text!r}).")
    return k


def _offset(text: str, k: int) -> int:
    from mmssl.app.search import PAGE_DEPTH

    offset = int(text) if text.strip().isdigit() else -1
    if not 0 <= offset <= PAGE_DEPTH - k:
        raise ApiError(400, f"offset is the rank (from 0) of the page's first hit, 0 to {PAGE_DEPTH - k} with k={k} "
                            f"(got {text!r}).")
    return offset


def _flag(name: str, text: str) -> bool:
    word = text.strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ApiError(400, f"{name} is true or false (got {text!r}).")
    return word in TRUE_WORDS


def _answer(search, *args, **kwargs) -> SearchResult:
    """Run a service search; its :class:`UserError` is the client's 400."""
    try:
        return search(*args, **kwargs)
    except UserError as e:
        raise ApiError(400, str(e)) from None


def _modifier(text: str) -> str:
    """The upload's text modifier ("this, but red"), checked before the image is decoded: 400 if unreadable."""
    from mmssl.index.query_terms import QueryTermsError, parse_query

    if text.strip():
        try:
            parse_query(text, needs_positive=False)
        except QueryTermsError as e:
            raise ApiError(400, str(e)) from None
    return text


def _search_upload(service: SearchService, loaded: LoadedIndex, data: bytes, filename: str, k: int,
                   modifier: str = "") -> SearchResult:
    """Image -> image over an upload (moved by ``modifier``): written to a temp file (decoded there within the
    pixel budget), then deleted."""
    suffix = os.path.splitext(filename)[1].lower()
    with tempfile.NamedTemporaryFile(suffix=suffix, prefix="mmssl-upload-") as file:
        file.write(data)
        file.flush()
        try:
            return service.search_by_image(file.name, k, loaded.name, modifier=modifier)
        except UserError as e:
            raise ApiError(415, str(e)) from None  # its message names no server path (short_reason)


async def _bounded_form(request: Request, limit: int):
    """The multipart form of ``request``, read no further than ``limit`` bytes (+ the form's own slack): 413 above."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    too_large = ApiError(413, f"The upload is larger than this server accepts ({limit / 1024 / 1024:g} MB).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise too_large
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, f"POST the image as multipart/form-data (curl -F {UPLOAD_FIELD}=@photo.png -F index=NAME).")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit + MULTIPART_SLACK:
            raise too_large

    async def replay():
        yield bytes(body)

    try:
        return await MultiPartParser(request.headers, replay(), max_files=1, max_fields=16).parse()
    except MultiPartException as e:
        raise ApiError(400, f"The form could not be read ({e}).") from None


def result_json(loaded: LoadedIndex, result: SearchResult, query: str | None = None) -> dict:
    """A search result as the API answers it; image hits carry ``image_url`` (served to whoever may search)."""
    hits = []
    similar = result.similar or [[] for _ in result.hits]
    for rank, (hit, folded) in enumerate(zip(result.hits, similar), result.offset + 1):
        record = {"rank": rank, **_hit_json(loaded, hit)}
        if loaded.kind == "image":
            record["similar"] = [_hit_json(loaded, h) for h in folded]
        hits.append(record)
    reply = {"index": loaded.name, "kind": loaded.kind, "seconds": round(result.seconds, 4), "note": result.note,
             "nothing_close": result.nothing_close, "offset": result.offset, "more": result.more, "hits": hits}
    return reply if query is None else {"query": query, **reply}


def _hit_json(loaded: LoadedIndex, hit) -> dict:
    record = hit.to_dict()
    if loaded.kind == "image":
        record["image_url"] = f"/gradio_api/file={hit.metadata['path']}"
    return record


async def _api_error(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)


async def _server_error(request: Request, error: Exception) -> JSONResponse:
    log.error("API request %s failed", request.url.path, exc_info=error)
    return JSONResponse({"error": f"Something went wrong on the server ({type(error).__name__}); the server log "
                                  "has the details."}, status_code=500)
