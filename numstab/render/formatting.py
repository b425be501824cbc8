"""Verdict words and table checks shared by the terminal and the HTML renderers.

Kept free of rich and matplotlib so that formatting costs nothing to import. How a number is written
(:func:`fmt`) lives below, in :mod:`numstab.notation`, because results write numbers into their own
comparison rows too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from numstab.notation import fmt, is_number

__all__ = [
    "fmt", "is_number", "verdict_kind", "check_table", "numeric_columns", "printable", "VerdictKind",
    "VERDICT_WORDS",
]

VerdictKind = Literal["ok", "warn", "bad"]

#: Words other renderers put in a verdict column, by the colour they get.
#: A word not listed here is shown uncoloured.
VERDICT_WORDS: dict[str, VerdictKind] = {
    **dict.fromkeys(
        ("ok", "healthy", "pass", "passed", "stable", "yes", "true", "trainable", "agrees",
         "theory:_yes", "是", "理论：是", "一致", "可训练"), "ok"
    ),
    **dict.fromkeys(
        ("warn", "warning", "marginal", "borderline", "slow", "nothing_trained", "没有训练成功"), "warn"
    ),
    **dict.fromkeys(
        (
            "bad", "error", "fail", "failed", "no", "false", "vanishing", "exploding", "nonfinite",
            "non-finite", "dead", "symmetric", "overflow", "underflow", "out_of_range", "diverged",
            "untrainable", "disagrees", "theory:_no", "否", "理论：否", "不一致", "不可训练", "发散",
        ),
        "bad",
    ),
}


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
