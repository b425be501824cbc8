"""Argument checks shared by the experiments: one message format, naming the argument and the fix."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from numstab import activations
from numstab.errors import InvalidArgumentError, NumstabTypeError

__all__ = ["scales_tuple", "activation_list"]


def scales_tuple(name: str, scales: Iterable[float] | float) -> tuple[float, ...]:
    """Return ``scales`` as a non-empty tuple of finite floats > 0, or raise naming ``name``.

    Examples:
        >>> scales_tuple("scales", [0.5, 0.7])
        (0.5, 0.7)
    """
    if isinstance(scales, (int, float)) and not isinstance(scales, bool):
        scales = (scales,)
    if isinstance(scales, str) or not isinstance(scales, Iterable):
        raise NumstabTypeError(
            f"{name} must be a sequence of numbers > 0, got {scales!r}: pass e.g. {name}=(0.5, 0.7)"
        )
    values = tuple(float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else s for s in scales)
    for i, s in enumerate(values):
        if not isinstance(s, float) or not (math.isfinite(s) and s > 0):
            raise InvalidArgumentError(
                f"{name}[{i}] must be a finite number > 0 (a standard deviation), got {s!r}: "
                f"pass e.g. {name}=(0.5, 0.7)"
            )
    if not values:
        raise InvalidArgumentError(f"{name} is empty: pass at least one value > 0, e.g. {name}=(0.5, 0.7)")
    return values


def activation_list(names: Sequence[str] | str) -> tuple[activations.Activation, ...]:
    """Resolve activation names through the registry (unknown names list the valid ones).

    Examples:
        >>> [a.name for a in activation_list(["relu", "4*sigmoid(x)-2"])]
        ['relu', 'scaled_sigmoid']
    """
    if isinstance(names, str):
        names = (names,)
    resolved = tuple(activations.get(n) for n in names)
    if not resolved:
        raise InvalidArgumentError("activations is empty: pass at least one name, e.g. ('relu', 'sigmoid')")
    return resolved
