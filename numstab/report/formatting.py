"""Numbers and verdict words as the report shows them, shared by the terminal and the HTML renderers.

Kept free of rich and matplotlib so that formatting a number costs nothing to import.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, Literal

__all__ = [
    "fmt", "is_number", "verdict_kind", "check_table", "numeric_columns", "printable", "VerdictKind",
    "VERDICT_WORDS",
]

VerdictKind = Literal["ok", "warn", "bad"]

#: Words other renderers put in a verdict column, by the colour they get.
#: A word not listed here is shown uncoloured.
VERDICT_WORDS: dict[str, VerdictKind] = {
    **dict.fromkeys(
        ("ok", "healthy", "pass", "passed", "stable", "yes", "true", "trainable", "agrees"), "ok"
    ),
    **dict.fromkeys(("warn", "warning", "marginal", "borderline", "slow"), "warn"),
    **dict.fromkeys(
        (
            "bad", "error", "fail", "failed", "no", "false", "vanishing", "exploding", "nonfinite",
            "non-finite", "dead", "symmetric", "overflow", "underflow", "out_of_range", "diverged",
            "untrainable", "disagrees",
        ),
        "bad",
    ),
}

_FIXED_LOW, _FIXED_HIGH = -3, 4  # fixed notation for 1e-3 <= |x| < 1e4, scientific elsewhere


def printable(text: str) -> str:
    r"""``text`` with every control character written as an escape (``\x1b``, ``\n``), for a terminal.

    A module name or a message can carry terminal escape sequences (``"\x1b[2J"`` clears the screen); a
    table shows them escaped, the way ``repr`` would, and never sends them to the terminal.

    Examples:
        >>> printable("fc\x1b[31m1\n")
        'fc\\x1b[31m1\\n'
        >>> printable("σ_w² ok")
        'σ_w² ok'
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


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
    from numstab.errors import check_int_at_least

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


def verdict_kind(word: object) -> VerdictKind | None:
    """Return the colour class (``"ok"``, ``"warn"``, ``"bad"``) of a verdict word, or None if it has none.

    Args:
        word: a verdict such as ``"healthy"``, ``"exploding"`` or ``"warn"`` (case and spaces ignored).

    Examples:
        >>> verdict_kind("Healthy"), verdict_kind("exploding"), verdict_kind("42")
        ('ok', 'bad', None)
    """
    return VERDICT_WORDS.get(str(word).strip().lower().replace(" ", "_"))


def check_table(
    headers: Sequence[object], rows: Iterable[Sequence[Any]], verdict_column: int | None = None
) -> tuple[list[str], list[list[Any]]]:
    """Return ``headers`` as strings and ``rows`` as lists, after checking every row has one cell per header.

    Raises:
        InvalidArgumentError: a row of the wrong length (named by its index), or ``verdict_column``
            out of range.

    Examples:
        >>> check_table(["a", "b"], [(1, 2)])
        (['a', 'b'], [[1, 2]])
    """
    from numstab.errors import InvalidArgumentError

    headers, rows = [str(h) for h in headers], [list(row) for row in rows]
    for number, row in enumerate(rows):
        if len(row) != len(headers):
            raise InvalidArgumentError(
                f"rows[{number}] has {len(row)} cells but there are {len(headers)} headers: "
                "give every row one cell per header"
            )
    if verdict_column is not None and not (
        isinstance(verdict_column, int) and 0 <= verdict_column < len(headers)
    ):
        raise InvalidArgumentError(
            f"verdict_column must be a column index in [0, {len(headers) - 1}], got {verdict_column!r}"
        )
    return headers, rows


def numeric_columns(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[bool]:
    """Return, per column, whether every cell is a number (or None): such columns are right-aligned.

    Examples:
        >>> numeric_columns(["name", "norm"], [["fc1", 0.5], ["fc2", None]])
        [False, True]
    """
    return [
        bool(rows) and all(is_number(row[i]) or row[i] is None for row in rows) for i in range(len(headers))
    ]
