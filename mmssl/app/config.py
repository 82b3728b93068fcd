"""``AppConfig``: what ``python -m mmssl serve`` runs with (host, port, indexes, models, auth, folders)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mmssl.data.paths import PROJECT_ROOT

DEFAULT_IMAGE_INDEX = "emoji-clipart"
DEFAULT_CODE_INDEX = "code"
DEFAULT_IMAGE_MODEL = str(PROJECT_ROOT / "models" / "clip-default")
DEFAULT_CODE_MODEL = str(PROJECT_ROOT / "models" / "code-default")
AUTH_ENV = "MMSSL_AUTH"


@dataclass
class AppConfig:
    """Attributes:
        host: interface to bind; ``127.0.0.1`` keeps the app on this machine.
        port: TCP port (0: any free one).
        indexes: index names (``indexes/NAME``) or folders to load; image and code indexes may mix.
        image_model: the image-text model that embeds text and image queries for image indexes.
        code_model: the code model that embeds natural-language queries for code indexes.
        auth: ``"user:password"`` to require a login (default: ``$MMSSL_AUTH`` if set, else none).
        share: open a public Gradio share link (off unless asked for).
        allow_folders: folders an operator lets users index from the Indexes tab; nothing else can be.
        allow_replace: let users replace the server's own indexes (the demo ones and those loaded at
            start) from the Indexes tab; off: those are protected, and any other index is replaced only
            when the user ticks "replace".
        max_upload_mb: the largest upload accepted (Gradio answers 413 above it).
        upload_max_age: seconds an uploaded file is kept before it is deleted (checked every
            ``upload_max_age / 4`` seconds; Gradio's ``delete_cache``).
        build_missing: build the default indexes (emoji + clipart images, the code corpus) when missing.
        max_k: the largest number of results a query may ask for.
        threads: torch and FAISS threads while serving (0: their defaults). A query is one short text
            or one image: one thread encodes it about as fast as two, without the thread hand-offs
            that make a busy machine's two-thread latency balloon (measured here under load: 35 ms
            with one thread vs ~1 s with two), and concurrent searches then run on separate cores.
            Default index builds run before this applies, with every core.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    indexes: list[str] = field(default_factory=lambda: [DEFAULT_IMAGE_INDEX, DEFAULT_CODE_INDEX])
    image_model: str = DEFAULT_IMAGE_MODEL
    code_model: str = DEFAULT_CODE_MODEL
    auth: str | None = None
    share: bool = False
    allow_folders: list[str] = field(default_factory=list)
    allow_replace: bool = False
    max_upload_mb: float = 10.0
    upload_max_age: int = 900
    build_missing: bool = False
    max_k: int = 50
    threads: int = 1

    def credentials(self) -> tuple[str, str] | None:
        """``(user, password)`` from ``auth`` or ``$MMSSL_AUTH``; None when the app is open."""
        return parse_auth(self.auth if self.auth is not None else os.environ.get(AUTH_ENV))


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ``("user", "pass")`` (the password may contain ``:``); empty -> None.

    Raises:
        ValueError: no ``:``, or an empty user or password.
    """
    if text is None or not text.strip():
        return None
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password:
        raise ValueError(f"auth must look like user:password (got {'no ' if not sep else 'an empty '}"
                         f"{'colon' if not sep else 'user or password'}); pass --auth alice:s3cret or set "
                         f"{AUTH_ENV}")
    return user, password
