"""Write report files so that nothing of the user's is lost and no reader ever sees half a report.

Four promises, one function or class each:

- :func:`atomic_write_bytes`: one file goes to a temporary file beside it, then :func:`os.replace` renames it
  over the destination (atomic within one file system on POSIX and Windows): the old file or the new one,
  never a mixture.
- :func:`write_files`: several files (``--json a.json --html b.html``) are all staged first; when one
  cannot be written, none is.
- :func:`check_output_file`: an existing destination is replaced only when numstab wrote it
  (:func:`written_by_numstab`) or it is empty; a user's file of the same name is refused, before any work.
- :class:`ReportFolder`: the files of a report folder (``--out DIR``: ``index.html`` and ``report.json``)
  are one unit. The folder is recognized by its ``report.json`` (schema and kind), and a commit stages the
  new files inside the folder, then, under an exclusive lock, writes a journal and renames them in. Ctrl-C
  is held back for the few renames, a process killed among them leaves the journal, and the next
  numstab run on the folder finishes the renames before anything else: readers never see a new
  ``index.html`` beside an old ``report.json``, and two runs into one folder leave one run's files.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping

from numstab.errors import InvalidArgumentError, NumstabTypeError

__all__ = [
    "GENERATOR",
    "FOLDER_KINDS",
    "ReportFolder",
    "atomic_write_text",
    "atomic_write_bytes",
    "write_files",
    "check_output_file",
    "check_path",
    "written_by_numstab",
    "report_kind",
]

PathLike = str | os.PathLike

#: The name numstab writes into every file it makes (HTML generator meta tag, figure metadata), by which
#: :func:`written_by_numstab` knows its own files.
GENERATOR = "numstab"
#: Kinds of ``report.json`` that mark a report folder (``numstab tour``, ``numstab lab training --out``).
FOLDER_KINDS: tuple[str, ...] = ("tour", "lab-training")
#: The file that marks a report folder.
MARKER = "report.json"
#: Entries of a report folder that numstab uses internally start with this (stage, journal, temporaries).
_INTERNAL = ".numstab-"
_JOURNAL = ".numstab-commit.json"
_STAGE = ".numstab-stage-"
#: How much of a file :func:`written_by_numstab` reads (head and tail) looking for the generator tag.
_PEEK = 1 << 16
#: A report.json larger than this is not read to recognize a folder (numstab's are a few MB at most).
_MARKER_MAX = 256 << 20
#: Signals held back while a commit renames its files (Ctrl-C, kill, a closed terminal).
_HELD = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def check_path(name: str, path: object) -> pathlib.Path:
    """Return ``path`` as a :class:`pathlib.Path` (``~`` expanded); a numstab error naming ``name`` if it is
    not a non-empty str or path.

    Examples:
        >>> check_path("--out", "reports").name
        'reports'
    """
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise NumstabTypeError(f"{name} must be a non-empty path (str or pathlib.Path), got {path!r}")
    return pathlib.Path(path).expanduser()


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


# ---------------------------------------------------------------------------------------------
# Recognizing numstab's own files.


def report_kind(path: PathLike) -> str | None:
    """The ``kind`` of a JSON report numstab wrote at ``path``; None for anything else (or unreadable).

    A numstab report is a JSON object whose ``schema`` is ``"numstab.report/N"`` (any version).

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = pathlib.Path(tmp) / "r.json"
        ...     _ = path.write_text('{"schema": "numstab.report/1", "kind": "tour"}')
        ...     report_kind(path), report_kind(pathlib.Path(tmp) / "missing.json")
        ('tour', None)
    """
    try:
        with open(path, "rb") as stream:
            text = stream.read(_MARKER_MAX + 1)
        document = json.loads(text) if len(text) <= _MARKER_MAX else None
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not str(document.get("schema", "")).startswith("numstab.report/"):
        return None
    kind = document.get("kind")
    return kind if isinstance(kind, str) else None


def _tags() -> tuple[bytes, ...]:
    name = GENERATOR.encode()
    return (
        b'<meta name="generator" content="' + name,  # HTML
        b"Software\x00" + name,  # PNG tEXt chunk
        b"/Creator (" + name,  # PDF info dictionary
        b"<dc:title>" + name,  # SVG metadata (the creator agent)
    )


def written_by_numstab(path: PathLike) -> bool:
    """Whether the file at ``path`` was written by numstab: a JSON report, or an HTML page or figure
    carrying numstab's generator tag.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     mine, theirs = pathlib.Path(tmp) / "a.html", pathlib.Path(tmp) / "b.html"
        ...     _ = mine.write_text('<meta name="generator" content="numstab 0.1.0">')
        ...     _ = theirs.write_text("<p>my notes</p>")
        ...     written_by_numstab(mine), written_by_numstab(theirs)
        (True, False)
    """
    path = pathlib.Path(path)
    if path.suffix.lower() == ".json":
        return report_kind(path) is not None
    try:
        with open(path, "rb") as stream:
            head = stream.read(_PEEK)
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(len(head), size - _PEEK))
            tail = stream.read(_PEEK)
    except OSError:
        return False
    return any(tag in head or tag in tail for tag in _tags())


# ---------------------------------------------------------------------------------------------
# Single files and sets of files.


def check_output_file(option: str, path: PathLike) -> pathlib.Path:
    """Check, before any work, that ``path`` can receive an output file; return it (symlinks resolved).

    Its folder must exist (numstab creates no folder silently) and be writable; ``path`` must not be a
    folder or a special file, and an existing file there must be one numstab wrote, or empty: a user's
    file is never replaced.

    Args:
        option: how the user named the path (``"--json"``, ``"path"``), for the messages.
        path: the destination file.

    Raises:
        InvalidArgumentError: the message names ``option``, the path and what to do.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     check_output_file("--json", pathlib.Path(tmp) / "r.json").name
        'r.json'
    """
    target = check_path(option, path)
    if target.is_symlink():
        target = pathlib.Path(os.path.realpath(target))
    folder = target.parent
    where = f"{option} {str(target)!r}"
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise InvalidArgumentError(
            f"cannot write {where}: its folder {str(folder)!r} {what}: create the folder first, or choose "
            "another path"
        )
    if target.is_dir():
        raise InvalidArgumentError(f"{where} is a folder: name a file in it, e.g. {str(target / 'report')!r}")
    if target.exists() and not target.is_file():
        raise InvalidArgumentError(
            f"{where} is not a regular file: name a file (use '-' for standard output)"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgumentError(
            f"cannot write {where}: its folder {str(folder)!r} is not writable: choose another path"
        )
    if target.exists() and target.stat().st_size > 0 and not written_by_numstab(target):
        raise InvalidArgumentError(
            f"{where} exists and was not written by numstab: choose another path, or remove the file"
        )
    return target


def _mode_for(target: pathlib.Path) -> int:
    # mkstemp creates 0o600; a report is meant to be shared, so keep the replaced file's mode or use 0o644.
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        return 0o644


def _stage(target: pathlib.Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``target``; return its path."""
    try:
        # a hidden name; the journal's keeps its .numstab- prefix, so a recovery knows it as internal
        prefix = f"{target.name}." if target.name.startswith(_INTERNAL) else f".{target.name}."
        handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise InvalidArgumentError(
            f"cannot write {str(target)!r}: {_reason(err)}; choose a writable output path"
        ) from err
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _mode_for(target))
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(err, OSError):
            raise InvalidArgumentError(
                f"cannot write {str(target)!r}: {_reason(err)}; choose a writable output path"
            ) from err
        raise
    return temporary


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT), SIGTERM and SIGHUP in this block; they are delivered right after it.

    Where signals cannot be blocked (Windows, or not the main thread) the block runs as it is; the
    callers finish or undo their work in ``except BaseException`` as well.
    """
    if not (hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def write_files(files: Mapping[pathlib.Path, bytes]) -> list[pathlib.Path]:
    """Write several files as one unit: stage every one beside its destination, then rename them all.

    When staging any of them fails (a missing folder, a full disk, Ctrl-C) every temporary file is removed
    and no destination changes. The renames run with Ctrl-C held back (:func:`_signals_held`).

    Args:
        files: destination -> content; each destination's folder must exist.

    Returns:
        The destinations, in order.

    Raises:
        InvalidArgumentError: a file could not be written (the message names it); none was.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     a, b = pathlib.Path(tmp) / "a.txt", pathlib.Path(tmp) / "b.txt"
        ...     [p.name for p in write_files({a: b"1", b: b"2"})], b.read_bytes()
        (['a.txt', 'b.txt'], b'2')
    """
    staged: list[tuple[str, pathlib.Path]] = []
    current = None
    try:
        for target, data in files.items():
            if not isinstance(data, (bytes, bytearray)):
                raise NumstabTypeError(f"data must be bytes, got {type(data).__name__}")
            staged.append((_stage(pathlib.Path(target), bytes(data)), pathlib.Path(target)))
        with _signals_held():
            for temporary, current in staged:
                os.replace(temporary, current)
    except BaseException as err:
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if isinstance(err, OSError):
            message = f"cannot write {str(current)!r}: {_reason(err)}; choose a writable output path"
            raise InvalidArgumentError(message) from err
        raise
    return [target for _, target in staged]


def atomic_write_bytes(path: PathLike, data: bytes) -> pathlib.Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then :func:`os.replace`.

    On any failure the temporary file is removed and ``path`` is left exactly as it was (absent, or
    holding its previous content). A file that is replaced keeps its permission bits; a new one gets 0o644.

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
    target = check_path("path", path)
    if not isinstance(data, (bytes, bytearray)):
        raise NumstabTypeError(f"data must be bytes, got {type(data).__name__}")
    return write_files({target: data})[0]


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


# ---------------------------------------------------------------------------------------------
# Report folders.


@contextlib.contextmanager
def _locked(folder: pathlib.Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on the folder itself, released when the block ends.

    Without fcntl (Windows) there is no lock; the journal still keeps each run's files together.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _user_entries(folder: pathlib.Path) -> list[str]:
    entries = (e for e in folder.iterdir() if not e.name.startswith(_INTERNAL))
    return sorted(e.name + ("/" if e.is_dir() else "") for e in entries)


class ReportFolder:
    """A folder of report files (``--out DIR``) that numstab writes, and replaces, as one unit.

    Create it before the work (it checks the folder then, and creates nothing), and :meth:`commit` the
    files when they are ready. A folder is numstab's when it is missing, empty, or holds a ``report.json``
    numstab wrote whose kind is one of :data:`FOLDER_KINDS`; any other folder is refused, so a mistyped
    ``--out`` never mixes a report into someone's files. Only the report folder itself is ever created:
    its parent must exist.

    Commit protocol (see the module docstring): under an exclusive lock on the folder, finish any commit
    a killed process left (its journal), check the folder again, stage the new files in
    ``.numstab-stage-*``, write the journal ``.numstab-commit.json``, rename the files in with Ctrl-C
    held back, remove the journal and the stage.

    Args:
        path: the folder.
        kind: the kind of report written (one of :data:`FOLDER_KINDS`).

    Raises:
        InvalidArgumentError: the folder is a file, holds someone else's files, cannot be created, or is
            not writable.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folder = ReportFolder(pathlib.Path(tmp) / "r", kind="tour")
        ...     marker = b'{"schema": "numstab.report/1", "kind": "tour"}'
        ...     first = folder.commit({"index.html": b"<p>1</p>", "report.json": marker})
        ...     second = ReportFolder(pathlib.Path(tmp) / "r", kind="tour").commit(
        ...         {"index.html": b"<p>2</p>", "report.json": marker})
        >>> first, second
        ([], ['index.html', 'report.json'])
    """

    def __init__(self, path: PathLike, *, kind: str) -> None:
        if kind not in FOLDER_KINDS:
            raise InvalidArgumentError(f"kind must be one of {', '.join(FOLDER_KINDS)}, got {kind!r}")
        self.path = check_path("--out", path)
        self.kind = kind
        self._check()

    def __repr__(self) -> str:
        return f"ReportFolder({str(self.path)!r}, kind={self.kind!r})"

    def _where(self) -> str:
        return f"output folder {str(self.path)!r}"

    def _check(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise InvalidArgumentError(f"{self._where()} is a file: choose another --out, or remove the file")
        if not self.path.exists():
            parent = self.path.parent
            if not parent.is_dir():
                raise InvalidArgumentError(
                    f"cannot create {self._where()}: its parent {str(parent)!r} does not exist; create it "
                    "first, or choose another --out"
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InvalidArgumentError(
                    f"cannot create {self._where()}: {str(parent)!r} is not writable; choose a writable --out"
                )
            return
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise InvalidArgumentError(f"{self._where()} is not writable: choose a writable --out")
        with self._guard("read"), _locked(self.path):
            self._recover()
            self._check_owner()

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            raise InvalidArgumentError(
                f"cannot {action} {self._where()}: {_reason(err)}; choose another --out"
            ) from err

    def _check_owner(self) -> None:
        entries = _user_entries(self.path)
        if not entries or report_kind(self.path / MARKER) in FOLDER_KINDS:
            return
        why = f"its {MARKER} was not written by numstab" if MARKER in entries else f"no {MARKER}"
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise InvalidArgumentError(
            f"{self._where()} exists and holds files that are not a numstab report ({why}; found {shown}): "
            "choose another --out, or remove the folder"
        )

    def _recover(self) -> None:
        """Finish a commit a killed process left half-done; remove abandoned stages (under the lock)."""
        journal = self.path / _JOURNAL
        if journal.exists():
            try:
                plan = json.loads(journal.read_text(encoding="utf-8"))
                stage, names = self.path / plan["stage"], list(plan["files"])
            except (ValueError, KeyError, TypeError):  # written atomically, so only by hand
                stage, names = None, []
            if stage is not None:
                _move_in(stage, self.path, names)
            journal.unlink()
        for entry in self.path.iterdir():
            if entry.name.startswith(_INTERNAL):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()

    def commit(self, files: Mapping[str, bytes]) -> list[str]:
        """Write ``files`` (name -> bytes) into the folder as one unit; return the names actually replaced.

        Raises:
            InvalidArgumentError: the folder changed hands since it was checked (someone else's files
                appeared), or cannot be written; nothing was changed then.
        """
        for name in files:
            if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or os.sep in name \
                    or name.startswith(_INTERNAL):
                raise InvalidArgumentError(f"file names in a report folder must be plain names, got {name!r}")
        self._check()
        created = not self.path.exists()
        with self._guard("write into"):
            self.path.mkdir(exist_ok=True)
            try:
                with _locked(self.path):
                    return self._commit_locked(files)
            except BaseException:
                if created:
                    with contextlib.suppress(OSError):
                        self.path.rmdir()  # only if still empty: a concurrent run may have committed
                raise

    def _commit_locked(self, files: Mapping[str, bytes]) -> list[str]:
        self._recover()
        self._check_owner()
        stage = pathlib.Path(tempfile.mkdtemp(prefix=_STAGE, dir=self.path))
        try:
            for name, data in files.items():
                os.replace(_stage(stage / name, bytes(data)), stage / name)
                os.chmod(stage / name, _mode_for(self.path / name) if (self.path / name).exists() else 0o644)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        replaced = [name for name in files if (self.path / name).exists()]
        with _signals_held():
            plan = json.dumps({"stage": stage.name, "files": list(files)}).encode()
            journal = _stage(self.path / _JOURNAL, plan)
            os.replace(journal, self.path / _JOURNAL)  # the commit point
            try:
                _move_in(stage, self.path, list(files))
            finally:  # interrupted half-way (no signal mask here): finish, do not undo
                _move_in(stage, self.path, list(files))
                (self.path / _JOURNAL).unlink()
                shutil.rmtree(stage, ignore_errors=True)
        return replaced


def _move_in(stage: pathlib.Path, folder: pathlib.Path, names: list[str]) -> None:
    """Rename every staged file still in ``stage`` over its destination in ``folder`` (idempotent)."""
    for name in names:
        if (stage / name).exists():
            os.replace(stage / name, folder / name)
