"""JSON storage of workflow data that round-trips Python values exactly.

Plain JSON values are stored as they are. Other supported values are stored as a
tagged object ``{"$wfe": <tag>, ...}`` so they come back as the same type:
``Decimal`` (as its exact string), ``datetime`` (a ``zoneinfo`` zone kept by its key),
``date``, ``time``, ``timedelta``, ``UUID``, ``Enum`` members, attrs instances (nested
at any depth), tuples, sets, frozensets and bytes. A dict that itself has a ``"$wfe"``
key is wrapped, so no user value is ever mistaken for a tag. Anything else (functions,
open files, NaN, dicts with non-string keys, ...) is rejected with a
:class:`DataSerializationError` that names the path of the offending field, for example
``data.items[2].price``.

Reading data whose attrs or Enum class cannot be imported raises, except inside
:func:`opaque_types` (used by tools that inspect any store, such as ``wfe list``): there
such a value comes back as a :class:`StoredValue` holding its stored JSON, which is
written back unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import enum
import importlib
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ._errors import ConfigurationError, DataSerializationError
from ._models import ExecutionPointer, PointerStatus

TAG = "$wfe"

MAX_DEPTH = 200
"""Deepest nesting of lists, dicts and tagged values that can be stored."""
MAX_INT_DIGITS = 4000
"""Longest integer (in decimal digits) that can be stored; Python refuses to convert
longer ones to text by default, and other JSON readers lose them."""
# The smallest integer with more than MAX_INT_DIGITS digits, and its bit length rounded
# down (a cheap first check, so ordinary integers cost one comparison).
_INT_LIMIT = 10**MAX_INT_DIGITS
_MAX_INT_BITS = _INT_LIMIT.bit_length() - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_str(value: str, path: str) -> None:
    if not value.isascii() and _SURROGATE.search(value):
        raise DataSerializationError(
            f"cannot store the string at {path}: it holds a lone surrogate "
            "(not valid Unicode text, for example from undecodable bytes)",
            path,
        )


def _check_int(value: int, path: str) -> None:
    if abs(value) >= _INT_LIMIT:
        raise DataSerializationError(
            f"cannot store the integer at {path}: it has more than {MAX_INT_DIGITS:,} "
            "digits (store it as a string or a Decimal)",
            path,
        )


@attrs.frozen
class StoredValue:
    """A stored attrs or Enum value whose class cannot be imported here (read inside
    :func:`opaque_types`): ``type_name`` is the class's ``module:qualname``, ``stored``
    the stored JSON (tagged object), stored again as it is."""

    type_name: str
    stored: Any


# Whether an unimportable class reads as a StoredValue instead of raising. A context
# variable, so it reaches the worker threads that providers decode in (trio copies the
# context into them) and stays local to the caller.
_opaque = contextvars.ContextVar("wfe_opaque_types", default=False)


@contextlib.contextmanager
def opaque_types() -> Iterator[None]:
    """Within this block, read values of unimportable classes as :class:`StoredValue`."""
    token = _opaque.set(True)
    try:
        yield
    finally:
        _opaque.reset(token)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _resolve(name: str, path: str) -> type:
    module_name, _, qual = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise DataSerializationError(
            f"stored value at {path} names type {name!r}, which cannot be imported", path
        ) from exc
    if not isinstance(obj, type):
        raise DataSerializationError(f"stored value at {path}: {name!r} is not a type", path)
    return obj


def _can_resolve(name: str) -> bool:
    try:
        _resolve(name, "data")
    except DataSerializationError:
        return False
    return True


_importable: dict[type, bool] = {}


def _check_importable(cls: type, path: str) -> str:
    """The class's import name; rejected when loading could not find the class again."""
    name = _qualname(cls)
    ok = _importable.get(cls)
    if ok is None:
        try:
            ok = _resolve(name, path) is cls
        except DataSerializationError:
            ok = False
        _importable[cls] = ok
    if not ok:
        raise DataSerializationError(
            f"cannot store {cls.__qualname__} at {path}: the class must be importable as "
            f"{name!r} to be loaded again (define it at module level, not inside a function)",
            path,
        )
    return name


def _datetime_json(value: datetime) -> dict[str, Any]:
    """A datetime's tagged form: its ISO text (with the UTC offset it has), plus, for a
    ``zoneinfo`` zone, the zone's key, so it comes back in its zone with
    the same wall time (a fixed offset would compare unequal at an ambiguous time and
    lose the zone's daylight-saving rules in later arithmetic); ``fold`` when it is 1."""
    out: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
    zone = value.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key:
        out["tz"] = zone.key
    if value.fold:
        out["fold"] = 1  # which of a repeated wall time (local time, when naive)
    return out


