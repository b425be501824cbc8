"""The floating-point tensors of a nested value, and two one-pass reductions over them.

A module's inputs and outputs are tensors, tuples, lists, dicts (HF's ``ModelOutput`` is one) or
dataclasses of them; :func:`float_tensors` walks all of these.

Examples:
    >>> import torch
    >>> out = {"logits": torch.zeros(2), "pair": (torch.ones(1), torch.arange(3))}
    >>> [t.tolist() for t in float_tensors(out)]
    [[0.0, 0.0], [1.0]]
    >>> all_finite(torch.tensor([1e38, 3e38])), max_abs([torch.tensor([-2.0, float("inf")])])
    (True, 2.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from typing import Any

import torch

__all__ = ["float_tensors", "all_finite", "max_abs", "nan_or_inf"]


def float_tensors(value: Any) -> Iterator[torch.Tensor]:
    """Yield the floating-point tensors in a (nested) value: tensors, tuples, lists, dicts, dataclasses.

    Each tensor is yielded once even if it appears several times.

    Examples:
        >>> [tuple(t.shape) for t in float_tensors(([torch.zeros(2, 3)], {"b": torch.zeros(1)}))]
        [(2, 3), (1,)]
    """
    seen: set[int] = set()
    for t in _walk(value):
        if t.is_floating_point() and id(t) not in seen:
            seen.add(id(t))
            yield t


def _walk(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _walk(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name))


def all_finite(t: torch.Tensor) -> bool:
    """True when no entry is NaN or ±inf; one reduction, no boolean copy of the tensor.

    A float64 sum of a float32/16 tensor is finite unless an entry is NaN or inf (3.4e38 times any
    realistic count stays far below float64's 1.8e308); float64 tensors are checked with ``isfinite``.

    Examples:
        >>> all_finite(torch.full((4,), 3e38)), all_finite(torch.tensor([0.0, float("nan")]))
        (True, False)
    """
    if t.numel() == 0:
        return True
    if t.dtype == torch.float64 or not t.is_floating_point():
        return bool(torch.isfinite(t).all())
    return math.isfinite(float(t.detach().sum(dtype=torch.float64)))


def max_abs(tensors: Iterable[torch.Tensor]) -> float:
    """The largest finite ``|x|`` over several tensors (0.0 when there is none).

    Examples:
        >>> max_abs([torch.tensor([1.0, -3.0]), torch.tensor([float("nan")])])
        3.0
    """
    values = [t.detach().abs().nan_to_num(0.0, 0.0, 0.0).amax().item() for t in tensors if t.numel()]
    return float(max(values, default=0.0))


def nan_or_inf(t: torch.Tensor) -> str:
    """``"nan"`` when a NaN is among the entries, else ``"inf"`` (call it on a non-finite tensor).

    Examples:
        >>> nan_or_inf(torch.tensor([1.0, float("-inf")]))
        'inf'
    """
    return "nan" if bool(torch.isnan(t).any()) else "inf"
