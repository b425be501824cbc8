"""What every command does with its outputs: checked before any work, written as one unit, '-' is stdout.

One meaning for the output options across commands: ``--json PATH`` and ``--html PATH`` (and
``--plot PATH``) name a file; ``-`` means standard output, which then carries only that document (the
tables and notes go elsewhere or nowhere). Every path is checked when the command starts, before the
user's code runs or anything is computed (:func:`numstab.files.check_output_file`), and the files
are written together at the end (:func:`numstab.files.write_files`): when one cannot be written,
none is. ``--quiet`` leaves only the requested documents and the errors.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer

from numstab.errors import InvalidArgumentError

__all__ = ["Outputs", "QUIET", "is_quiet"]

#: The ``--quiet`` option of every command (``numstab --quiet COMMAND`` works as well).
QUIET = typer.Option(False, "--quiet", "-q", help="Print only the requested documents and errors.")

STDOUT = "-"


def is_quiet(ctx: typer.Context, flag: bool) -> bool:
    """True when ``--quiet`` was given to the command (``flag``) or to ``numstab`` itself (``ctx``)."""
    root = ctx.find_root().obj
    return bool(flag or (isinstance(root, dict) and root.get("quiet")))


@dataclass
class Outputs:
    """The output files of one command run.

    Attributes:
        quiet: print no table and no "wrote" note.
        paths: option -> destination path, or ``"-"`` for standard output.
    """

    quiet: bool = False
    paths: dict[str, Any] = field(default_factory=dict)

    def expect(self, option: str, path: pathlib.Path | str | None, *, suffixes: tuple[str, ...] = ()) -> None:
        """Check the destination of ``option`` now (None: not asked for); raise before any work.

        Raises:
            InvalidArgumentError: a path that cannot receive the file, a user's file in the way, a wrong
                suffix, two outputs to one path, or two outputs to standard output.
        """
        if path is None:
            return
        from numstab.files import check_output_file

        text = str(path)
        if text == STDOUT:
            if STDOUT in self.paths.values():
                other = next(o for o, p in self.paths.items() if p == STDOUT)
                raise InvalidArgumentError(
                    f"{option} - and {other} - would both go to standard output: send one of them to a file"
                )
            self.paths[option] = STDOUT
            return
        if suffixes and pathlib.Path(text).suffix.lower() not in suffixes:
            raise InvalidArgumentError(
                f"{option} must end in {', '.join(suffixes)}, got {text!r}: e.g. {option} out{suffixes[0]}"
            )
        target = check_output_file(option, text)
        for other, taken in self.paths.items():
            if taken != STDOUT and pathlib.Path(taken) == target:
                raise InvalidArgumentError(
                    f"{option} and {other} name the same file {text!r}: give each its own"
                )
        self.paths[option] = target

    @property
    def to_stdout(self) -> bool:
        """Whether a document goes to standard output (then nothing else may)."""
        return STDOUT in self.paths.values()

    def wants(self, option: str) -> bool:
        """Whether ``option`` was given."""
        return option in self.paths

    @property
    def show_tables(self) -> bool:
        """Whether the command should print its tables on standard output."""
        return not (self.quiet or self.to_stdout)

    def write(self, documents: dict[str, Callable[[], str | bytes]]) -> None:
        """Render every expected document, write the files as one unit, then print the standard-output one.

        Args:
            documents: option -> a function rendering its text (or bytes, for a figure); called only for
                the options given.
        """
        from numstab.files import write_files

        # render everything first: a failure there leaves nothing written
        data = {o: _as_bytes(documents[o]()) for o in self.paths}
        write_files({p: data[o] for o, p in self.paths.items() if p != STDOUT})
        for option, target in self.paths.items():
            if target == STDOUT:
                stream = typer.get_binary_stream("stdout")
                stream.write(data[option])
                stream.flush()
            else:
                self.note(f"wrote {target}")

    def table(self, renderable: Any) -> None:
        """Print a rich renderable on standard output, unless quiet or standard output carries a document."""
        if self.show_tables:
            from numstab.render.terminal import make_console

            make_console().print(renderable)

    def note(self, message: str) -> None:
        """A line for the user (not data): stdout, or stderr when stdout carries a document; none if quiet."""
        if not self.quiet:
            typer.echo(message, err=self.to_stdout)


def _as_bytes(document: str | bytes) -> bytes:
    """Text as UTF-8 ending in a newline; bytes (a figure) as they are."""
    if isinstance(document, bytes):
        return document
    return (document if document.endswith("\n") else document + "\n").encode("utf-8")
