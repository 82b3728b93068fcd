"""Metadata filters for search: ``{"module": "json"}``, ``{"folder": "cats"}``, ``{"source": ["emoji", "stamps"]}``.

A filter is a dict of field -> wanted value (or a list/tuple/set of values, any of which matches), or
any callable ``metadata -> bool``. Hierarchical fields also match by prefix: ``folder`` and ``path``
by ``/`` components (``"cats"`` matches ``"cats"`` and ``"cats/tabby"``, not ``"catsup"``),
``module`` by dotted components (``"json"`` matches ``"json.decoder"``).
"""

from __future__ import annotations

from collections.abc import Callable

PREFIX_SEPARATORS = {"folder": "/", "path": "/", "module": "."}

Filter = dict | Callable[[dict], bool]


def _matches_value(key: str, value, wanted) -> bool:
    if value == wanted:
        return True
    separator = PREFIX_SEPARATORS.get(key)
    if separator and isinstance(value, str) and isinstance(wanted, str) and wanted:
        return value.startswith(wanted.rstrip(separator) + separator)
    return False


def matches(filter: Filter | None, metadata: dict) -> bool:
    if filter is None:
        return True
    if callable(filter):
        return bool(filter(metadata))
    for key, wanted in filter.items():
        options = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else (wanted,)
        if not any(_matches_value(key, metadata.get(key), option) for option in options):
            return False
    return True


def check_filter(filter) -> None:
    if filter is not None and not callable(filter) and not isinstance(filter, dict):
        raise TypeError(f"filter must be a dict like {{'module': 'json'}} or a callable, got {type(filter).__name__}")
