"""How numstab writes a number: a few significant digits, scientific outside [1e-3, 1e4), powers of ten.

Magnitudes in a stability study span dozens of decades (a gradient norm of 1e-27 next to 0.5). The
renderers and the results' own comparison rows (:meth:`numstab.lab.ActivationCurves.comparisons`, ...)
write numbers the same way, so this sits below both.

Examples:
    >>> fmt(1e-30), power10(22.5)
    ('1.00e-30', '3.16e+22')
"""

from __future__ import annotations

import math
import numbers

from numstab.errors import check_int_at_least

__all__ = ["fmt", "is_number", "power10"]

_FIXED_LOW, _FIXED_HIGH = -3, 4  # fixed notation for 1e-3 <= |x| < 1e4, scientific elsewhere


def is_number(value: object) -> bool:
    """Return whether ``value`` is a real number (int, float, numpy scalar), booleans excluded.

    Examples:
        >>> is_number(3), is_number(2.5), is_number(True), is_number("3")
        (True, True, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def fmt(x: float, *, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits, in scientific notation outside [1e-3, 1e4).

    Magnitudes in a stability report span dozens of decades (a gradient norm of 1e-27 next to 0.5), so
    numbers outside :math:`10^{-3} \\le |x| < 10^{4}` are written as ``1.23e-27``; inside the range they are
    written in fixed notation with ``digits`` significant digits (more when the integer part has more:
    the integer part is never cut), so a right-aligned column of them lines up. The decision is made
    *after* rounding to ``digits`` significant digits, so 9999.7 becomes ``1.00e+04``, never ``10000``.
    Integers are written exactly while they are inside the range; non-finite values are spelled out
    (``inf``, ``-inf``, ``nan``).

    Args:
        x: the number (int, float or numpy scalar).
        digits: significant digits, at least 1.

    Examples:
        >>> [fmt(v) for v in (0.5, 1234.56, 1e-27, -3.14159e8, 0.0, 42, float("inf"), float("nan"))]
        ['0.500', '1235', '1.00e-27', '-3.14e+08', '0', '42', 'inf', 'nan']
        >>> fmt(9999.7), fmt(0.00099996), fmt(2 / 3, digits=5)
        ('1.00e+04', '0.00100', '0.66667')
    """
    check_int_at_least("digits", digits, 1)
    if isinstance(x, numbers.Integral) and not isinstance(x, bool) and abs(int(x)) < 10**_FIXED_HIGH:
        return str(int(x))
    value = float(x)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0.0:
        return "0"
    scientific = f"{value:.{digits - 1}e}"
    exponent = int(scientific.rsplit("e", 1)[1])
    if _FIXED_LOW <= exponent < _FIXED_HIGH:
        return f"{value:.{max(0, digits - 1 - exponent)}f}"
    return scientific




def power10(log10_value: float) -> str:
    """Write 10**x as ``1.23e+45`` from its log10 x without overflowing a float; ``0`` and ``inf`` at -+inf.

    Examples:
        >>> power10(-5.5), power10(400.0), power10(float("-inf"))
        ('3.16e-06', '1.00e+400', '0')
    """
    if not math.isfinite(log10_value):
        return "0" if log10_value < 0 else "inf"
    exponent = math.floor(log10_value)
    return f"{10 ** (log10_value - exponent):.2f}e{exponent:+03d}"
