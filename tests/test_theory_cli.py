"""`numstab theory`: exit 0 with the table, the phase-diagram file, and one-line errors with exit 2."""

from __future__ import annotations

import pytest

from numstab.cli import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_prints_the_summary_at_the_critical_point(capsys):
    code, out, err = run(["theory", "relu"], capsys)
    assert code == 0 and err == ""
    assert "weight_std = 1.41" in out and "critical" in out and "chi_1" in out


def test_weight_and_bias_options(capsys):
    code, out, _ = run(["theory", "tanh", "--weight-std", "2.0", "--bias-std", "0.3"], capsys)
    assert code == 0 and "chaotic" in out


def test_plot_writes_the_phase_diagram(tmp_path, capsys):
    path = tmp_path / "phase.svg"
    code, out, _ = run(["theory", "tanh", "--bias-std", "0.2", "--plot", str(path), "--grid", "30"], capsys)
    assert code == 0 and f"wrote {path}" in out
    assert path.read_text().lstrip().startswith("<?xml")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_json_holds_the_summary(tmp_path, capsys):
    from numstab import jsonio

    path = tmp_path / "theory.json"
    code, _, _ = run(["theory", "relu", "--json", str(path)], capsys)
    data = jsonio.load(path, kind="theory")
    assert code == 0 and data["phase"] == "critical" and data["xi_c"] == float("inf")
    assert data["chi1"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["theory", "tanhh"], "unknown activation 'tanhh'"),
        (["theory", "tanh", "--weight-std", "-1"], "weight_std must be a finite number >= 0"),
        (["theory", "tanh", "--bias-std", "nan"], "bias_std must be a finite number >= 0"),
        (["theory", "tanh", "--plot", "phase.txt"], "--plot must end in .png, .svg, .pdf"),
        (["theory", "softplus", "--bias-std", "0.1"], "pass --weight-std W"),
        (["theory", "tanh", "--grid", "1"], "--grid must be >= 2"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err
