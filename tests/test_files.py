"""Report files: atomic writes that leave nothing half-written; a user's file or folder is never replaced."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from numstab import files
from numstab.errors import InvalidArgumentError, NumstabTypeError
from numstab.files import (
    ReportFolder,
    atomic_write_bytes,
    atomic_write_text,
    check_output_file,
    write_files,
    written_by_numstab,
)


def _listing(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


MARKER = b'{"schema": "numstab.report/1", "kind": "tour"}\n'


def _report(token: str) -> dict[str, bytes]:
    marker = MARKER[:-2] + f', "t": "{token}"}}'.encode()
    return {"index.html": f"<p>{token}</p>".encode(), "report.json": marker}


def test_new_folder_is_created_at_commit_only(tmp_path: pathlib.Path) -> None:
    folder = ReportFolder(tmp_path / "r", kind="tour")
    assert not (tmp_path / "r").exists()  # checked, not created: an interrupted run leaves nothing
    assert folder.commit(_report("1")) == []
    assert _listing(tmp_path / "r") == ["index.html", "report.json"]
    assert (tmp_path / "r" / "index.html").stat().st_mode & 0o777 == 0o644


def test_parent_folder_is_never_created(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"its parent '.*a' does not exist; create it first"):
        ReportFolder(tmp_path / "a" / "b", kind="tour")
    assert _listing(tmp_path) == []


def test_empty_existing_folder_is_accepted(tmp_path: pathlib.Path) -> None:
    assert ReportFolder(tmp_path, kind="lab-training").commit(_report("1")) == []


def test_only_the_files_actually_replaced_are_listed(tmp_path: pathlib.Path) -> None:
    ReportFolder(tmp_path, kind="tour").commit(_report("1"))
    (tmp_path / "data.csv").write_text("mine")
    assert ReportFolder(tmp_path, kind="tour").commit(_report("2")) == ["index.html", "report.json"]
    assert (tmp_path / "data.csv").read_text() == "mine" and b"2" in (tmp_path / "index.html").read_bytes()


@pytest.mark.parametrize(
    "marker",
    [b"{}", b'{"schema": "numstab.report/1", "kind": "check"}', b"not json", b"[" * 100000],
    ids=["empty-object", "a-check-report", "text", "deeply-nested"],
)
def test_a_report_json_numstab_did_not_write_marks_no_report_folder(tmp_path: pathlib.Path, marker) -> None:
    (tmp_path / "report.json").write_bytes(marker)
    (tmp_path / "index.html").write_text("my page")
    (tmp_path / "data.csv").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="its report.json was not written by numstab") as err:
        ReportFolder(tmp_path, kind="tour")
    assert "choose another --out, or remove the folder" in str(err.value)
    assert (tmp_path / "report.json").read_bytes() == marker
    assert (tmp_path / "index.html").read_text() == "my page"
    assert _listing(tmp_path) == ["data.csv", "index.html", "report.json"]


def test_folder_with_foreign_files_is_refused_untouched(tmp_path: pathlib.Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(InvalidArgumentError) as err:
        ReportFolder(tmp_path, kind="tour")
    message = str(err.value)
    assert repr(str(tmp_path)) in message
    assert "thesis.tex" in message and "choose another --out, or remove the folder" in message
    assert _listing(tmp_path) == ["thesis.tex"] and (tmp_path / "thesis.tex").read_text() == "precious"


def test_files_appearing_after_the_check_are_still_protected(tmp_path: pathlib.Path) -> None:
    folder = ReportFolder(tmp_path, kind="tour")  # empty when checked
    (tmp_path / "notes.txt").write_text("written while the tour ran")
    with pytest.raises(InvalidArgumentError, match="notes.txt"):
        folder.commit(_report("1"))
    assert _listing(tmp_path) == ["notes.txt"]


def test_path_that_is_a_file_is_refused(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"is a file: choose another --out"):
        ReportFolder(target, kind="tour")
    with pytest.raises(InvalidArgumentError, match=r"parent '.*out' does not exist"):
        ReportFolder(target / "sub", kind="tour")


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(ROOT, reason="root may write into read-only folders")
def test_read_only_folder_is_refused(tmp_path: pathlib.Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InvalidArgumentError, match="is not writable"):
            ReportFolder(locked, kind="tour")
        with pytest.raises(InvalidArgumentError, match="is not writable"):
            ReportFolder(locked / "sub", kind="tour")
        with pytest.raises(InvalidArgumentError, match="is not writable"):
            check_output_file("--json", locked / "r.json")
    finally:
        locked.chmod(0o700)


def test_path_type_and_names_are_checked(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NumstabTypeError, match="--out must be a non-empty path"):
        ReportFolder(3, kind="tour")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="kind must be one of tour, lab-training"):
        ReportFolder(tmp_path, kind="check")
    with pytest.raises(InvalidArgumentError, match="plain names"):
        ReportFolder(tmp_path, kind="tour").commit({"../escape.html": b"x"})
    with pytest.raises(NumstabTypeError, match="path must be a non-empty path"):
        atomic_write_text("", "x")
    assert _listing(tmp_path) == []


def test_interrupted_staging_leaves_the_earlier_report(tmp_path: pathlib.Path, monkeypatch) -> None:
    ReportFolder(tmp_path, kind="tour").commit(_report("old"))
    before = {name: (tmp_path / name).read_bytes() for name in _listing(tmp_path)}

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ReportFolder(tmp_path, kind="tour").commit(_report("new"))
    assert {name: (tmp_path / name).read_bytes() for name in _listing(tmp_path)} == before


def test_interrupted_new_folder_is_removed(tmp_path: pathlib.Path, monkeypatch) -> None:
    monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        ReportFolder(tmp_path / "r", kind="tour").commit(_report("new"))
    assert _listing(tmp_path) == []


def test_interrupted_renames_are_finished_not_mixed(tmp_path: pathlib.Path, monkeypatch) -> None:
    ReportFolder(tmp_path, kind="tour").commit(_report("old"))
    real, calls = os.replace, []

    def interrupt_second_rename_in(src, dst) -> None:  # noqa: ANN001
        calls.append(dst)
        if str(dst).endswith("report.json") and sum(str(c).endswith("report.json") for c in calls) == 2:
            raise KeyboardInterrupt  # after index.html went in, before report.json did
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", interrupt_second_rename_in)
    with pytest.raises(KeyboardInterrupt):
        ReportFolder(tmp_path, kind="tour").commit(_report("new"))
    assert _tokens(tmp_path) == ("new", "new")
    assert _listing(tmp_path) == ["index.html", "report.json"]


def _tokens(folder: pathlib.Path) -> tuple[str, str]:
    """The run each of the two files comes from."""
    import json

    page = (folder / "index.html").read_text()
    return page[len("<p>") : -len("</p>")], json.loads((folder / "report.json").read_text())["t"]


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
# -- the folder as one unit, across processes: killed at every step, Ctrl-C, two runs racing ---------

_CHILD = """
import os, signal, sys
from numstab import files

