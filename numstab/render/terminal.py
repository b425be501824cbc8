"""Terminal output: rich tables with aligned numbers and coloured verdicts, plain when piped.

Colour is used only when the output is a terminal and ``NO_COLOR`` is unset (https://no-color.org);
piped into a file or another program, the same tables come out as plain text.
"""

from __future__ import annotations

import numstab.render._rich_import  # noqa: F401  isort: skip  (before rich: keeps the global RNG)

import os
from collections.abc import Iterable, Sequence
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from numstab.errors import InvalidArgumentError
from numstab.render.formatting import check_table, fmt, is_number, numeric_columns, printable, verdict_kind

__all__ = ["make_console", "make_table", "make_progress", "to_text", "fmt", "VERDICT_STYLES"]

#: The rich style of each verdict class (words map to classes in ``formatting.VERDICT_WORDS``).
VERDICT_STYLES = {"ok": "bold green", "warn": "bold yellow", "bad": "bold red"}


def make_console(*, file: IO[str] | None = None, width: int | None = None) -> Console:
    """Return a rich Console that colours only a terminal, and never when ``NO_COLOR`` is set.

    rich already turns colour off when ``file`` is not a terminal; this adds ``NO_COLOR`` and turns off
    rich's automatic highlighting of numbers, so what is coloured is what numstab means to colour.

    Args:
        file: where to write (default: standard output).
        width: the width in characters (default: the terminal's, or 80 when not a terminal).

    Examples:
        >>> import io
        >>> console = make_console(file=io.StringIO(), width=40)
        >>> console.is_terminal, console.color_system is None
        (False, True)
    """
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 20):
        raise InvalidArgumentError(f"width must be an integer >= 20 characters, got {width!r}")
    jupyter = None if file is None else False  # a console writing to a file writes there, in a notebook too
    return Console(file=file, width=width, no_color=bool(os.environ.get("NO_COLOR")), highlight=False,
                   force_jupyter=jupyter)  # fmt: skip


def _cell(value: Any, kind_column: bool, digits: int = 3) -> Text:
    if is_number(value):
        return Text(fmt(value, digits=digits))
    text = "" if value is None else printable(str(value))
    kind = verdict_kind(text) if kind_column else None
    return Text(text, style=VERDICT_STYLES[kind] if kind else "")


def make_table(
    title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    verdict_column: int | None = None,
    digits: int = 3,
) -> Table:
    """Build a rich Table; numbers are formatted with :func:`fmt` and right-aligned, verdicts coloured.

    A column whose cells are all numbers is right-aligned, so numbers of different magnitudes line up
    on their last digit (``fmt`` uses a fixed number of significant digits). Cells of ``verdict_column``
    are coloured by :data:`VERDICT_STYLES` (green ok/healthy, yellow warn, red bad/vanishing/exploding/...).

    Args:
        title: the table's title (empty for none).
        headers: one header per column.
        rows: the rows; each must have ``len(headers)`` cells (numbers, strings or None).
        verdict_column: index of the column holding verdict words, if any.
        digits: significant digits of the numbers (4 where a value is meant to be copied).

    Raises:
        InvalidArgumentError: a row of the wrong length, or ``verdict_column`` out of range.

    Examples:
        >>> import io
        >>> console = make_console(file=io.StringIO(), width=40)
        >>> console.print(make_table("", ["scale", "norm"], [[0.5, 1e-27], [2.0, 3.5]]))
        >>> print("\\n".join(line.rstrip() for line in console.file.getvalue().splitlines()))
         scale       norm
        ──────────────────
         0.500   1.00e-27
          2.00       3.50
    """
    headers, rows = check_table(headers, rows, verdict_column)
    # Text, not str: rich would read "E[x²]" or "Var[w]" as console markup and drop the brackets.
    table = Table(
        title=Text(printable(title)) if title else None,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title_justify="left",
    )
    for header, numeric in zip(headers, numeric_columns(headers, rows), strict=True):
        table.add_column(Text(printable(header)), justify="right" if numeric else "left", no_wrap=numeric)
    for row in rows:
        table.add_row(*(_cell(value, index == verdict_column, digits) for index, value in enumerate(row)))
    return table


def make_progress(console: Console | None = None) -> Progress:
    """Return a rich Progress bar for long work; it draws nothing when the console is not a terminal.

    Use it as a context manager around the loop (``with make_progress() as bar: task = bar.add_task(...)``);
    the bar is transient, so it disappears when done and leaves only the results on screen.

    Args:
        console: the console to draw on (default: a new :func:`make_console`).

    Examples:
        >>> import io
        >>> with make_progress(make_console(file=io.StringIO())) as bar:
        ...     task = bar.add_task("depth sweep", total=3)
        ...     for _ in range(3):
        ...         bar.advance(task)
        >>> bar.tasks[0].finished
        True
    """
    console = console or make_console()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def to_text(renderable: Any, *, width: int = 100) -> str:
    """Render a rich renderable (a table, a report) as plain text: what ``str(result)`` returns.

    Examples:
        >>> print(to_text(make_table("", ["scale"], [[0.5]]), width=20))
         scale
        ───────
         0.500
    """
    import io

    # no colour whatever FORCE_COLOR says: the text goes into a str, not to a terminal
    # force_jupyter=False: inside a notebook rich would otherwise display the table itself (a stray
    # output of several KB) and leave the string empty
    console = Console(
        file=io.StringIO(), width=width, color_system=None, highlight=False, force_jupyter=False
    )
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())
