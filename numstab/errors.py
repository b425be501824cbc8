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
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "NumstabError",
    "InvalidArgumentError",
    "UnknownNameError",
    "NumstabTypeError",
    "BadInputError",
    "NoCriticalPointError",
    "ModelError",
    "MonitorStateError",
    "InsufficientMemoryError",
    "SEED_MAX",
    "check_finite",
    "check_positive",
    "check_nonnegative",
    "check_int_at_least",
    "check_seed",
    "check_real_array",
]

#: The largest seed numstab accepts: torch.Generator.manual_seed and numpy.random.default_rng both take
#: every integer in [0, 2**63 - 1] as it is (torch wraps negative seeds and fails beyond 2**64 - 1).
SEED_MAX = 2**63 - 1


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


class InsufficientMemoryError(InvalidArgumentError):
    """The arguments ask for more memory than the machine has available (see :mod:`numstab.resources`)."""


class MonitorStateError(NumstabError, RuntimeError):
    """A GradientMonitor was used out of order: attached twice, or ``step()`` without a backward."""


def check_finite(name: str, value: float) -> float:
    """Return ``float(value)`` if it is a finite number, else raise naming ``name``.

    Examples:
        >>> check_finite("lo", -8)
        -8.0
    """
    value = _as_float(name, value)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r}: pass a finite value")
    return value


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


def check_int_at_least(name: str, value: int, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer >= ``minimum`` (and <= ``maximum``), else raise naming ``name``.

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
            f"{name} must be an integer >= {minimum}, got {_short(value)} ({kind}): pass e.g. {minimum}"
        )
    if value < minimum:
        raise InvalidArgumentError(
            f"{name} must be >= {minimum}, got {_short(value)}: pass {name}={minimum} or more"
        )
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(f"{name} must be <= {maximum}, got {_short(value)}: pass a smaller {name}")
    return value


def check_seed(name: str, value: int) -> int:
    """Return ``value`` if it is an integer seed in [0, :data:`SEED_MAX`], else raise naming ``name``.

    Examples:
        >>> check_seed("seed", 7)
        7
        >>> check_seed("seed", 2**64)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        numstab.errors.InvalidArgumentError: seed must be <= 2**63 - 1, got 18446744073709551616: ...
    """
    value = check_int_at_least(name, value, 0)
    if value > SEED_MAX:
        raise InvalidArgumentError(f"{name} must be <= 2**63 - 1, got {_short(value)}: pass a smaller seed")
    return value


def check_real_array(name: str, values: Any) -> Any:
    """Return ``values`` as a float64 numpy array of real numbers, or raise naming ``name``.

    numpy alone would read ``None`` as NaN, drop the imaginary part of complex numbers (with only a
    warning), parse strings ("1.5") and fail on an integer beyond float64 with a bare OverflowError;
    each of those is refused here with a message that says what to pass instead.

    Raises:
        NumstabTypeError: None, strings, booleans, complex numbers, ragged nesting or other objects.
        InvalidArgumentError: an integer too large for float64 (e.g. 10**400).

    Examples:
        >>> check_real_array("q", [1, 2.5]).tolist()
        [1.0, 2.5]
        >>> check_real_array("q", [1 + 2j])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        numstab.errors.NumstabTypeError: q holds complex numbers...
    """
    import numpy as np

    if values is None or isinstance(values, (str, bytes)):
        raise NumstabTypeError(
            f"{name} must be real numbers (a number, a list or an array), got {_short(values)}"
        )
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError, RuntimeError):
        message = f"{name} must be real numbers in a rectangular array, got {_short(values)}"
        raise NumstabTypeError(message) from None
    if raw.dtype.kind == "c":
        raise NumstabTypeError(
            f"{name} holds complex numbers ({raw.dtype}): pass the real part (x.real) and the imaginary part "
            "(x.imag) separately"
        )
    if raw.dtype.kind == "O":  # Python ints beyond 64 bits, None or other objects among the numbers
        odd = [v for v in raw.ravel() if isinstance(v, bool) or not isinstance(v, numbers.Real)]
        if odd:
            raise NumstabTypeError(f"{name} must be real numbers, got {_short(odd[0])} among them")
        try:
            raw = raw.astype(np.float64)
        except OverflowError:
            raise InvalidArgumentError(
                f"{name} holds an integer too large for a float64 (beyond 1.8e308): pass numbers within range"
            ) from None
        except (TypeError, ValueError):
            raise NumstabTypeError(f"{name} must be real numbers, got {_short(values)}") from None
    if raw.dtype.kind not in "iuf":
        raise NumstabTypeError(f"{name} must be real numbers, got {raw.dtype} values: pass floats or ints")
    return raw.astype(np.float64, copy=False)


def _as_float(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise NumstabTypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float64, e.g. 10**400
        message = f"{name} is too large for a float64, got {_short(value)}: pass a smaller number"
        raise InvalidArgumentError(message) from None
    except (TypeError, ValueError, RuntimeError):
        message = f"{name} must be a number, got {_short(value)} ({type(value).__name__})"
        raise NumstabTypeError(message) from None


def _short(value: object, limit: int = 40) -> str:
    """repr(value) cut to ``limit`` characters, so a huge argument never floods an error message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
