"""`numstab tour`: every step renders a table, an HTML section and its JSON; folders are never clobbered."""

from __future__ import annotations

import pytest

from numstab import jsonio
from numstab import tour as tour_module
from numstab.cli import main
from numstab.errors import InvalidArgumentError
from numstab.render.terminal import make_console

LAB_STEPS = tour_module.CHAPTER_STEPS


def test_quick_tour_writes_index_and_json_from_the_cli(tmp_path, capsys):
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exit_info:
        main(["tour", "--out", str(out), "--quick"])
    stdout, stderr = capsys.readouterr()
    assert exit_info.value.code == 0, stderr
    html = (out / "index.html").read_text()
    data = jsonio.load(out / "report.json", kind="tour")
    assert data["quick"] is True
    for step in tour_module.TOUR_STEPS:  # every step, the training lab's included
        assert f'id="{step.name}"' in html
        assert step.name in data["steps"]
    for name in LAB_STEPS:  # the chapter's steps print their table under their title
        assert name in data["steps"]
        assert next(s.title for s in tour_module.TOUR_STEPS if s.name == name) in stdout
    assert html.count("<img") >= 7
    assert str(out) in stdout.splitlines()[-1]  # the folder is named at the end
    assert data["steps"]["symmetry"]["runs"][0]["difference"][-1] == 0.0


@pytest.fixture
def one_step(monkeypatch):
    """The tour reduced to its Taylor step, to test the folder handling quickly."""
    monkeypatch.setattr(tour_module, "TOUR_STEPS", [s for s in tour_module.TOUR_STEPS if s.name == "taylor"])


def test_a_second_run_says_what_it_replaced(tmp_path, one_step):
    console = make_console(width=100)
    first = tour_module.run_tour(tmp_path / "r", quick=True, console=console)
    assert first.replaced == []
    second = tour_module.run_tour(tmp_path / "r", quick=True, console=console)
    assert second.replaced == ["index.html", "report.json"]
    assert second.index.exists() and second.json.exists()


def test_a_folder_of_foreign_files_is_refused_untouched(tmp_path, one_step):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(InvalidArgumentError, match="choose another --out"):
        tour_module.run_tour(tmp_path, quick=True, console=make_console())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_step_names_are_anchors():
    with pytest.raises(InvalidArgumentError, match=r"\[a-z0-9-\]\+"):
        tour_module.TourStep("Bad Name", "t", lambda quick: None)


def test_cli_refuses_a_foreign_folder_in_one_line(tmp_path, capsys, one_step):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["tour", "--out", str(tmp_path), "--quick"])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "choose another --out" in err and str(tmp_path) in err


def test_cli_says_what_it_replaced(tmp_path, capsys, one_step):
    for _ in range(2):
        with pytest.raises(SystemExit):
            main(["tour", "--out", str(tmp_path / "r"), "--quick"])
    out, _ = capsys.readouterr()
    assert "Replaced the earlier report" in out and "index.html, report.json" in out


def test_an_unknown_language_exits_2_with_the_list_before_any_work(tmp_path, capsys):
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exit_info:
        main(["tour", "--out", str(out), "--quick", "--lang", "fr"])
    assert exit_info.value.code == 2 and not out.exists()
    assert "unknown lang 'fr': use one of en, zh" in capsys.readouterr().err
