"""`numstab lab training` and the training section of `numstab tour`."""

from __future__ import annotations

import io

import pytest

from numstab import jsonio
from numstab.cli import main
from numstab.lab import _batched


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


SMALL = ["lab", "training", "--steps", "5", "--seeds", "0"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--experiment", "remedies", "--remedies", "residual,dropout"], ["remedy", "dropout", "layernorm"]),
        (["--experiment", "depth", "--depths", "2,0"], ["depth", ">= 1", "got 0"]),
        (["--experiment", "lr", "--lrs", "0.1,-1"], ["lr", "> 0", "-1.0"]),
        (["--experiment", "map", "--activation", "relu6"], ["activation", "relu6"]),
        (["--experiment", "sweep"], ["experiment", "sweep", "depth, lr, remedies, map, all"]),
        (["--experiment", "depth", "--depths", "two"], ["--depths", "comma-separated"]),
        (["--steps", "0"], ["steps", ">= 1"]),
        (["-e", "remedies", "--remedy-base", "relu"], ["--remedy-base", "activation:init[:number]"]),
        (["-e", "remedies", "--remedy-base", "relu:orthogonal:x"], ["--remedy-base", "relu:normal:0.4"]),
        (["-e", "remedies", "--remedy-base", "relu:xavier_normal:2"], ["scale=", "it takes no number"]),
        (["-e", "remedies", "--remedy-base", "relu:he"], ["init", "'he'", "kaiming_normal"]),
    ],
)
def test_bad_options_exit_2_with_one_line_before_training(args, words, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(_batched, "train", lambda *a, **k: pytest.fail("trained before validating"))
    code, out, err = _cli(["lab", "training", *args], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("numstab: error: ")
    for word in words:
        assert word in err


def test_a_foreign_out_folder_is_refused_before_training(tmp_path, capsys, monkeypatch) -> None:  # noqa: ANN001
    (tmp_path / "thesis.tex").write_text("mine")
    monkeypatch.setattr(_batched, "train", lambda *a, **k: pytest.fail("trained before checking --out"))
    code, _, err = _cli([*SMALL, "-e", "depth", "--out", str(tmp_path)], capsys)
    assert code == 2 and str(tmp_path) in err
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_depth_experiment_prints_its_table(capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("COLUMNS", "150")  # rich's width when not a terminal
    code, out, _ = _cli([*SMALL, "-e", "depth", "--depths", "2"], capsys)
    assert code == 0
    assert "Depth x init x activation on the digits" in out
    assert out.count("sigmoid, N(0, 0.01²)") == 1 and "scaled_sigmoid, Xavier" in out


def test_json_and_report_folder(tmp_path, capsys) -> None:  # noqa: ANN001
    args = [*SMALL, "-e", "remedies,map", "--remedies", "clip", "--remedy-depth", "2", "--json", "-"]
    args += ["--remedy-base", "relu:normal:0.4"]
    code, out, err = _cli([*args, "--out", str(tmp_path / "r")], capsys)
    assert code == 0
    results = jsonio.loads(out, kind="lab-training")["results"]  # stdout holds the JSON document only
    assert "report: " in err  # the notes go to stderr then
    assert results[0]["base"] == {"activation": "relu", "init": "normal", "scale": 0.4, "bias_std": 0.0,
                                  "label": "relu, N(0, 0.4²)"}  # fmt: skip
    assert "boundary" in results[1]
    saved = jsonio.load(tmp_path / "r" / "report.json", kind="lab-training")["results"]
    assert saved[0]["remedies"] == ["none", "clip"]
    html = (tmp_path / "r" / "index.html").read_text()
    assert 'id="training-remedies"' in html and 'id="training-map"' in html


def test_tour_step_runs_quick_and_renders_three_sections() -> None:
    from numstab.render.html import HtmlPage
    from numstab.render.terminal import make_console
    from numstab.tour import TOUR_STEPS, render_step

    step = next(s for s in TOUR_STEPS if s.name == "training")
    console, page, payload = make_console(file=io.StringIO(), width=120), HtmlPage("t"), {}
    render_step(step, step.run(True), console=console, page=page, payload=payload)
    assert set(payload["training"]) == {"depth", "remedies", "map"}
    text = console.file.getvalue()
    assert "Remedies at depth" in text and "Trainability map" in text
    html = page.render()
    assert all(f'id="{k}"' in html for k in ("training", "training-remedies", "training-map"))
