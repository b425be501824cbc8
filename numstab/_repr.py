"""Short ``repr`` for result dataclasses: what a result holds, not every number in it.

A result of a stability analysis holds arrays and long lists; the dataclass ``repr`` printed them all
(``print(report)`` was one 87 kB line). :func:`short_repr` shows scalars as they are and containers by
their size, so a ``repr`` stays one readable line; ``str`` of a result gives its table (see the result
classes).

Examples:
    >>> import dataclasses
    >>> @dataclasses.dataclass(repr=False)
    ... class Result:
    ...     verdict: str
    ...     norms: list
    ...     __repr__ = short_repr
    >>> Result("healthy", [0.5] * 100)
    Result(verdict='healthy', norms=[100 items])
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["short_repr"]

#: Containers up to this many plain items are shown in full.
_FEW = 4
#: Strings longer than this are cut.
_TEXT = 60


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _brief(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype") and not isinstance(value, (int, float)):
        return f"{type(value).__name__}(shape={tuple(shape)})"
    if isinstance(value, str):
        return repr(value if len(value) <= _TEXT else value[: _TEXT - 3] + "...")
    if isinstance(value, (list, tuple, dict)):
        items = list(value.values()) if isinstance(value, dict) else list(value)
        if len(items) <= _FEW and all(_plain(v) for v in items) and len(repr(value)) <= _TEXT:
            return repr(value)
        brackets = "{}" if isinstance(value, dict) else "()" if isinstance(value, tuple) else "[]"
        return f"{brackets[0]}{len(items)} item{'' if len(items) == 1 else 's'}{brackets[1]}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"{type(value).__name__}(...)"
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return repr(value.item())  # a numpy scalar
    return repr(value)


def short_repr(obj: Any) -> str:
    """``ClassName(field=value, ...)`` with containers and arrays shown by their size.

    Fields whose name starts with ``_`` or that are declared ``repr=False`` are left out.
    """
    parts = [
        f"{f.name}={_brief(getattr(obj, f.name))}"
        for f in dataclasses.fields(obj)
        if f.repr and not f.name.startswith("_")
    ]
    return f"{type(obj).__name__}({', '.join(parts)})"
