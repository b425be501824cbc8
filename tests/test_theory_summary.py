"""numstab.theory.summary and the package surface: one result per initialization, no torch import."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from numstab import theory
from numstab.errors import NoCriticalPointError


def test_numstab_theory_imports_no_torch():
    code = (
        "import sys, numstab.theory as t; t.summary('tanh', 1.2, 0.1); "
        "t.phase_diagram('gelu', [1.0], [0.1]); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_summary_fields_at_the_schoenholz_point():
    s = theory.summary("tanh", 1.5**0.5, 0.05**0.5)
    assert s.phase == "ordered"
    assert s.chi1 == pytest.approx(0.9386, abs=1e-4)
    assert s.xi_c == pytest.approx(15.8, abs=0.05)
    assert s.trainable_depth == pytest.approx(6 * s.xi_c, rel=1e-15)
    assert s.critical_weight_std**2 == pytest.approx(1.761, abs=2e-3)


def test_summary_defaults_to_the_critical_point():
    s = theory.summary("relu")
    assert s.weight_std == pytest.approx(2**0.5, abs=1e-12)
    assert s.phase == "critical" and s.xi_c == math.inf


@pytest.mark.parametrize(("chi1", "phase"), [(0.5, "ordered"), (1.0, "critical"), (1.0 + 1e-12, "critical"),
                                             (1.01, "chaotic")])
def test_classify_phase(chi1, phase):
    assert theory.classify_phase(chi1) == phase


def test_to_dict_is_json_ready():
    data = theory.summary("gelu", 1.2, 0.1).to_dict()
    assert set(data) == {"activation", "weight_std", "bias_std", "critical_weight_std", "q_star", "chi1",
                         "xi_q", "xi_c", "phase", "trainable_depth"}
    json.dumps(data)


def test_summary_without_a_critical_point_keeps_nan_or_errors():
    s = theory.summary("softplus", 1.0, 0.1)
    assert math.isnan(s.critical_weight_std) and s.phase == "ordered"
    with pytest.raises(NoCriticalPointError, match="no critical weight_std"):  # an InvalidArgumentError
        theory.summary("softplus", None, 0.1)


@pytest.mark.parametrize(
    "activation, weight_std, bias_std",
    [("tanh", 1.5**0.5, 0.05**0.5), ("tanh", 2.5, 0.3), ("relu", 1.2, 0.1), ("erf", None, 0.2)],
)
def test_summary_solves_q_star_once_and_equals_the_separate_functions(
    monkeypatch, activation, weight_std, bias_std
):
    """The ordered, the chaotic (c* < 1: a root search over the correlation map) and the critical case."""
    from numstab.theory import meanfield

    calls = []
    solve = meanfield.solve_fixed_point
    monkeypatch.setattr(meanfield, "solve_fixed_point", lambda *a, **k: calls.append(1) or solve(*a, **k))
    s = theory.summary(activation, weight_std, bias_std)
    assert len(calls) == 1
    monkeypatch.setattr(meanfield, "solve_fixed_point", solve)
    w = s.weight_std
    assert s.q_star == theory.fixed_point(activation, w, bias_std)  # bit for bit
    assert s.chi1 == theory.chi1(activation, w, bias_std)
    assert (s.xi_q, s.xi_c) == theory.depth_scales(activation, w, bias_std)
