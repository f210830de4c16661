"""Signals to plain JSON data and back: the on-disk form used by the spool and the SQLite store.

``to_dict()`` on a signal is the *presentation* form (ISO times, fields flattened); it cannot be
read back. ``encode`` keeps every dataclass field under its own name, so ``decode`` rebuilds an
equal signal. Unknown fields (written by a newer obskit) are ignored; missing ones take their
defaults, so old spool files and databases stay readable as the signal types grow.

>>> from obskit.signals import LogRecord
>>> record = LogRecord(timestamp=1.5, level="info", event="paid", fields={"order": 7})
>>> decode(encode(record)) == record
True
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from obskit import signals as _signals
from obskit.scrubbing import safe_repr
from obskit.signals import Signal

__all__ = ["SIGNAL_TYPES", "decode", "dumps", "dumps_sanitised", "encode", "loads"]

#: Signal classes by ``kind``: every dataclass in :mod:`obskit.signals` with a ``kind``.
SIGNAL_TYPES: dict[str, type[Any]] = {
    getattr(cls, "kind"): cls  # noqa: B009 - dataclass types do not declare it
    for cls in vars(_signals).values()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and isinstance(getattr(cls, "kind", None), str)
}

_field_names: dict[type[Any], tuple[str, ...]] = {}
_stdlib_dumps: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=True, default=safe_repr
).encode

try:  # ``pip install obskit[fast]``: orjson encodes a record about 5x faster than json
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]


def _orjson_default(obj: Any) -> Any:
    # orjson writes tuples, but not tuple subclasses (obskit's read-only ScrubbedSequence)
    return list(obj) if isinstance(obj, tuple) else safe_repr(obj)


def _orjson_dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_orjson_default).decode()  # type: ignore[no-any-return]
    except Exception:  # what orjson refuses (ints over 64 bits, say), json still writes
        return _stdlib_dumps(value)


def _names(cls: type[Any]) -> tuple[str, ...]:
    names = _field_names.get(cls)
    if names is None:
        names = _field_names[cls] = tuple(
            f.name for f in dataclasses.fields(cls) if f.metadata.get("exported", True)
        )
    return names


def encode(signal: Signal) -> dict[str, Any]:
    """The signal as a dict of its fields plus ``"kind"``; works for any dataclass signal."""
    data = {name: getattr(signal, name) for name in _names(type(signal))}
    data["kind"] = signal.kind
    return data


def decode(data: dict[str, Any]) -> Signal | None:
    """Rebuild a signal from :func:`encode`'s output; ``None`` for an unknown kind."""
    cls = SIGNAL_TYPES.get(str(data.get("kind")))
    if cls is None:
        return None
    return cls(**{name: data[name] for name in _names(cls) if name in data})


def dumps(value: Any) -> str:
    """Compact JSON; anything not JSON-serialisable becomes its safe ``repr``; NaN and
    infinities are kept (as ``NaN``, ``Infinity``, which :func:`loads` reads back)."""
    return _stdlib_dumps(value)


#: :func:`dumps` for data the scrubber has sanitised (signals after the pipeline, their
#: ``to_dict()`` forms): orjson when installed (it writes NaN as ``null``, and sanitised data
#: holds none: scrubbing made them strings), else the standard library's encoder.
dumps_sanitised: Callable[[Any], str] = _orjson_dumps if orjson is not None else _stdlib_dumps


def loads(text: str | bytes) -> Any:
    """Parse JSON text."""
    return json.loads(text)
