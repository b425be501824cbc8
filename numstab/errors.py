"""The library's exceptions, in one place.

Every error numstab raises for a user's mistake is a :class:`NumstabError`, and also a
``ValueError`` or ``TypeError`` so that code catching the builtin types keeps working.
Messages name the argument, say what was received and what was expected, and give the fix.
The CLI catches :class:`NumstabError`, prints its message on one line and exits with status 2.

Examples:
    >>> from numstab.errors import InvalidArgumentError
    >>> try:
    ...     raise InvalidArgumentError("depth must be >= 1, got 0: pass depth=1 or more")
    ... except ValueError as err:
    ...     print(err)
    depth must be >= 1, got 0: pass depth=1 or more
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "NumstabError",
    "InvalidArgumentError",
    "UnknownNameError",
    "NumstabTypeError",
    "BadInputError",
    "NoCriticalPointError",
    "ModelError",
    "MonitorStateError",
    "check_positive",
    "check_nonnegative",
    "check_int_at_least",
]


class NumstabError(Exception):
    """Base class of every error numstab raises for a user's mistake."""


class InvalidArgumentError(NumstabError, ValueError):
    """An argument has a value outside its valid range."""


class UnknownNameError(InvalidArgumentError):
    """A name (activation, scheme, experiment, example, remedy) is not one numstab knows.

    The message lists the valid names.

    Examples:
        >>> str(UnknownNameError("activation", "relu6", ["relu", "tanh"]))
        "unknown activation 'relu6': use one of relu, tanh"
    """

    def __init__(self, what: str, got: object, valid: Iterable[str], hint: str = "") -> None:
        self.what = what
        self.got = got
        self.valid = tuple(valid)
        message = f"unknown {what} {got!r}: use one of {', '.join(self.valid)}"
        super().__init__(message + (f" ({hint})" if hint else ""))


class NoCriticalPointError(InvalidArgumentError):
    """No weight std puts the activation at the edge of chaos (chi_1 = 1) at the given bias std.

    Raised by :func:`numstab.theory.critical_weight_std` and everything that needs the critical point
    (``init.critical_``, the ``critical`` scheme, the training lab's critical remedies), so a caller can
    offer an alternative (the CLI: ``--weight-std``) without reading the message.
    """


class NumstabTypeError(NumstabError, TypeError):
    """An argument has the wrong type (a tensor where a module is needed, say)."""


class BadInputError(NumstabError, ValueError):
    """The data handed in is unusable (NaN already in the inputs, wrong shape)."""


class ModelError(NumstabError, ValueError):
    """The model cannot be analysed as given (no parameters, no floating-point output)."""


class MonitorStateError(NumstabError, RuntimeError):
    """A GradientMonitor was used out of order: attached twice, or ``step()`` without a backward."""


def check_positive(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and > 0, else raise naming ``name``.

    Examples:
        >>> check_positive("scale", 0.5)
        0.5
    """
    value = _as_float(name, value)
    if not (math.isfinite(value) and value > 0):
        raise InvalidArgumentError(f"{name} must be a finite number > 0, got {value!r}: pass a value > 0")
    return value


def check_nonnegative(name: str, value: float) -> float:
    """Return ``float(value)`` if it is finite and >= 0, else raise naming ``name``.

    Examples:
        >>> check_nonnegative("bias_std", 0.0)
        0.0
    """
    value = _as_float(name, value)
    if not (math.isfinite(value) and value >= 0):
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}: pass 0 or more")
    return value


def check_int_at_least(name: str, value: int, minimum: int) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise naming ``name``.

    Examples:
        >>> check_int_at_least("depth", 3, 1)
        3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
    if isinstance(value, bool) or not isinstance(value, int):
        kind = type(value).__name__
        raise NumstabTypeError(
            f"{name} must be an integer >= {minimum}, got {value!r} ({kind}): pass e.g. {minimum}"
        )
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}: pass {name}={minimum} or more")
    return value


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise NumstabTypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NumstabTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})") from None
