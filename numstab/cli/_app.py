"""The typer application every command module registers on."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import typer

from numstab.errors import InvalidArgumentError

#: `-h` as well as `--help`, on every command (click passes the setting down to sub-commands).
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="numstab",
    help="Make the numerical stability of deep networks visible, predictable and fixable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)


def _print_version(value: bool) -> None:
    if value:
        from numstab import __version__

        typer.echo(f"numstab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", "-V", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the requested documents and errors."),
) -> None:
    """Make the numerical stability of deep networks visible, predictable and fixable.

    Start with `numstab tour`: the chapter's experiments end to end, tables here and an HTML report.
    """
    ctx.obj = {"quiet": quiet}


#: `numstab lab NAME [options]`: one sub-command per experiment, registered by numstab/cli/lab.py
#: (the chapter's experiments) and numstab/cli/training.py (training on real data).
lab_app = typer.Typer(
    name="lab",
    help="Run one experiment of the chapter (`numstab lab --help` lists them).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)
app.add_typer(lab_app, name="lab")


def small_work_threads() -> None:
    """Run torch on one thread unless ``OMP_NUM_THREADS`` asks for more.

    The lab's and the tour's matrices are small (width <= 100, batched), where OpenMP threads add only
    synchronization; on a busy 2-core machine two threads took the tour from 20 s to 141 s (measured).
    """
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)


@lab_app.callback()
def _lab_root() -> None:
    """Run one experiment of the chapter (`numstab lab --help` lists them)."""
    small_work_threads()


def split_list(
    option: str, text: str | None, cast: Callable[[str], Any] = str.strip, *, example: str = "0.5,0.7"
) -> tuple | None:
    """Parse a comma-separated option value ('0.5,0.7' -> (0.5, 0.7)), naming the option on a mistake.

    An option left out (None) stays None; one given but empty ('' or ',') is an error, never the default.

    Examples:
        >>> split_list("--scales", "0.5, 0.7", float)
        (0.5, 0.7)
        >>> split_list("--names", "relu,,tanh")
        ('relu', 'tanh')
    """
    if text is None:
        return None
    try:
        values = tuple(cast(part.strip()) for part in text.split(",") if part.strip())
    except (ValueError, OverflowError):
        message = f"{option} must be a comma-separated list such as {example}, got {text!r}"
        raise InvalidArgumentError(message) from None
    if not values:  # '' or ',': given, but empty; an option left out is None and never reaches here
        raise InvalidArgumentError(f"{option} is empty: pass at least one value, e.g. {option} {example}")
    return values
