"""What the app's HTTP server lets through, in front of every Gradio route (an ASGI middleware).

Gradio serves a file to anyone who asks for ``/gradio_api/file=<path>`` when the path is under one
of its ``allowed_paths`` (whole folders: an indexed folder's ``.env`` or ``captions.csv`` too) or
in its own upload/cache folder (any upload, of any type). :class:`HttpGuard` narrows that to:

* **files**: an indexed item of a loaded image index (real paths compared, symlinks resolved), or
  an image file (png/jpg/jpeg/webp) in Gradio's upload or cache folder (a user's own upload and
  the copies Gradio makes of result images); anything else is 403, whether it exists or not;
* **uploads**: image file types, and small UTF-8 queries files (``.tsv``, ``.jsonl``, at most
  :data:`MAX_QUERIES_FILE_BYTES`: the Indexes tab's evaluation); anything else is deleted at once and
  answered 415, a queries file too big 413 (every upload's limit is Gradio's ``max_file_size``, 413);
* **login**: with a login configured, every route but the login page's own (the page shell, its
  assets, ``/login``, and ``/config`` which Gradio itself answers 401) needs the session cookie,
  websockets included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mmssl.data.imageio import IMAGE_EXTENSIONS

FILE_ROUTES = ("/gradio_api/file=", "/file=")
UPLOAD_ROUTES = ("/gradio_api/upload", "/upload")
BLOCKED_ROUTES = ("/gradio_api/proxy=", "/proxy=")  # fetches other hosts' files; the app needs none
PUBLIC_PATHS = {"/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/robots.txt", "/manifest.json",
                "/config", "/config/", "/gradio_api/login_check", "/gradio_api/login_check/",
                "/gradio_api/startup-events"}  # launch() calls it before anyone logs in; it returns no data
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
UPLOAD_TYPES_TEXT = "PNG, JPEG or WebP images"
QUERIES_EXTENSIONS = (".tsv", ".jsonl")
MAX_QUERIES_FILE_BYTES = 1 << 20  # 1 MiB: ~10,000 queries; a queries file is read whole into memory


class QueriesFileRefused(ValueError):
    """An uploaded queries file that is too big or not UTF-8 text (the message says which, and the fix)."""

    def __init__(self, message: str, status: int = 415):
        super().__init__(message)
        self.status = status


def check_queries_file(path: str | Path, max_bytes: int = MAX_QUERIES_FILE_BYTES) -> str:
    """The text of an uploaded queries file.

    Raises:
        QueriesFileRefused: not .tsv/.jsonl (415), over ``max_bytes`` (413), or not UTF-8 text (415).
    """
    path = Path(path)
    if path.suffix.lower() not in QUERIES_EXTENSIONS:
        raise QueriesFileRefused(f"{path.name}: a queries file is .tsv (query<TAB>expected) or .jsonl")
    size = path.stat().st_size
    if size > max_bytes:
        raise QueriesFileRefused(f"{path.name} is {size / 1e6:.1f} MB; a queries file may be at most "
                                 f"{max_bytes / 1e6:.1f} MB: split it, or run `python -m mmssl eval --index NAME "
                                 "--queries FILE` from a shell", status=413)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise QueriesFileRefused(f"{path.name} is not UTF-8 text (byte {e.start}); save it as UTF-8 and upload "
                                 "it again") from None


def gradio_temp_folders() -> list[str]:
    """Gradio's upload/cache folder (where uploads and copies of outputs live), resolved."""
    from gradio.utils import get_upload_folder

    return [os.path.realpath(get_upload_folder())]


def is_image_name(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _refusal(path: str) -> QueriesFileRefused | None:
    """Why an upload stored at ``path`` may not stay (None: it may)."""
    if is_image_name(path):
        return None
    if os.path.splitext(path)[1].lower() not in QUERIES_EXTENSIONS:
        return QueriesFileRefused(f"Only {UPLOAD_TYPES_TEXT}, or a .tsv / .jsonl queries file, can be uploaded here "
                                  f"(not {os.path.basename(path)}).")
    try:
        check_queries_file(path)
    except QueriesFileRefused as e:
        return e
    except OSError as e:
        return QueriesFileRefused(f"{os.path.basename(path)} could not be read back ({e.strerror})")
    return None


class HttpGuard:
    """ASGI middleware: ``Middleware(HttpGuard, service=service, login=True)`` in the app's middleware list.

    Args:
        service: a :class:`~mmssl.app.search.SearchService`; ``service.servable_files()`` is the
            allow-list of files, re-read as indexes are built.
        login: whether the app requires a login (then every non-public route needs the session cookie).
    """

    def __init__(self, app, service, login: bool = False, temp_folders: list[str] | None = None):
        self.app = app
        self.service = service
        self.login = login
        self.temp_folders = temp_folders if temp_folders is not None else gradio_temp_folders()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and self.login and not _logged_in(scope):
            return await send({"type": "websocket.close", "code": 1008})  # policy violation: log in first
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self.login and not _is_public(path) and not _logged_in(scope):
            return await _plain(send, 401, "Log in first: this app requires a login.")
        if path.startswith(BLOCKED_ROUTES):
            return await _plain(send, 404, "Not found.")
        if path.startswith(FILE_ROUTES):
            wanted = path.split("=", 1)[1]
            if not self.may_serve(wanted):  # 403 whether or not the file exists, as Gradio answers
                return await _plain(send, 403, "File not allowed.")
        if path.rstrip("/") in UPLOAD_ROUTES and scope.get("method") == "POST":
            return await self._upload(scope, receive, send)
        return await self.app(scope, receive, send)

    def may_serve(self, wanted: str) -> bool:
        """Whether ``/gradio_api/file=<wanted>`` may be answered: an indexed item, or an image upload/cache copy."""
        if "://" in wanted or not wanted:
            return False
        real = os.path.realpath(os.path.abspath(wanted))
        if real in self.service.servable_files():
            return True
        return is_image_name(real) and any(Path(folder) in Path(real).parents for folder in self.temp_folders)

    async def _upload(self, scope, receive, send):
        """Let Gradio store the upload, then refuse (and delete) any file that is not an image type or a
        small UTF-8 queries file."""
        held: list[dict] = []

        async def hold(message):
            held.append(message)

        await self.app(scope, receive, hold)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        if start is not None and start["status"] == 200:
            try:
                stored = json.loads(body)
            except ValueError:
                stored = []
            refusals = [r for r in (_refusal(p) for p in stored if isinstance(p, str)) if r is not None]
            if refusals:
                for p in stored:
                    if isinstance(p, str):
                        Path(p).unlink(missing_ok=True)
                return await _plain(send, refusals[0].status, " ".join(str(r) for r in refusals))
        for message in held:
            await send(message)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _logged_in(scope) -> bool:
    return has_login_cookie(scope.get("app"), scope.get("headers", []))


def has_login_cookie(gradio_app, headers) -> bool:
    """Whether raw ASGI ``headers`` carry the session cookie of a user logged in to ``gradio_app`` (the
    ``access-token-<cookie id>`` cookie Gradio's ``/login`` sets; Gradio's own check)."""
    tokens, cookie_id = getattr(gradio_app, "tokens", None), getattr(gradio_app, "cookie_id", None)
    if tokens is None or cookie_id is None:
        return False
    cookies = {}
    for name, value in headers:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                cookies[key] = val
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return token is not None and tokens.get(token) is not None


async def _plain(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
