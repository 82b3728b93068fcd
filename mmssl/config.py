"""Typed configs: dataclasses loaded from JSON/YAML, overridden by command-line flags.

Every run (training, evaluation, index build) is described by a dataclass. The same dataclass
yields argparse flags (``--lr 3e-4``, nested fields as ``--optim.lr``), reads a JSON or YAML file
(``--config run.yaml``), and is saved, fully resolved, next to what the run produced. Precedence:
dataclass defaults < config file < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from mmssl.io import write_json

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag names an unknown field or holds a value of the wrong type."""


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _strip_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp, where: str) -> Any:
    """Convert a JSON/YAML/CLI value to the field's declared type, or raise ConfigError."""
    tp, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"{where}: null is not allowed (expected {getattr(tp, '__name__', tp)})")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        if tp in (int, float, str):
            return tp(float(value)) if tp is int and isinstance(value, str) and "e" in value.lower() else tp(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: cannot read {value!r} as {tp.__name__}") from None
    return value


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build ``cls`` from a (possibly partial, possibly nested) mapping; unknown keys are an error."""
    types_ = _field_types(cls)
    unknown = set(data) - set(types_)
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown field(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(types_)}")
    kwargs = {k: _coerce(v, types_[k], f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def read_config_file(path: str | Path) -> dict:
    """Read a JSON or YAML file into a dict."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def save_config(cfg, path: str | Path) -> None:
    """Write the resolved config as JSON, atomically."""
    write_json(path, to_dict(cfg), indent=2, default=str)


def _flat_fields(cls, prefix: str = ""):
    for name, tp in _field_types(cls).items():
        inner, _ = _strip_optional(tp)
        if dataclasses.is_dataclass(inner):
            yield from _flat_fields(inner, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", tp


def add_config_args(parser: argparse.ArgumentParser, cls, base=None) -> None:
    """Add ``--config FILE`` and one ``--field`` flag per (nested) dataclass field to ``parser``.

    ``base``: an instance whose values are the defaults shown in the help (default ``cls()``).
    """
    parser.add_argument("--config", help="JSON or YAML file with any of the fields below")
    group = parser.add_argument_group(f"{cls.__name__} fields (override the config file)")
    defaults = {k: v for k, v in _flatten(to_dict(base if base is not None else cls()))}
    for name, tp in _flat_fields(cls):
        inner, _ = _strip_optional(tp)
        metavar = getattr(inner, "__name__", "VALUE").upper()
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg:{name}", default=None, metavar=metavar,
                           help=f"default: {defaults.get(name)!r}")


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _set_nested(d: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def resolve_config(cls: type[T], args: argparse.Namespace | None = None, file: str | Path | None = None,
                   overrides: dict | None = None, base: T | None = None) -> T:
    """Defaults (``base`` or ``cls()``) < ``file`` (or ``args.config``) < flags in ``args`` < ``overrides``."""
    data = to_dict(base if base is not None else cls())
    file = file or (getattr(args, "config", None) if args is not None else None)
    if file:
        for k, v in _flatten(read_config_file(file)):
            _set_nested(data, k, v)
    if args is not None:
        for key, value in vars(args).items():
            if key.startswith("cfg:") and value is not None:
                _set_nested(data, key[4:], value)
    for k, v in (overrides or {}).items():
        _set_nested(data, k, v)
    return from_dict(cls, data)
