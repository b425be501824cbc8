"""`numstab tour [--out DIR] [--quick] [--lang en|zh]`: the chapter end to end, tables and a report."""

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
    lang: str = typer.Option(
        "en", "--lang", help="Language of the tables and the report: en or zh (Chinese, quoting the Chinese "
        "edition of the chapter)."
    ),
    quiet: bool = QUIET,
) -> None:
    """Run every experiment of the chapter: what it printed, what we measure, what theory predicts."""
    import io

    from numstab.messages import check_lang, tr
    from numstab.render.terminal import make_console
    from numstab.tour import run_tour

    check_lang(lang)  # before any work: a wrong value exits 2 with the list of languages
    small_work_threads()
    silent = is_quiet(ctx, quiet)
    console = make_console(file=io.StringIO()) if silent else make_console()
    summary = run_tour(out, quick=quick, console=console, lang=lang)
    if silent:
        return
    if summary.replaced:
        typer.echo(tr("cli.replaced", lang, folder=summary.folder, files=", ".join(summary.replaced)))
    total = sum(summary.seconds.values())
    # typer.echo, not the console: the folder's name must never be wrapped
    typer.echo(tr("cli.written", lang, seconds=total, folder=summary.folder))
