"""The command line as people expect it: --version, -h, --quiet, --json/--html PATH or '-', --fail-on,
outputs checked before any work and written all or none; results that print as their table."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

from numstab import files, jsonio
from numstab.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_version(capsys) -> None:
    from numstab import __version__

    assert _run(capsys, "--version") == (0, f"numstab {__version__}\n", "")


@pytest.mark.parametrize("argv", [["-h"], ["lab", "-h"], ["theory", "-h"], ["lab", "taylor", "-h"]])
def test_dash_h_is_help_everywhere(capsys, argv) -> None:
    code, out, _ = _run(capsys, *argv)
    assert code == 0 and "Usage: numstab" in out


@pytest.mark.parametrize(
    "argv", [["theory", "relu", "-q"], ["--quiet", "theory", "relu"], ["lab", "taylor", "-q"]]
)
def test_quiet_prints_nothing_but_what_was_asked(capsys, argv) -> None:
    assert _run(capsys, *argv) == (0, "", "")


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["theory", "tanh", "--json", "-"], "theory"),
        (["-q", "theory", "tanh", "--json", "-"], "theory"),
        (["lab", "taylor", "--names", "relu,tanh", "--json", "-"], "taylor"),
        (["lab", "symmetry", "--steps", "3", "--json", "-"], "symmetry"),
    ],
)
def test_json_dash_is_the_enveloped_document_alone_on_stdout(capsys, argv, kind) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 0 and err == ""
    document = json.loads(out)
    assert document["schema"] == "numstab.report/1" and document["kind"] == kind
    assert jsonio.loads(out, kind=kind)


def test_html_dash_is_a_page_on_stdout(capsys) -> None:
    code, out, _ = _run(capsys, "lab", "taylor", "--names", "relu", "--html", "-")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    assert '<meta name="generator" content="numstab' in out


def test_json_path_writes_the_file_and_says_so(capsys, tmp_path) -> None:
    code, out, _ = _run(capsys, "lab", "taylor", "--names", "relu", "--json", str(tmp_path / "t.json"))
    assert code == 0 and f"wrote {tmp_path / 't.json'}" in out
    assert jsonio.load(tmp_path / "t.json", kind="taylor")["checks"]


def test_theory_plot_is_a_tagged_0644_file_it_may_replace(capsys, tmp_path) -> None:
    plot = tmp_path / "phase.png"
    for _ in range(2):  # the second run replaces the file the first wrote
        code, _, err = _run(capsys, "theory", "relu", "--grid", "4", "--plot", str(plot))
        assert code == 0, err
    assert plot.stat().st_mode & 0o777 == 0o644 and files.written_by_numstab(plot)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phase.png"]


def test_four_significant_digits_where_a_value_is_copied(capsys) -> None:
    code, out, _ = _run(capsys, "theory", "tanh", "--bias-std", "0.2236")
    assert code == 0
    assert "critical weight_std   1.327" in out and "bias_std = 0.2236" in out  # Poole et al. 2016: 1.327


@pytest.mark.parametrize(("target", "fail_on", "code"), [
    ("sigmoid_mlp", "error", 1),     # vanishing: an error
    ("sigmoid_mlp", None, 0),        # without --fail-on the exit status is 0 whatever the verdict
    ("lstm", "warning", 0),          # healthy
])
def test_fail_on(capsys, target, fail_on, code) -> None:
    argv = ["check", target, "-q"] + (["--fail-on", fail_on] if fail_on else [])
    assert _run(capsys, *argv) == (code, "", "")


def test_outputs_are_checked_before_the_users_code_runs(capsys, tmp_path, monkeypatch) -> None:
    from numstab.probe import target

    monkeypatch.setattr(target, "load_target", lambda *a, **k: pytest.fail("loaded the model first"))
    (tmp_path / "mine.html").write_text("<p>my page</p>")
    code, _, err = _run(capsys, "check", "sigmoid_mlp", "--json", str(tmp_path / "r.json"),
                        "--html", str(tmp_path / "mine.html"))
    assert code == 2 and "--html" in err and "not written by numstab" in err
    code, _, err = _run(capsys, "check", "sigmoid_mlp", "--fix", "kaiming")
    assert code == 2 and "--fix" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.html"]


def test_when_one_output_fails_none_is_written(capsys, tmp_path, monkeypatch) -> None:
    real = files._stage

    def full_disk_for_figures(target: pathlib.Path, data: bytes) -> str:
        if target.suffix == ".png":
            raise files.InvalidArgumentError(f"cannot write {str(target)!r}: No space left on device")
        return real(target, data)

    monkeypatch.setattr(files, "_stage", full_disk_for_figures)
    code, _, err = _run(capsys, "theory", "relu", "--grid", "4", "--json", str(tmp_path / "t.json"),
                        "--plot", str(tmp_path / "p.png"))
    assert code == 2 and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_print_shows_the_table_and_repr_is_short() -> None:
    from numstab import diagnose, lab, theory

    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 8))
    report = diagnose(net, torch.ones(4, 8))
    assert str(report).startswith("verdict: ") and "Linear" in str(report) and "\x1b" not in str(report)
    assert repr(report).startswith("Report(layers=[3 items], findings=") and len(repr(report)) < 300
    result = lab.symmetry(steps=3)
    assert "Breaking the symmetry" in str(result) and "agrees" in str(result)
    assert repr(result).startswith("Symmetry(runs=(3 items)") and len(repr(result)) < 300
    assert "critical weight_std" in str(theory.summary("relu"))
    assert len(repr(theory.phase_diagram("tanh", [0.5, 1.0, 2.0], [0.0, 0.1]))) < 300


def test_control_characters_in_module_names_are_shown_escaped() -> None:
    from numstab import diagnose

    net = torch.nn.Sequential()
    net.add_module("fc\x1b[2J", torch.nn.Linear(3, 3))
    text = str(diagnose(net, torch.ones(4, 3)))
    assert "fc\\x1b[2J" in text and "\x1b" not in text
