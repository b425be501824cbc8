"""numstab.display: what a notebook gets from every result (a short text/plain, HTML without a repeated
title, a public ``figure()`` returning a matplotlib Figure)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import numstab
from numstab import display, lab, theory
from numstab.errors import NumstabTypeError
from numstab.lab import training


def _results_with_figures() -> list[object]:
    return [
        lab.activation_curves(), lab.matrix_products((0.5, 1.0), trials=20),
        lab.mlp_gradients(["relu"], [0.1], width=20, depth=5, repeats=2), lab.taylor(),
        lab.xavier(width=8, other_width=16, depth=3, batch=8, trials=2), lab.symmetry(steps=5),
        lab.precision(depth=30, scales=[1.0]),
        training.depth_sweep([2], [training.Setup("tanh", "xavier_normal")], steps=3, seeds=[0]),
        theory.phase_diagram("tanh", np.linspace(0.5, 2.0, 6), [0.0, 0.3]),
    ]  # fmt: skip


#: The models behind the reports: with_fix needs its model alive (a report holds only a weak reference).
_MODELS: list[nn.Module] = []


def _report() -> numstab.Report:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(8, 2))
    _MODELS.append(model)
    return numstab.diagnose(model, torch.randn(16, 8), loss_fn=lambda out: out.pow(2).mean())


@pytest.mark.parametrize("result", _results_with_figures(), ids=lambda r: type(r).__name__)
def test_a_result_gives_a_notebook_short_text_html_and_its_figure(result) -> None:
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert 0 < len(bundle["text/plain"].encode()) <= display.PLAIN_LIMIT
    assert bundle["text/html"].startswith('<div class="numstab-report">')
    assert "<img" in bundle["text/html"]  # the figure, inside the one HTML output
    # one heading for one result: no <h1> repeating the section's <h2>
    assert "<h1>" not in bundle["text/html"] and len(re.findall("<h2>", bundle["text/html"])) == 1
    fig = result.figure()
    assert isinstance(fig, Figure) and fig.axes and fig is not result.figure()  # a new one each call


def test_text_plain_is_cut_at_the_limit_with_a_pointer_to_print() -> None:
    r = lab.taylor()
    full = str(r)
    assert len(full.encode()) > display.PLAIN_LIMIT  # the whole table is longer than a notebook needs
    plain = display.plain(r)
    assert len(plain.encode()) <= display.PLAIN_LIMIT
    assert plain.endswith("print(result) shows the whole table)")
    assert full.startswith(plain.rsplit("\n", 1)[0])  # whole lines, in order


def test_a_check_report_and_its_fix_render_as_html_with_the_report_figure() -> None:
    report = _report()
    assert isinstance(report.figure(), Figure)
    fix = report.with_fix("xavier_normal")
    bundle = fix._repr_mimebundle_()
    assert "xavier_normal" in bundle["text/html"] and bundle["text/html"] == fix._repr_html_()
    assert len(bundle["text/plain"].encode()) <= display.PLAIN_LIMIT
    with pytest.raises(NumstabTypeError, match="has no figure"):
        fix.figure()


def test_a_result_without_a_figure_says_so() -> None:
    with pytest.raises(NumstabTypeError, match="has no figure"):
        theory.summary("tanh", weight_std=1.0).figure()


def test_a_tour_result_shows_in_chinese_and_other_results_say_they_cannot() -> None:
    shown = display.in_language(lab.symmetry(steps=5), "zh")._repr_mimebundle_()
    assert "打破对称性" in shown["text/html"] and '<h2>打破对称性</h2>' in shown["text/html"]
    assert "一致？" in shown["text/plain"] and len(shown["text/plain"].encode()) <= display.PLAIN_LIMIT
    with pytest.raises(numstab.errors.UnknownNameError, match="en, zh"):
        display.in_language(lab.taylor(), "fr")
    with pytest.raises(NumstabTypeError, match="English only"):
        display.in_language(theory.summary("tanh", weight_std=1.0), "zh")
