"""What every lab result shares: ``to_dict()`` (JSON-ready) and ``_repr_html_`` (notebooks).

The HTML comes from the renderer registered for the result's type (:mod:`numstab.display`), loaded only
when a notebook asks for it, so the lab itself never imports matplotlib or the rendering layer.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from numstab import display

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
    """Mixin for the frozen result dataclasses of :mod:`numstab.lab`."""

    def to_dict(self) -> dict[str, Any]:
        """Return every field as plain Python values (arrays become nested lists)."""
        return jsonable(self)

    def _repr_html_(self) -> str:
        return display.html(self)
