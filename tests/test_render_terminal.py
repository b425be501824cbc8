"""Terminal rendering: fmt's notation rule, golden tables on a colourless 60-column console, colour rules."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from rich.console import Console

from numstab.errors import InvalidArgumentError
from numstab.render.formatting import fmt, verdict_kind
from numstab.render.terminal import make_console, make_progress, make_table


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, "0.500"),
        (1.0, "1.00"),
        (0.001, "0.00100"),  # 1e-3 is the lowest fixed-notation magnitude
        (0.000999, "9.99e-04"),  # just below it: scientific
        (9990.0, "9990"),  # the highest fixed-notation magnitude
        (9999.0, "1.00e+04"),  # 3 significant digits round it to 1.00e+04
        (10000.0, "1.00e+04"),
        (9999.7, "1.00e+04"),  # rounds up into the scientific range: decided after rounding
        (0.00099996, "0.00100"),  # rounds up into the fixed range
        (-3.14159e8, "-3.14e+08"),
        (7.888609052210118e-31, "7.89e-31"),  # 0.25 ** 50
        (65504.0, "6.55e+04"),  # float16 max
        (0.0, "0"),
        (-0.0, "0"),
        (42, "42"),
        (-9999, "-9999"),
        (123456, "1.23e+05"),  # an integer too large for the column is shortened too
        (np.float32(0.25), "0.250"),
        (np.int64(7), "7"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
    ],
)
def test_fmt_notation(value: float, expected: str) -> None:
    assert fmt(value) == expected


def test_fmt_digits() -> None:
    assert fmt(math.pi, digits=1) == "3"
    assert fmt(math.pi, digits=6) == "3.14159"
    assert fmt(1 / 3 * 1e-9, digits=2) == "3.3e-10"
    with pytest.raises(InvalidArgumentError, match="digits must be >= 1, got 0"):
        fmt(1.0, digits=0)


def test_verdict_words() -> None:
    assert [verdict_kind(w) for w in ("healthy", "OK", "warn", "Exploding", "non-finite", "tanh")] == [
        "ok", "ok", "warn", "bad", "bad", None,
    ]


def _render(table: object, width: int = 60) -> str:
    console = make_console(file=io.StringIO(), width=width)
    console.print(table)
    return console.file.getvalue()


def test_golden_table_with_decades_and_verdicts() -> None:
    rows = [
        [1, "sigmoid", 0.25, "healthy"],
        [10, "sigmoid", 9.5e-7, "vanishing"],
        [50, "sigmoid", 0.25**50, "vanishing"],
        [3, "relu", math.inf, "exploding"],
        [4, "tanh", None, "n/a"],
    ]
    table = make_table("Gradient norm by layer", ["layer", "activation", "grad norm", "verdict"], rows,
                       verdict_column=3)
    assert _render(table) == (
        "Gradient norm by layer                      \n"
        " layer   activation   grad norm   verdict   \n"
        "────────────────────────────────────────────\n"
        "     1   sigmoid          0.250   healthy   \n"
        "    10   sigmoid       9.50e-07   vanishing \n"
        "    50   sigmoid       7.89e-31   vanishing \n"
        "     3   relu               inf   exploding \n"
        "     4   tanh                     n/a       \n"
    )


def test_golden_table_wraps_text_but_never_numbers() -> None:
    rows = [["a very long layer name that wraps", 12345.678], ["b", -0.000123]]
    table = make_table("Long", ["name", "value"], rows)
    assert _render(table, width=30) == (
        "Long                          \n"
        " name                   value \n"
        "──────────────────────────────\n"
        " a very long         1.23e+04 \n"
        " layer name that              \n"
        " wraps                        \n"
        " b                  -1.23e-04 \n"
    )


def test_golden_table_without_rows_or_title() -> None:
    assert _render(make_table("", ["a", "b"], [])) == " a   b \n───────\n"


def test_brackets_are_text_not_markup() -> None:
    table = make_table("Var[w] [bold]", ["E[x²]", "w[0]"], [[1.0, "a[b]"]])
    assert _render(table) == (
        "Var[w] [bold] \n"
        " E[x²]   w[0] \n"
        "──────────────\n"
        "  1.00   a[b] \n"
    )


def test_verdicts_coloured_on_a_colour_terminal() -> None:
    console = Console(file=io.StringIO(), width=60, force_terminal=True, color_system="standard", _environ={})
    rows = [["fc1", "healthy"], ["fc2", "exploding"], ["fc3", "warn"]]
    console.print(make_table("", ["layer", "verdict"], rows, verdict_column=1))
    lines = console.file.getvalue().splitlines()
    # green, red, yellow (bold); the layer names stay plain
    assert lines[2:] == [
        " fc1     \x1b[1;32mhealthy  \x1b[0m ",
        " fc2     \x1b[1;31mexploding\x1b[0m ",
        " fc3     \x1b[1;33mwarn     \x1b[0m ",
    ]


def test_no_color_wins_over_a_forced_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    table = make_table("", ["verdict"], [["exploding"]], verdict_column=0)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich then treats the StringIO as a terminal ...
    assert "\x1b[1;31mexploding" in _render(table)
    monkeypatch.setenv("NO_COLOR", "1")  # ... but NO_COLOR (https://no-color.org) turns the colour off
    out = _render(table)
    assert re.search(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;)", out) is None  # no foreground colour code at all
    assert "exploding" in out


def test_table_rejects_ragged_rows_and_bad_verdict_column() -> None:
    with pytest.raises(InvalidArgumentError, match=r"rows\[1\] has 1 cells but there are 2 headers"):
        make_table("t", ["a", "b"], [[1, 2], [3]])
    with pytest.raises(
        InvalidArgumentError, match=r"verdict_column must be a column index in \[0, 1\], got 2"
    ):
        make_table("t", ["a", "b"], [[1, 2]], verdict_column=2)


def test_console_width_is_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="width must be an integer >= 20"):
        make_console(width=5)


def test_progress_draws_nothing_when_not_a_terminal() -> None:
    console = make_console(file=io.StringIO(), width=60)
    with make_progress(console) as bar:
        task = bar.add_task("depth sweep", total=4)
        for _ in range(4):
            bar.advance(task)
    assert bar.tasks[0].completed == 4
    assert console.file.getvalue() == ""
