"""`numstab check` and `numstab examples`: output, files written, one-line errors with exit status 2."""

from __future__ import annotations

import pytest
import torch

from numstab import examples, jsonio
from numstab.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_examples_lists_one_example_a_line_name_first(capsys) -> None:
    code, out, _ = run(capsys, "examples")
    lines = out.splitlines()
    assert code == 0
    assert [line.split()[0] for line in lines] == examples.names()
    assert "vanish" in lines[0]


def test_check_an_example_prints_the_verdict_and_writes_json_and_html(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "check", "constant_mlp", "--json", str(tmp_path / "r.json"),
                       "--html", str(tmp_path / "r.html"))
    assert code == 0
    words = " ".join(out.split())  # the table wraps at the console's width
    assert "verdict: symmetric" in out and "break the symmetry with a random init" in words
    doc = jsonio.load(tmp_path / "r.json", kind="check")
    assert doc["verdict"] == "symmetric" and doc["schema"] == "numstab.report/1"
    assert "<!doctype html>" in (tmp_path / "r.html").read_text().lower()


def test_json_dash_prints_only_the_json_on_stdout(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "check", "sigmoid_mlp", "--json", "-", "--html", "r.html")
    assert code == 0
    doc = jsonio.loads(out, kind="check")
    assert doc["verdict"] == "vanishing" and doc["schema"] == "numstab.report/1"
    assert "wrote r.html" in err and not (tmp_path / "-").exists()


def test_fix_shows_before_and_after_and_goes_into_the_json(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "check", "relu_mlp_normal", "--fix", "kaiming_normal", "--json",
                       str(tmp_path / "fix.json"))
    assert code == 0
    assert "before   exploding" in out and "after    healthy" in out
    doc = jsonio.load(tmp_path / "fix.json", kind="check")
    assert doc["verdict"] == "exploding" and doc["fix"]["after"]["verdict"] == "healthy"


def test_fix_offered_applies_the_report_s_own_re_checked_fix(capsys, tmp_path) -> None:
    # relu_mlp_normal: N(0, 1) weights, Kaiming's std is sqrt(2 / fan_in); the offered fix is a rescale
    out_path = str(tmp_path / "f.json")
    code, out, _ = run(capsys, "check", "relu_mlp_normal", "--fix", "offered", "--json", out_path)
    assert code == 0 and "report.with_fix('rescale', factor=" in out and "after    healthy" in out
    doc = jsonio.load(tmp_path / "f.json", kind="check")
    assert doc["fix"]["scheme"] == "rescale" and doc["fix"]["after"]["verdict"] == "healthy"
    assert doc["findings"][0]["options"] == doc["fix"]["options"]


def test_fix_offered_on_a_healthy_model_is_one_line(capsys) -> None:
    code, _, err = run(capsys, "check", "lstm", "--fix", "offered")
    assert code == 2 and "offers no re-checked fix" in err and len(err.strip().splitlines()) == 1


def test_a_user_factory_with_input_shape(capsys, tmp_path) -> None:
    path = tmp_path / "mine.py"
    path.write_text("from torch import nn\n\n\ndef build():\n"
                    "    return nn.Sequential(nn.Linear(5, 5), nn.Tanh())\n")
    code, out, _ = run(capsys, "check", f"{path}:build", "--input-shape", "16,5")
    assert code == 0 and "verdict: healthy" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["check", "nosuch"], "unknown example 'nosuch'"),
    (["check", "missing.py:build"], "TARGET file 'missing.py' does not exist"),
    (["check", "lstm", "--input-shape", "8,x"], "--input-shape must be positive integers"),
    (["check", "lstm", "--fix", "zeros"], "zeros"),
])
def test_user_mistakes_exit_2_with_one_line(capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("numstab: error: ")
    assert message in err


def test_a_factory_returning_a_bare_model_needs_input_shape(capsys, tmp_path) -> None:
    path = tmp_path / "bare.py"
    path.write_text("from torch import nn\n\ndef build():\n    return nn.Linear(3, 3)\n")
    code, _, err = run(capsys, "check", f"{path}:build")
    assert code == 2 and "pass --input-shape" in err and len(err.strip().splitlines()) == 1


def test_help_warns_that_loading_a_file_runs_its_code(capsys) -> None:
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    assert "runs the code in that file" in " ".join(out.split())


def test_fix_is_the_same_whatever_the_global_rng() -> None:
    from numstab import diagnose, examples

    model, x = examples.build("relu_mlp_normal")
    reports = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        reports.append(diagnose(model, x).with_fix("kaiming_normal").after)
        assert torch.equal(torch.get_rng_state(), state)  # the fix drew nothing from the global RNG
    assert reports[0].to_dict() == reports[1].to_dict()
    assert reports[0].verdict == "healthy"
