"""The typer application every command module registers on."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import typer

from numstab.errors import InvalidArgumentError

app = typer.Typer(
    name="numstab",
    help="Make the numerical stability of deep networks visible, predictable and fixable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Make the numerical stability of deep networks visible, predictable and fixable.

    Start with `numstab tour`: the chapter's experiments end to end, tables here and an HTML report.
    """


#: `numstab lab NAME [options]`: one sub-command per experiment, registered by numstab/cli/lab.py
#: (the chapter's experiments) and numstab/cli/training.py (training on real data).
lab_app = typer.Typer(
    name="lab",
    help="Run one experiment of the chapter (`numstab lab --help` lists them).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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
    option: str, text: str, cast: Callable[[str], Any] = str.strip, *, example: str = "0.5,0.7"
) -> tuple:
    """Parse a comma-separated option value ('0.5,0.7' -> (0.5, 0.7)), naming the option on a mistake.

    Examples:
        >>> split_list("--scales", "0.5, 0.7", float)
        (0.5, 0.7)
        >>> split_list("--names", "relu,,tanh")
        ('relu', 'tanh')
    """
    try:
        return tuple(cast(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"{option} must be a comma-separated list such as {example}, got {text!r}"
        raise InvalidArgumentError(message) from None
