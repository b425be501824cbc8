"""What every lab result shares: ``to_dict()`` (JSON-ready) and ``_repr_html_`` (notebooks).

The HTML comes from :mod:`numstab.report.lab`, imported only when a notebook asks for it, so the lab
itself never imports matplotlib.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from numstab._repr import short_repr

__all__ = ["LabResult", "jsonable"]


def jsonable(value: Any) -> Any:
    """Turn numpy arrays, tuples and nested dataclasses into plain JSON-ready Python values.

    Examples:
        >>> jsonable({"a": np.array([1.0, 2.0]), "b": (np.float64(3.0),)})
        {'a': [1.0, 2.0], 'b': [3.0]}
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return value  # jsonio.dump spells these "inf"/"-inf"/"nan"
    return value


class LabResult:
    """Mixin for the frozen result dataclasses of :mod:`numstab.lab` (declared with ``repr=False``).

    ``repr`` is one short line (arrays by their shape); ``str`` is the result's table, the one
    ``numstab lab NAME`` prints, so ``print(result)`` in a plain script shows it.
    """

    __repr__ = short_repr

    def __str__(self) -> str:
        from numstab.report.lab import terminal_table, view  # lazy: rich only when printed
        from numstab.report.terminal import to_text

        try:
            view(self)
        except TypeError:  # a part of a result (one curve, one run): its short repr
            return repr(self)
        return to_text(terminal_table(self))

    def to_dict(self) -> dict[str, Any]:
        """Return every field as plain Python values (arrays become nested lists)."""
        return jsonable(self)

    def _repr_html_(self) -> str:
        from numstab.report.lab import to_html  # lazy: matplotlib only when a notebook asks

        return to_html(self)