folder, token, kill_at, loops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
real, count = os.replace, [0]

def replace(src, dst):
    count[0] += 1
    if count[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup of any kind, like a power cut
    real(src, dst)

os.replace = replace
marker = '{"schema": "numstab.report/1", "kind": "tour", "t": "%s"}'
for i in range(loops):
    t = token if loops == 1 else f"{token}{i}"
    files.ReportFolder(folder, kind="tour").commit(
        {"index.html": f"<p>{t}</p>".encode(), "report.json": (marker % t).encode()}
    )
"""


def _child(folder: pathlib.Path, token: str, *, kill_at: int = 0, loops: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(folder), token, str(kill_at), str(loops)])


# os.replace calls in one commit: stage index.html, stage report.json, the journal (the commit point),
# then index.html and report.json into the folder.
_COMMIT_POINT = 3


@pytest.mark.parametrize("kill_at", range(1, 6))
def test_killed_at_any_step_the_folder_is_one_run_or_the_other(tmp_path: pathlib.Path, kill_at: int) -> None:
    ReportFolder(tmp_path, kind="tour").commit(_report("old"))
    assert _child(tmp_path, "new", kill_at=kill_at).wait(timeout=60) == -signal.SIGKILL
    ReportFolder(tmp_path, kind="tour")  # the next run (any numstab run on the folder) recovers first
    assert _tokens(tmp_path) == (("new", "new") if kill_at > _COMMIT_POINT else ("old", "old"))
    assert _listing(tmp_path) == ["index.html", "report.json"]  # no stage, journal or temporary left


def test_a_recovery_killed_half_way_is_finished_by_the_next(tmp_path: pathlib.Path) -> None:
    ReportFolder(tmp_path, kind="tour").commit(_report("old"))
    assert _child(tmp_path, "new", kill_at=_COMMIT_POINT + 1).wait(timeout=60) == -signal.SIGKILL
    # this run recovers (index.html goes in, killed there), then would commit its own: killed first
    assert _child(tmp_path, "third", kill_at=1).wait(timeout=60) == -signal.SIGKILL
    ReportFolder(tmp_path, kind="tour")
    assert _tokens(tmp_path) == ("new", "new")


@pytest.mark.parametrize("delay", [0.25, 0.35, 0.45, 0.55, 0.65])
def test_ctrl_c_at_any_moment_leaves_one_run(tmp_path: pathlib.Path, delay: float) -> None:
    ReportFolder(tmp_path, kind="tour").commit(_report("old"))
    child = _child(tmp_path, "run", loops=100000)
    time.sleep(delay)
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) != 0  # KeyboardInterrupt
    # Ctrl-C is held back while files are renamed: the folder is consistent even before any recovery
    assert _tokens(tmp_path)[0] == _tokens(tmp_path)[1]
    ReportFolder(tmp_path, kind="tour")
    assert _listing(tmp_path) == ["index.html", "report.json"]


def test_two_runs_racing_into_one_folder_never_mix(tmp_path: pathlib.Path) -> None:
    runs = [_child(tmp_path, token, loops=40) for token in ("a", "b")]
    seen = set()
    while any(run.poll() is None for run in runs):
        with files._locked(tmp_path):  # a reader that takes the lock sees one commit or the next
            if (tmp_path / "report.json").exists():
                first, second = _tokens(tmp_path)
                assert first == second
                seen.add(first[0])
    assert [run.wait(timeout=60) for run in runs] == [0, 0]
    assert _tokens(tmp_path)[0] == _tokens(tmp_path)[1] and _tokens(tmp_path)[0] in ("a39", "b39")
    assert _listing(tmp_path) == ["index.html", "report.json"]
    assert seen  # the reader saw commits while both ran


def test_check_output_file_protects_the_users_files(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "data"}')
    with pytest.raises(InvalidArgumentError, match="exists and was not written by numstab"):
        check_output_file("--json", mine)
    (tmp_path / "empty.json").write_text("")
    assert check_output_file("--json", tmp_path / "empty.json") == tmp_path / "empty.json"
    (tmp_path / "ours.json").write_text('{"schema": "numstab.report/1", "kind": "check"}')
    assert check_output_file("--json", tmp_path / "ours.json") == tmp_path / "ours.json"
    with pytest.raises(InvalidArgumentError, match=r"its folder '.*missing' does not exist"):
        check_output_file("--plot", tmp_path / "missing" / "p.png")
    with pytest.raises(InvalidArgumentError, match="is a folder"):
        check_output_file("--html", tmp_path)
    assert not (tmp_path / "missing").exists() and mine.read_text() == '{"my": "data"}'


def test_numstab_figures_and_pages_are_recognized(tmp_path: pathlib.Path) -> None:
    from numstab.render.html import HtmlPage
    from numstab.render.style import figure, save_figure

    for fmt in ("png", "svg", "pdf"):
        fig, ax = figure()
        ax.plot([1, 2])
        with open(tmp_path / f"f.{fmt}", "wb") as stream:
            save_figure(fig, stream, fmt=fmt)
        assert written_by_numstab(tmp_path / f"f.{fmt}"), fmt
    HtmlPage("r").write(tmp_path / "r.html")
    assert written_by_numstab(tmp_path / "r.html")
    (tmp_path / "other.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1000))
    assert not written_by_numstab(tmp_path / "other.png")


def test_write_files_writes_all_or_none(tmp_path: pathlib.Path) -> None:
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(InvalidArgumentError, match="missing"):
        write_files({tmp_path / "a.json": b"new", tmp_path / "missing" / "b.html": b"new"})
    assert _listing(tmp_path) == ["a.json"] and (tmp_path / "a.json").read_text() == "old"
