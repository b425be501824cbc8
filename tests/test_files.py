"""Report files: atomic writes that leave nothing half-written; folders never swallow foreign files."""

from __future__ import annotations

import os
import pathlib

import pytest

from numstab import files
from numstab.errors import InvalidArgumentError, NumstabTypeError
from numstab.files import atomic_write_bytes, atomic_write_text, prepare_output_dir


def _listing(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_new_folder_is_created_with_parents(tmp_path: pathlib.Path) -> None:
    folder, replaced = prepare_output_dir(tmp_path / "a" / "b")
    assert folder == tmp_path / "a" / "b" and folder.is_dir()
    assert replaced == []


def test_empty_existing_folder_is_accepted(tmp_path: pathlib.Path) -> None:
    assert prepare_output_dir(tmp_path) == (tmp_path, [])


def test_existing_report_folder_lists_what_gets_replaced(tmp_path: pathlib.Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "figures").mkdir()
    folder, replaced = prepare_output_dir(tmp_path)
    assert replaced == ["figures/", "report.html", "report.json"]
    assert _listing(folder) == ["figures", "report.html", "report.json"]  # nothing deleted yet


def test_custom_marker(tmp_path: pathlib.Path) -> None:
    (tmp_path / "check.json").write_text("{}")
    assert prepare_output_dir(tmp_path, marker="check.json")[1] == ["check.json"]
    with pytest.raises(InvalidArgumentError, match="no report.json"):
        prepare_output_dir(tmp_path)


def test_folder_with_foreign_files_is_refused_untouched(tmp_path: pathlib.Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(InvalidArgumentError) as err:
        prepare_output_dir(tmp_path)
    message = str(err.value)
    assert repr(str(tmp_path)) in message
    assert "thesis.tex" in message and "choose another --out, or remove the folder" in message
    assert _listing(tmp_path) == ["thesis.tex"] and (tmp_path / "thesis.tex").read_text() == "precious"


def test_path_that_is_a_file_is_refused(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"is a file: choose another --out"):
        prepare_output_dir(target)


def test_folder_under_a_file_cannot_be_created(tmp_path: pathlib.Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"cannot create output folder .*f/sub.*a writable --out"):
        prepare_output_dir(tmp_path / "f" / "sub")


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(ROOT, reason="root may write into read-only folders")
def test_read_only_folder_is_refused(tmp_path: pathlib.Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InvalidArgumentError, match="is not writable"):
            prepare_output_dir(locked)
        with pytest.raises(InvalidArgumentError, match="cannot create output folder"):
            prepare_output_dir(locked / "sub")
    finally:
        locked.chmod(0o700)


def test_path_type_is_checked() -> None:
    with pytest.raises(NumstabTypeError, match="path must be a non-empty path"):
        prepare_output_dir(3)  # type: ignore[arg-type]
    with pytest.raises(NumstabTypeError, match="path must be a non-empty path"):
        atomic_write_text("", "x")


def test_atomic_write_creates_and_replaces(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "report.html"
    assert atomic_write_text(target, "één") == target
    assert target.read_bytes() == "één".encode()
    assert target.stat().st_mode & 0o777 == 0o644  # shareable, not mkstemp's 0o600
    target.chmod(0o640)
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and target.stat().st_mode & 0o777 == 0o640
    assert _listing(tmp_path) == ["report.html"]  # no temporary file left


def test_missing_folder_names_the_path(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "missing" / "report.html"
    with pytest.raises(InvalidArgumentError, match=r"cannot write '.*missing/report.html'.*writable"):
        atomic_write_text(target, "x")


def test_directory_in_the_way_is_named(tmp_path: pathlib.Path) -> None:
    (tmp_path / "report.html").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"cannot write '.*report.html': Is a directory"):
        atomic_write_text(tmp_path / "report.html", "x")
    assert _listing(tmp_path) == ["report.html"] and (tmp_path / "report.html").is_dir()


def test_failed_rename_leaves_old_file_and_no_temporary(tmp_path: pathlib.Path, monkeypatch) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def failing_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(InvalidArgumentError, match=r"cannot write '.*report.json': No space left on device"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["report.json"]


def test_failure_while_writing_leaves_nothing(tmp_path: pathlib.Path, monkeypatch) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):  # not an OSError: passed through unchanged, after cleaning up
        atomic_write_bytes(tmp_path / "figure.png", b"\x89PNG")
    assert _listing(tmp_path) == []


def test_data_types_are_checked(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NumstabTypeError, match="text must be a str, got bytes"):
        atomic_write_text(tmp_path / "a", b"x")  # type: ignore[arg-type]
    with pytest.raises(NumstabTypeError, match="data must be bytes, got str"):
        atomic_write_bytes(tmp_path / "a", "x")  # type: ignore[arg-type]
    assert _listing(tmp_path) == []
