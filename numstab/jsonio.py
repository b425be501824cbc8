"""The versioned JSON form of a report: ``{"schema": "numstab.report/1", "kind": ..., **payload}``.

JSON has no infinity or NaN, and a stability report is full of them (a gradient that overflowed is
``inf``); they are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` and read back as floats,
so :func:`dump` followed by :func:`load` returns the same numbers. The schema is documented in
``docs/report-schema.md``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from numstab.errors import InvalidArgumentError, NumstabTypeError
from numstab.files import atomic_write_text, check_output_file, check_path
from numstab.resources import check_memory

__all__ = ["SCHEMA", "dump", "load", "dumps", "loads", "encode", "decode", "plain"]

#: The schema identifier written into every report; bumped when a field changes meaning or is removed.
SCHEMA = "numstab.report/1"

_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_RESERVED = ("schema", "kind")

#: Nesting deeper than this is refused on reading: numstab writes at most ~6 levels, and Python's
#: recursion limit would otherwise turn a hostile file into a RecursionError.
MAX_DEPTH = 64
#: Integers longer than this many digits are refused on reading (CPython refuses > 4300 with a ValueError).
_MAX_INT_DIGITS = 400
#: A parsed report takes ~10x its file size in Python objects; larger files are refused up front.
_PARSED_PER_BYTE = 10


def plain(value: Any) -> Any:
    """Turn numpy arrays, tuples and nested dataclasses into plain Python values (what ``to_dict()`` gives).

    Dataclasses become dicts of their fields, arrays and tuples lists, numpy scalars Python numbers, dict
    keys strings; non-finite floats stay floats (:func:`encode` spells them when the JSON is written).

    Examples:
        >>> import numpy as np
        >>> plain({"a": np.array([1.0, 2.0]), "b": (np.float64(3.0),)})
        {'a': [1.0, 2.0], 'b': [3.0]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if type(value).__module__ == "numpy":  # arrays become nested lists, scalars Python numbers
        return plain(value.tolist())
    return value


def encode(value: Any) -> Any:
    """Return ``value`` as plain JSON data: non-finite floats become ``"inf"``, ``"-inf"``, ``"nan"``.

    Mappings become dicts with string keys, sequences and numpy arrays become lists, numpy scalars become
    Python numbers, paths become strings, enums their value, and objects with ``to_dict()`` (the result
    dataclasses) are encoded through it.

    Args:
        value: the data to encode.

    Raises:
        NumstabTypeError: something that has no JSON form (the message names its type).

    Examples:
        >>> encode({"norms": (1.0, float("inf"), float("nan")), "depth": 3})
        {'norms': [1.0, 'inf', 'nan'], 'depth': 3}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _spell(value)
    return _encode_other(value)


def _spell(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _encode_other(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return encode(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(dataclasses.asdict(value))
    if isinstance(value, (pathlib.PurePath, enum.Enum)):
        return encode(str(value) if isinstance(value, pathlib.PurePath) else value.value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return encode(value.tolist())
    raise NumstabTypeError(
        f"cannot write a {type(value).__name__} to JSON: convert it to numbers, strings, lists or dicts first"
    )


def decode(value: Any) -> Any:
    """Undo :func:`encode`'s spelling of non-finite floats, recursively.

    The strings ``"inf"``, ``"-inf"`` and ``"nan"`` are reserved for non-finite numbers.

    Examples:
        >>> decode({"norms": [1.0, "inf", "-inf"], "name": "fc1"})
        {'norms': [1.0, inf, -inf], 'name': 'fc1'}
    """
    return _decode(value, 0, "the document")


def _decode(value: Any, depth: int, source: str) -> Any:
    if isinstance(value, str):
        return _NONFINITE.get(value, value)
    if isinstance(value, (list, dict)) and depth >= MAX_DEPTH:
        raise InvalidArgumentError(
            f"{source} is nested deeper than {MAX_DEPTH} levels: it is not a numstab report; pass a "
            "file written by numstab"
        )
    if isinstance(value, list):
        return [_decode(v, depth + 1, source) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v, depth + 1, source) for k, v in value.items()}
    return value


def _document(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(kind, str) or not kind.strip():
        raise InvalidArgumentError(f"kind must be a non-empty string such as 'check' or 'tour', got {kind!r}")
    if not isinstance(payload, Mapping):
        raise NumstabTypeError(f"payload must be a dict, got {type(payload).__name__}")
    clash = [key for key in _RESERVED if key in payload]
    if clash:
        raise InvalidArgumentError(
            f"payload must not contain the key(s) {', '.join(map(repr, clash))}: they are set by the report "
            "layer; rename them"
        )
    try:
        return {"schema": SCHEMA, "kind": kind, **encode(dict(payload))}
    except RecursionError:
        raise InvalidArgumentError(
            "payload is nested too deeply or contains itself: pass plain data (dicts, lists, numbers)"
        ) from None


def dumps(kind: str, payload: Mapping[str, Any]) -> str:
    """Return the report as JSON text: ``{"schema": SCHEMA, "kind": kind, **payload}``, strict JSON.

    Args:
        kind: what the report is, e.g. ``"check"``, ``"tour"``, ``"theory"``.
        payload: the report's fields; must not use the keys ``"schema"`` or ``"kind"``.

    Examples:
        >>> print(dumps("check", {"verdict": "exploding", "max_grad": float("inf")}))
        {
          "schema": "numstab.report/1",
          "kind": "check",
          "verdict": "exploding",
          "max_grad": "inf"
        }
    """
    return json.dumps(_document(kind, payload), indent=2, ensure_ascii=False, allow_nan=False)


def dump(kind: str, payload: Mapping[str, Any], path: str | os.PathLike) -> pathlib.Path:
    """Write the report to ``path`` as JSON, atomically (see :func:`dumps` for the content).

    Args:
        kind: what the report is, e.g. ``"check"`` or ``"tour"``.
        payload: the report's fields.
        path: the destination file; its folder must exist.

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: the folder is missing or not writable, or ``path`` holds a file numstab
            did not write (a user's file is never replaced).

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = dump("tour", {"loss": [0.5, float("nan")]}, pathlib.Path(tmp) / "report.json")
        ...     load(path, kind="tour")["loss"]
        [0.5, nan]
    """
    return atomic_write_text(check_output_file("path", path), dumps(kind, payload) + "\n")


def loads(text: str, *, kind: str | None = None, source: str = "<string>") -> dict[str, Any]:
    """Parse a report from JSON text, check its schema (and kind) and decode non-finite floats.

    Args:
        text: the JSON text.
        kind: if given, the kind the report must have.
        source: how to name the text in error messages (a file name).

    Raises:
        InvalidArgumentError: not JSON, not a numstab report, another schema version or another kind.

    Examples:
        >>> loads('{"schema": "numstab.report/1", "kind": "check", "verdict": "healthy"}')["verdict"]
        'healthy'
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise NumstabTypeError(f"text must be a str, got {type(text).__name__}")
    document = _parse(text, source)
    if not isinstance(document, dict) or "schema" not in document:
        raise InvalidArgumentError(f"{source} is not a numstab report (no \"schema\" field): pass a file "
                                   "written by numstab")
    _check_header(document, kind, source)
    return _decode(document, 0, source)


def _parse(text: str | bytes | bytearray, source: str) -> Any:
    try:
        return json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as err:
        raise InvalidArgumentError(
            f"{source} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}): "
            "pass a file written by numstab"
        ) from err
    except RecursionError:
        raise InvalidArgumentError(
            f"{source} is nested too deeply to read: it is not a numstab report; pass a file written by "
            "numstab"
        ) from None
    except (ValueError, UnicodeDecodeError) as err:  # _bounded_int, bytes that are not UTF-8
        message = f"{source} cannot be read as a report ({err}): pass a file written by numstab"
        raise InvalidArgumentError(message) from None


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer with {len(digits)} digits")
    return int(digits)


def _check_header(document: dict[str, Any], kind: str | None, source: str) -> None:
    found = document["schema"]
    if found != SCHEMA:
        raise InvalidArgumentError(
            f"{source} has schema {found!r}, but this numstab reads {SCHEMA!r}: re-create the report with "
            "this version of numstab, or read it with the version that wrote it"
        )
    if kind is not None and document.get("kind") != kind:
        raise InvalidArgumentError(
            f"{source} is a {document.get('kind')!r} report, expected a {kind!r} report: pass the "
            f"report.json written by 'numstab {kind}'"
        )


def load(path: str | os.PathLike, *, kind: str | None = None) -> dict[str, Any]:
    """Read a report written by :func:`dump`; non-finite numbers come back as floats.

    Args:
        path: the JSON file.
        kind: if given, the kind the report must have (``"check"``, ``"tour"``, ...).

    Returns:
        The whole document, ``"schema"`` and ``"kind"`` included.

    Raises:
        InvalidArgumentError: the file is missing or unreadable, is not JSON, has another schema version
            (the message names the file, the version found and the one expected) or another kind.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = dump("check", {"verdict": "healthy"}, pathlib.Path(tmp) / "report.json")
        ...     load(path)["kind"]
        'check'
    """
    source = check_path("path", path)
    try:
        check_memory(f"report {str(source)!r}", _PARSED_PER_BYTE * source.stat().st_size,
                     "pass a report.json written by numstab")
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidArgumentError(
            f"cannot read report {str(source)!r}: {err.strerror or err}; pass the path of a report.json"
        ) from err
    except UnicodeDecodeError as err:
        raise InvalidArgumentError(f"{str(source)!r} is not UTF-8 text: pass a report.json") from err
    return loads(text, kind=kind, source=repr(str(source)))
