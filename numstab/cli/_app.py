"""The typer application every command module registers on."""

from __future__ import annotations

import typer

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
