"""`numstab lab NAME`: one command per experiment; a user's mistake is one line on stderr and exit 2."""

from __future__ import annotations

import json

import pytest

from numstab import jsonio
from numstab.cli import main
from numstab.tour import CHAPTER_STEPS


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_every_experiment_is_a_command(capsys):
    code, out, _ = _run(capsys, "lab", "--help")
    assert code == 0
    for name in CHAPTER_STEPS:  # one command per experiment of the tour
        assert name in out


def test_matrix_products_prints_the_table(capsys):
    code, out, err = _run(capsys, "lab", "matrix-products", "--scales", "0.5,0.7", "--trials", "50")
    assert code == 0 and err == ""
    assert "scale 0.5" in out and "~1e-6" in out and "critical scale" in out


def test_mlp_gradients_json(capsys):
    code, out, _ = _run(
        capsys,
        "lab",
        "mlp-gradients",
        "--activations",
        "relu",
        "--scales",
        "0.1",
        "--width",
        "10",
        "--depth",
        "3",
        "--repeats",
        "2",
        "--json",
        "-",
    )
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == "numstab.report/1" and data["kind"] == "mlp-gradients"
    assert data["activations"] == ["relu"] and data["inits"] == ["0.1", "xavier_uniform"]
    assert len(data["log10_magnitude"][0][0]) == 4


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["lab", "matrix-products", "--scales", "0,0.5"], ["scales[0]", "> 0"]),
        (["lab", "matrix-products", "--scales", "half"], ["--scales", "comma-separated"]),
        (["lab", "mlp-gradients", "--depth", "0"], ["depth must be >= 1"]),
        (["lab", "mlp-gradients", "--width", "0"], ["width must be >= 1"]),
        (["lab", "mlp-gradients", "--repeats", "0"], ["repeats must be >= 1"]),
        (["lab", "mlp-gradients", "--activations", "relu,nope"], ["unknown activation 'nope'", "use one of"]),
        (["lab", "no-such-experiment"], ["no-such-experiment"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("numstab: error:")
    for word in words:
        assert word in err


def test_exercises_print_the_answers_and_their_json(capsys):
    code, out, err = _run(capsys, "lab", "exercises", "--quick")
    assert code == 0 and err == ""
    assert "channels" in out and "LARS" in out and "Lyapunov" in out
    code, out, _ = _run(capsys, "lab", "exercises", "--quick", "--json", "-")
    data = jsonio.loads(out, kind="exercises")
    assert code == 0 and data["bounds"]["violations"] == 0 and data["tied"][0]["difference"] == 0.0
