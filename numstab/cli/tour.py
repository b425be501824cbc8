"""`numstab tour [--out DIR] [--quick]`: the chapter end to end, tables here and an HTML report there."""

from __future__ import annotations

import pathlib

import typer

from numstab.cli._app import app, small_work_threads
from numstab.cli._output import QUIET, is_quiet


@app.command("tour")
def tour(
    ctx: typer.Context,
    out: pathlib.Path = typer.Option(
        pathlib.Path("numstab-report"), "--out", help="Report folder (created if missing; its parent must "
        "exist). An earlier numstab report there is replaced; a folder of other files is refused."
    ),
    quick: bool = typer.Option(False, "--quick", help="Small settings: seconds instead of the chapter's."),
    quiet: bool = QUIET,
) -> None:
    """Run every experiment of the chapter: what it printed, what we measure, what theory predicts."""
    import io

    from numstab.render.terminal import make_console
    from numstab.tour import run_tour

    small_work_threads()
    silent = is_quiet(ctx, quiet)
    console = make_console(file=io.StringIO()) if silent else make_console()
    summary = run_tour(out, quick=quick, console=console)
    if silent:
        return
    if summary.replaced:
        typer.echo(f"Replaced the earlier report in {summary.folder}/: {', '.join(summary.replaced)}")
    total = sum(summary.seconds.values())
    # typer.echo, not the console: the folder's name must never be wrapped
    typer.echo(f"Report written in {total:.1f} s to {summary.folder}/ (index.html, report.json)")
