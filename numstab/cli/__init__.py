"""The ``numstab`` command line: parse, call the library, render. No computation lives here.

A user's mistake (any :class:`numstab.errors.NumstabError`, or a usage error from the argument
parser) prints exactly one line on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import sys

import typer
import typer.main

from numstab.cli._app import app, lab_app
from numstab.errors import NumstabError

# Each module registers its commands on `app` when imported.
from numstab.cli import check, explore, lab, theory, tour, training  # noqa: E402,F401  isort: skip

__all__ = ["app", "main"]


def _underscore_aliases(group: typer.Typer) -> None:
    """Accept the Python spelling too: `numstab lab matrix_products` runs `matrix-products` (hidden alias)."""
    for info in list(group.registered_commands):
        if info.name and "-" in info.name:
            group.command(info.name.replace("-", "_"), hidden=True, help=info.help)(info.callback)


_underscore_aliases(lab_app)

# typer vendors its own copy of click (or uses click, in older releases); its usage errors share
# the base class of typer.BadParameter, so take it from there rather than from a private module.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def _fail(message: str) -> None:
    from numstab.render.formatting import printable

    # one line, whatever the message holds: runs of whitespace become one space, control characters
    # (a module name with terminal escapes) are shown escaped
    print(f"numstab: error: {printable(' '.join(str(message).split()))}", file=sys.stderr)
    sys.exit(2)


def _usage_message(err: Exception) -> str:
    """The parser's message, with the valid sub-commands listed when a command name was not found."""
    message = err.format_message().rstrip(".")
    ctx = getattr(err, "ctx", None)
    group = getattr(ctx, "command", None)
    if message.startswith("No such command") and hasattr(group, "list_commands"):
        names = [n for n in group.list_commands(ctx) if not group.get_command(ctx, n).hidden]
        message += f": use one of {', '.join(names)}"
    where = ctx.command_path if ctx is not None else "numstab"
    return f"{message} (see '{where} --help')"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 2 with one line on stderr for a user's mistake."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="numstab", standalone_mode=False)
    except _UsageError as err:
        if not err.format_message():  # bare `numstab`: the help was shown, nothing went wrong
            sys.exit(0)
        _fail(_usage_message(err))
    except NumstabError as err:
        _fail(str(err))
    except (KeyboardInterrupt, typer.Abort):
        print("numstab: aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:
        if type(err).__name__ != "Abort":
            raise
        print("numstab: aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
