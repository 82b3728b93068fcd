"""Metadata filters for search: ``{"module": "json"}``, ``{"folder": "cats"}``, ``{"source": ["emoji", "stamps"]}``.

A filter is a dict of field -> wanted value (or a list/tuple/set of values, any of which matches), or
any callable ``metadata -> bool``. Hierarchical fields also match by prefix: ``folder`` and ``path``
by ``/`` components (``"cats"`` matches ``"cats"`` and ``"cats/tabby"``, not ``"catsup"``),
``module`` by dotted components (``"json"`` matches ``"json.decoder"``).

Search turns a filter into the set of matching ids first (:func:`sql_condition` lets SQLite do that
for dict filters; callables run in Python over the rows), then hands FAISS an ``IDSelector`` of
those ids, so a filtered search returns the best ``k`` items *of the filter* however rare they are.
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


SQL_SCALARS = (str, int, float, bool)


def _json_path(key: str) -> str | None:
    return None if '"' in key or "\\" in key else f'$."{key}"'


def _sql_alternative(key: str, option) -> tuple[str, list] | None:
    """One wanted value of one key as SQL over ``items(path, meta)``, matching :func:`_matches_value`."""
    if option is not None and not isinstance(option, SQL_SCALARS):
        return None  # lists/dicts compare as Python objects: leave them to Python
    if key == "path":  # a TEXT column, never null
        if not isinstance(option, str):
            return "0", []
        value, is_text, params = "path", "1", []
    else:
        json_path = _json_path(key)
        if json_path is None:
            return None
        # json_extract returns arrays/objects as JSON text too: string tests also check the JSON type
        value, is_text, params = "json_extract(meta, ?)", "json_type(meta, ?) = 'text'", [json_path]
    if option is None:
        return f"{value} IS NULL", params  # a missing key or a JSON null, as metadata.get(key) == None
    if not isinstance(option, str):
        return f"{value} = ?", params + [option]  # numbers never equal text in SQLite, as in Python
    sql, out = f"({is_text} AND {value} = ?)", params + params + [option]
    separator = PREFIX_SEPARATORS.get(key)
    if separator and option:
        prefix = option.rstrip(separator) + separator
        sql = f"({sql} OR ({is_text} AND substr({value}, 1, ?) = ?))"
        out += params + params + [len(prefix), prefix]
    return sql, out


def sql_condition(filter: Filter) -> tuple[str, list] | None:
    """A dict filter as a SQL condition on the ``items`` table with its parameters; ``None`` when only
    Python can decide (callables, non-scalar wanted values, odd keys)."""
    if callable(filter):
        return None
    clauses, params = [], []
    for key, wanted in filter.items():
        options = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else (wanted,)
        alternatives = []
        for option in options:
            part = _sql_alternative(str(key), option)
            if part is None:
                return None
            alternatives.append(part[0])
            params.extend(part[1])
        clauses.append("(" + (" OR ".join(alternatives) or "0") + ")")
    return " AND ".join(clauses) or "1", params


def check_filter(filter) -> None:
    if filter is not None and not callable(filter) and not isinstance(filter, dict):
        raise TypeError(f"filter must be a dict like {{'module': 'json'}} or a callable, got {type(filter).__name__}")
