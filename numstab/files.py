"""Write report files so that a failure never leaves a half-written file or a half-replaced folder.

Every file goes to a temporary file in the destination folder first and is then renamed over the
destination with :func:`os.replace`, which POSIX and Windows both make atomic within one file system:
a reader sees the old file or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

from numstab.errors import InvalidArgumentError, NumstabTypeError

__all__ = ["prepare_output_dir", "atomic_write_text", "atomic_write_bytes"]

PathLike = str | os.PathLike


def _as_path(name: str, path: object) -> pathlib.Path:
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise NumstabTypeError(f"{name} must be a non-empty path (str or pathlib.Path), got {path!r}")
    return pathlib.Path(path).expanduser()


def prepare_output_dir(path: PathLike, *, marker: str = "report.json") -> tuple[pathlib.Path, list[str]]:
    """Create the report folder ``path``, or accept an existing numstab report folder.

    A folder that does not exist is created (with its parents). An empty folder is used as it is.
    A folder holding ``marker`` is a report numstab wrote before: the names of the entries in it are
    returned, so the caller can tell the user what gets replaced. Any other non-empty folder holds
    someone else's files and is refused, so a mistyped ``--out`` never mixes a report into them.

    Args:
        path: the folder to write the report into.
        marker: the file whose presence marks a folder as a numstab report.

    Returns:
        The folder as a :class:`pathlib.Path` and the sorted names of the entries already in it that the
        new report may replace (empty for a new or empty folder); sub-folders end with ``/``.

    Raises:
        InvalidArgumentError: ``path`` is a file, holds foreign files, or cannot be created or written.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folder, replaced = prepare_output_dir(pathlib.Path(tmp) / "report")
        ...     _ = (folder / "report.json").write_text("{}")
        ...     prepare_output_dir(folder)[1]
        ['report.json']
    """
    folder = _as_path("path", path)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(
            f"output folder {str(folder)!r} is a file: choose another --out, or remove the file"
        )
    entries = _existing_entries(folder)
    if entries and marker not in entries:
        raise InvalidArgumentError(
            f"output folder {str(folder)!r} exists and holds files that are not a numstab report "
            f"(no {marker}; found {', '.join(entries[:3])}{', ...' if len(entries) > 3 else ''}): "
            "choose another --out, or remove the folder"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidArgumentError(
            f"cannot create output folder {str(folder)!r}: {err.strerror or err}; choose a writable --out"
        ) from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"output folder {str(folder)!r} is not writable: choose a writable --out")
    return folder, entries


def _existing_entries(folder: pathlib.Path) -> list[str]:
    if not folder.is_dir():
        return []
    try:
        return sorted(child.name + ("/" if child.is_dir() else "") for child in folder.iterdir())
    except OSError as err:
        raise InvalidArgumentError(
            f"cannot read output folder {str(folder)!r}: {err.strerror or err}; choose another --out"
        ) from err


def atomic_write_bytes(path: PathLike, data: bytes) -> pathlib.Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then :func:`os.replace`.

    On any failure the temporary file is removed and ``path`` is left exactly as it was (absent, or
    holding its previous content). A file that is replaced keeps its permission bits.

    Args:
        path: the destination file; its folder must exist.
        data: the bytes to write.

    Raises:
        InvalidArgumentError: the folder is missing or not writable (the message names the path).

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     atomic_write_bytes(pathlib.Path(tmp) / "a.bin", b"abc").read_bytes()
        b'abc'
    """
    target = _as_path("path", path)
    if not isinstance(data, (bytes, bytearray)):
        raise NumstabTypeError(f"data must be bytes, got {type(data).__name__}")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise InvalidArgumentError(
            f"cannot write {str(target)!r}: {err.strerror or err}; choose a writable output path"
        ) from err
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _mode_for(target))
        os.replace(temporary, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(err, OSError):
            raise InvalidArgumentError(
                f"cannot write {str(target)!r}: {err.strerror or err}; choose a writable output path"
            ) from err
        raise
    return target


def _mode_for(target: pathlib.Path) -> int:
    # mkstemp creates 0o600; a report is meant to be shared, so use the replaced file's mode or 0o644.
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        return 0o644


def atomic_write_text(path: PathLike, text: str) -> pathlib.Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`.

    Args:
        path: the destination file; its folder must exist.
        text: the text to write.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     atomic_write_text(pathlib.Path(tmp) / "a.txt", "σ_w²").read_text(encoding="utf-8")
        'σ_w²'
    """
    if not isinstance(text, str):
        raise NumstabTypeError(f"text must be a str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode("utf-8"))