def _datetime_value(obj: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(obj["v"])
    key = obj.get("tz")
    if key is not None:
        try:
            return value.replace(tzinfo=ZoneInfo(key), fold=int(obj.get("fold", 0)))
        except (ZoneInfoNotFoundError, ValueError):
            return value  # a machine without this zone: the instant, at its stored offset
    return value.replace(fold=1) if obj.get("fold") else value


def to_jsonable(value: Any, path: str = "data", _depth: int = 0) -> Any:
    """Convert ``value`` into plain JSON values, tagging what JSON cannot hold."""
    if isinstance(value, StoredValue):
        return value.stored
    if _depth > MAX_DEPTH:
        shown = path if len(path) <= 200 else f"{path[:200]}..."
        raise DataSerializationError(
            f"cannot store the value at {shown}: it is nested more than {MAX_DEPTH} levels deep",
            path,
        )
    if isinstance(value, enum.Enum):
        # Before str/int: StrEnum and IntEnum members must come back as members.
        name = _check_importable(type(value), path)
        return {TAG: "enum", "type": name, "v": to_jsonable(value.value, path, _depth + 1)}
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _check_str(value, path)
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            _check_int(value, path)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataSerializationError(
                f"cannot store {value!r} at {path}: only finite floats can be stored", path
            )
        return value
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, datetime):
        return _datetime_json(value)
    if isinstance(value, date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, time):
        return {TAG: "time", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {TAG: "timedelta", "d": value.days, "s": value.seconds, "us": value.microseconds}
    if isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    if isinstance(value, bytes | bytearray):
        return {TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise DataSerializationError(
                    f"cannot store dict key {k!r} at {path}: keys must be strings", path
                )
            child = f"{path}.{k}" if k.isidentifier() else f"{path}[{k!r}]"
            _check_str(k, child)
            out[k] = to_jsonable(v, child, _depth + 1)
        if TAG in out:
            return {TAG: "dict", "v": out}
        return out
    if isinstance(value, list):
        return [to_jsonable(v, f"{path}[{i}]", _depth + 1) for i, v in enumerate(value)]
    if isinstance(value, tuple | set | frozenset):
        tag = "tuple" if isinstance(value, tuple) else type(value).__name__
        if tag not in ("tuple", "set", "frozenset"):
            raise DataSerializationError(
                f"cannot store {type(value).__name__} at {path}: not a supported type", path
            )
        items = value if isinstance(value, tuple) else sorted(value, key=repr)
        return {
            TAG: tag,
            "v": [to_jsonable(v, f"{path}[{i}]", _depth + 1) for i, v in enumerate(items)],
        }
    if attrs.has(type(value)):
        fields = {}
        for f in attrs.fields(type(value)):
            if not f.init:
                continue
            fields[f.name] = to_jsonable(getattr(value, f.name), f"{path}.{f.name}", _depth + 1)
        return {TAG: "attrs", "type": _check_importable(type(value), path), "v": fields}
    raise DataSerializationError(
        f"cannot store {type(value).__module__}.{type(value).__qualname__} at {path}: "
        "workflow data may hold JSON values, Decimal, datetime, date, time, timedelta, "
        "UUID, Enum, bytes, tuples, sets and attrs classes",
        path,
    )


def from_jsonable(obj: Any, path: str = "data") -> Any:
    """Inverse of :func:`to_jsonable`."""
    if isinstance(obj, list):
        return [from_jsonable(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    tag = obj.get(TAG)
    if tag is None:
        return {k: from_jsonable(v, f"{path}.{k}") for k, v in obj.items()}
    v: Any = obj.get("v")
    match tag:
        case "decimal":
            return Decimal(v)
        case "datetime":
            return _datetime_value(obj)
        case "date":
            return date.fromisoformat(v)
        case "time":
            return time.fromisoformat(v)
        case "timedelta":
            return timedelta(days=obj["d"], seconds=obj["s"], microseconds=obj["us"])
        case "uuid":
            return uuid.UUID(v)
        case "bytes":
            return base64.b64decode(v)
        case "dict":
            return {k: from_jsonable(x, f"{path}.{k}") for k, x in v.items()}
        case "tuple":
            return tuple(from_jsonable(x, f"{path}[{i}]") for i, x in enumerate(v))
        case "set":
            return {from_jsonable(x, f"{path}[{i}]") for i, x in enumerate(v)}
        case "frozenset":
            return frozenset(from_jsonable(x, f"{path}[{i}]") for i, x in enumerate(v))
        case "enum" | "attrs" if _opaque.get() and not _can_resolve(obj["type"]):
            return StoredValue(str(obj["type"]), obj)
        case "enum":
            return _resolve(obj["type"], path)(from_jsonable(v, path))
        case "attrs":
            cls = _resolve(obj["type"], path)
            kwargs = {k: from_jsonable(x, f"{path}.{k}") for k, x in v.items()}
            names = {f.name: f.alias for f in attrs.fields(cls) if f.init}
            return cls(**{names.get(k, k): x for k, x in kwargs.items() if k in names})
    raise DataSerializationError(f"stored value at {path} has unknown tag {tag!r}", path)


class _NeedsPaths(Exception):
    """The fast conversion met something it must not decide alone (see :func:`dumps`)."""


def _fast(value: Any, depth: int) -> Any:
    """:func:`to_jsonable` without building a path per value, for the plain JSON types and
    datetimes (most workflow data and every pointer field). Anything else, and anything
    wrong, goes to :func:`to_jsonable`; an error there makes :func:`dumps` start over with
    paths, so the error names the offending field exactly as before."""
    if depth > MAX_DEPTH:
        raise _NeedsPaths
    t = type(value)
    if t is str:
        if not value.isascii() and _SURROGATE.search(value):
            raise _NeedsPaths
        return value
    if value is None or t is bool:
        return value
    if t is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise _NeedsPaths
        return value
    if t is float:
        if not math.isfinite(value):
            raise _NeedsPaths
        return value
    if t is dict:
        out: dict[str, Any] = {}
        for k, v in value.items():
            if type(k) is not str or (not k.isascii() and _SURROGATE.search(k)):
                raise _NeedsPaths
            out[k] = _fast(v, depth + 1)
        if TAG in out:
            return {TAG: "dict", "v": out}
        return out
    if t is list:
        return [_fast(v, depth + 1) for v in value]
    if t is datetime:
        return _datetime_json(value)
    try:
        # The path is only ever used in an error message, and an error restarts.
        return to_jsonable(value, "data", depth)
    except DataSerializationError:
        raise _NeedsPaths from None


def _not_plain(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encode() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), allow_nan=False)`` of a converted
    value, without building an encoder per call. No circular-reference bookkeeping:
    what it is given was built by the conversion, which refuses nesting deeper than
    MAX_DEPTH (a cycle among them), so it holds no cycle."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # a Python without the C accelerator
        return json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    make = c_make_encoder(
        None, _not_plain, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )

    def encode(value: Any) -> str:
        return "".join(make(value, 0))

    return encode


_encode = _make_encode()


def dumps(value: Any, path: str = "data") -> str:
    """Serialise ``value`` to a JSON string (see module docs)."""
    try:
        plain = _fast(value, 0)
    except _NeedsPaths:
        plain = to_jsonable(value, path)
    except RecursionError:
        plain = to_jsonable(value, path)
    return _encode(plain)


def dumps_record(record: dict[str, Any], path: str = "data") -> str:
    """:func:`dumps` of a dict whose values are mostly scalars and datetimes (a
    record's fields, such as an execution pointer's): the same text, checking those in
    one flat pass instead of a walk that copies every value; anything else takes
    :func:`dumps` whole, so errors name the same paths."""
    if TAG in record:
        return dumps(record, path)
    out: dict[str, Any] | None = None
    for key, value in record.items():
        if type(key) is not str or not key.isascii():
            return dumps(record, path)
        t = type(value)
        if t is str:
            if value.isascii() or not _SURROGATE.search(value):
                continue
        elif value is None or t is bool:
            continue
        elif t is int:
            if value.bit_length() <= _MAX_INT_BITS:
                continue
        elif t is datetime:
            if out is None:
                out = dict(record)
            out[key] = _datetime_json(value)
            continue
        elif t is float:
            if math.isfinite(value):
                continue
        elif (t is list or t is dict) and not value:
            continue
        return dumps(record, path)
    return _encode(record if out is None else out)


def _fast_load(obj: Any) -> Any:
    """:func:`from_jsonable` without building a path per value (most stored values are
    plain JSON and datetimes); a tagged value it cannot read raises :class:`_NeedsPaths`,
    so :func:`loads` starts over with paths and the error names the field."""
    t = type(obj)
    if t is list:
        return [_fast_load(v) for v in obj]
    if t is not dict:
        return obj
    tag = obj.get(TAG)
    if tag is None:
        return {k: _fast_load(v) for k, v in obj.items()}
    if tag == "datetime":
        return _datetime_value(obj)
    try:
        return from_jsonable(obj, "data")
    except DataSerializationError:
        raise _NeedsPaths from None


def loads(text: str | None, path: str = "data") -> Any:
    """Deserialise a string produced by :func:`dumps`; ``None`` stays ``None``."""
    if text is None:
        return None
    plain = json.loads(text)
    try:
        return _fast_load(plain)
    except _NeedsPaths:
        return from_jsonable(plain, path)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch, the integer every store keeps times as; a naive
    datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _US


def to_us_opt(value: datetime | None) -> int | None:
    """:func:`to_us`, with ``None`` kept."""
    return None if value is None else to_us(value)


def from_us(value: int) -> datetime:
    """The UTC datetime of :func:`to_us`'s integer."""
    return _EPOCH + timedelta(microseconds=value)


def from_us_opt(value: int | None) -> datetime | None:
    """:func:`from_us`, with ``None`` kept."""
    return None if value is None else from_us(value)


def search_text(data: Any) -> str:
    """The searchable words of workflow data: its string, number and boolean values
    (not its keys, nor the type tags the serialiser adds), space-separated, then the
    extra words its type declares with a ``__search_tokens__()`` method.

    Every search index that matches terms against data indexes this text, so a term
    finds the same instances on every store."""
    words: list[str] = []
    _words_of(to_jsonable(data), words)
    extra = getattr(data, "__search_tokens__", None)
    if callable(extra):
        words.extend(str(token) for token in extra())
    return " ".join(words)


def _words_of(value: Any, words: list[str]) -> None:
    """Append the values under ``value`` to ``words`` (a module function: a nested one
    calling itself would be a reference cycle left for the garbage collector)."""
    if isinstance(value, dict):
        if TAG in value:
            _words_of(value.get("v"), words)
        else:
            for v in value.values():
                _words_of(v, words)
    elif isinstance(value, list):
        for v in value:
            _words_of(v, words)
    elif value is not None:
        words.append(str(value))


# Bounds on what one instance's data adds to an index of data fields.
MAX_SEARCH_FIELDS = 1000
MAX_SEARCH_FIELD_CHARS = 512
_NUMBER_TAGS = {"decimal"}


def _leaf_token(path: str, value: Any) -> str | None:
    """The token of one scalar (JSON-able form) at ``path``, or ``None``."""
    if isinstance(value, dict):
        tag = value.get(TAG)
        inner = value.get("v")
        if tag in _NUMBER_TAGS:
            kind, text = "n", _number_text(Decimal(str(inner)))
        elif tag == "timedelta":
            kind, text = "timedelta", f"{value.get('d')}:{value.get('s')}:{value.get('us')}"
        elif tag in {"datetime", "date", "time", "uuid"}:
            kind, text = str(tag), str(inner)
        else:
            return None
    elif value is None:
        kind, text = "null", ""
    elif isinstance(value, bool):
        kind, text = "b", "true" if value else "false"
    elif isinstance(value, int | float):
        kind, text = "n", _number_text(Decimal(str(value)))
    elif isinstance(value, str):
        kind, text = "s", value
    else:
        return None
    if len(text) > MAX_SEARCH_FIELD_CHARS:
        return None
    return json.dumps([path, kind, text], separators=(",", ":"), ensure_ascii=False)


def _number_text(value: Decimal) -> str:
    # 3, 3.0 and Decimal("3.00") are one number; 1e1 stays "10", not "1E+1".
    return format(value.normalize(), "f") if value.is_finite() else str(value)


def _walk_fields(path: str, value: Any, out: dict[str, None]) -> None:
    if len(out) >= MAX_SEARCH_FIELDS:
        return
    if isinstance(value, list):
        for item in value:
            _walk_fields(path, item, out)
        return
    if isinstance(value, dict):
        tag = value.get(TAG)
        if tag is None:
            for key, item in value.items():
                _walk_fields(f"{path}.{key}" if path else str(key), item, out)
            return
        inner = value.get("v")
        if tag in {"attrs", "dict", "enum", "tuple", "set", "frozenset"}:
            _walk_fields(path, inner, out)
            return
    token = _leaf_token(path, value)
    if token is not None:
        out[token] = None


def search_fields(data: Any) -> list[str]:
    """The data-field tokens of workflow data, for :class:`~wfe.core.protocols.DataFilter`.

    One token per scalar value, naming its dotted path (keys of nested mappings and
    fields of attrs classes; a list's items share the list's path), its kind and its
    canonical text: numbers compare by value (``3 == 3.0``), but ``3``, ``"3"`` and
    ``True`` are different tokens. Bounded: at most :data:`MAX_SEARCH_FIELDS` tokens,
    strings over :data:`MAX_SEARCH_FIELD_CHARS` characters are left out."""
    out: dict[str, None] = {}
    _walk_fields("", to_jsonable(data), out)
    return list(out)


def stored_search_fields(text: str | None) -> list[str]:
    """:func:`search_fields` of data as :func:`dumps` stored it, without loading it
    (so its classes need not be importable): for indexing documents already stored."""
    out: dict[str, None] = {}
    if text is not None:
        _walk_fields("", json.loads(text), out)
    return list(out)


def search_field(field: str, value: Any) -> str:
    """The token a :class:`~wfe.core.protocols.DataFilter` of ``field`` and ``value``
    looks for (see :func:`search_fields`); a ConfigurationError for a value no data
    field can hold (a list, a mapping, bytes, a string too long to be indexed)."""
    token = None
    if not isinstance(value, list | tuple | set | frozenset | dict):
        token = _leaf_token(field, to_jsonable(value, f"filter {field}"))
    if token is None or not field:
        raise ConfigurationError(
            f"data filter {field!r}: expected a field name and a single string, number, "
            f"boolean, None, date/time or UUID value, got {type(value).__name__}"
        )
    return token


def restore(value: Any, data_type: type | None) -> Any:
    """Coerce deserialised ``value`` to ``data_type`` (attrs class or dict) when it differs.

    Used when a definition's data type is an attrs class but the stored data is a plain
    dict (for example data given as a dict to ``start_workflow``).
    """
    if data_type is None or value is None or isinstance(value, data_type):
        return value
    if attrs.has(data_type) and isinstance(value, dict):
        names = {f.name: f.alias for f in attrs.fields(data_type) if f.init}
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise DataSerializationError(
                f"data for {data_type.__qualname__} has unknown field(s) {', '.join(unknown)}",
                f"data.{unknown[0]}",
            )
        return data_type(**{names[k]: v for k, v in value.items()})
    return value


# -- execution pointers, as the stores keep them --------------------------------------

# Marks the fields a pointer body leaves out at their default (see pointer_body).
_EMPTY = object()  # an empty list or dict, or the int 0
_KEEP = object()  # always stored


def _omitted_default(field: attrs.Attribute[Any]) -> object:
    default = field.default
    if default is None or default is True or default is False:
        return default
    if isinstance(default, attrs.Factory) and default.factory in (list, dict):  # type: ignore[arg-type]
        return _EMPTY
    if type(default) is int and default == 0:
        return _EMPTY
    return _KEEP


# Each field of the JSON body but id and sequence (columns of their own) and status
# (always stored, first), with the default it is left out at.
_POINTER_DEFAULTS = tuple(
    (f.name, _omitted_default(f))
    for f in attrs.fields(ExecutionPointer)
    if f.name not in ("id", "sequence", "status")
)
_POINTER_KNOWN = frozenset(name for name, _ in _POINTER_DEFAULTS) | {"status"}


def pointer_body(pointer: ExecutionPointer) -> str:
    """A pointer's JSON body for a store (its id and sequence go in columns of their
    own). Fields at their default (``None``, ``True``/``False``, ``0``, an empty list
    or dict) are left out, as :func:`pointer_from_body` fills them in again: a
    typical pointer has a handful of its twenty fields set, so its body is a third as
    long and as costly to write. The status is always there."""
    body: dict[str, Any] = {"status": pointer.status.value}
    for name, default in _POINTER_DEFAULTS:
        value = getattr(pointer, name)
        if value is default:
            continue
        if default is _EMPTY and not value and type(value) in (list, dict, int):
            continue
        body[name] = value
    return dumps_record(body, f"pointer {pointer.id}")


def pointer_from_body(pointer_id: str, sequence: int, body: str) -> ExecutionPointer:
    """The pointer a store kept as ``body`` (see :func:`pointer_body`). Keys a newer
    release added are ignored; fields missing (left out at their default, or unknown
    to the release that wrote it) take their defaults."""
    fields: dict[str, Any] = loads(body, f"pointer {pointer_id}")
    kwargs = {k: v for k, v in fields.items() if k in _POINTER_KNOWN}
    kwargs["status"] = PointerStatus(kwargs.get("status", PointerStatus.PENDING))
    return ExecutionPointer(id=pointer_id, sequence=sequence, **kwargs)
