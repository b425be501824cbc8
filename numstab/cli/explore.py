"""`numstab explore`: the interactive explorer in the browser (a Bokeh server on 127.0.0.1)."""

from __future__ import annotations

import sys
import webbrowser

import typer

from numstab.cli._app import app, small_work_threads
from numstab.cli._output import QUIET, is_quiet
from numstab.errors import InvalidArgumentError


@app.command("explore")
def explore(
    ctx: typer.Context,
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1 (0: a free one).", min=0, max=65535),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL without opening a browser."),
    quiet: bool = QUIET,
) -> None:
    """Move a slider, watch theory and a real network side by side (Ctrl-C stops).

    Prints the page's URL (also with --quiet: it is what the command gives you) and serves until Ctrl-C.
    """
    try:
        from numstab.render.explorer import serve
    except ImportError as err:
        raise InvalidArgumentError(
            f"numstab explore needs bokeh ({err}): pip install 'numstab[explore]'"
        ) from None
    small_work_threads()

    def ready(url: str) -> None:
        print(url if quiet else f"numstab explore: serving {url} (Ctrl-C stops)", flush=True)
        if not no_browser:
            webbrowser.open(url)

    quiet = is_quiet(ctx, quiet)
    serve(port=port, on_ready=ready)
    if not quiet:
        print("numstab explore: stopped", file=sys.stderr)
