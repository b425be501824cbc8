"""xavier: forward n_in sigma^2 gamma^2 and backward n_out sigma^2 per layer (Glorot & Bengio 2010)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numstab.errors import InvalidArgumentError, UnknownNameError
from numstab.lab import xavier


@pytest.fixture(scope="module")
def result():
    return xavier(width=64, other_width=256, depth=10, batch=64, trials=4, gamma=2.0, seed=0)


def test_theory_products_are_the_chapters_formula(result):
    square, _, alternating, _ = result.runs
    np.testing.assert_allclose(square.forward_theory, 4.0)  # gamma^2 * 1 per layer
    np.testing.assert_allclose(square.backward_theory, 1.0)
    # 64 -> 256: 2*64/320 = 0.4; 256 -> 64: 1.6; a pair multiplies by 0.64 (= 4 n m / (n + m)^2)
    assert alternating.forward_theory[1] == pytest.approx(4.0 * 0.4)
    assert alternating.forward_theory[10] == pytest.approx(4.0 * 0.64**5)
    assert alternating.backward_theory[0] == pytest.approx(0.64**5)


def _tolerance(widths, batch, trials):
    """4 standard errors (over trials) of log10 of a measured variance, from theory, per layer l = 0..L.

    A layer's batch-mean square E_b[(W h)^2] is ~ ||W||_F^2 gamma^2 / n_out: ||W||_F^2 sums n_in n_out
    entries (relative variance <= 2 / (n_in n_out); uniform entries: 0.8 / (n_in n_out)), and the batch
    of ``batch`` inputs adds <= 2 / (batch n_out). The ln of a product of layers adds these variances.
    """
    per_layer = [
        2 / (n_in * n_out) + 2 / (batch * min(n_in, n_out))
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
    ]
    var_ln = np.concatenate(([2 / (batch * widths[0])], 2 / (batch * widths[0]) + np.cumsum(per_layer)))
    return 4 * np.sqrt(var_ln) / math.log(10) / math.sqrt(trials)


def test_measured_variances_match_theory_within_four_standard_errors(result):
    for run in result.runs:
        tol = _tolerance(run.widths, result.batch, result.trials)
        forward_gap = np.abs(np.log10(run.forward_var / run.forward_theory))
        assert (forward_gap < tol).all(), (run.scheme, run.widths[:2])
        backward_gap = np.abs(np.log10(run.backward_var / run.backward_theory))
        assert (backward_gap < tol[::-1]).all(), (run.scheme, run.widths[:2])


def test_normal_and_uniform_side_by_side(result):
    assert [r.scheme for r in result.runs] == ["xavier_normal", "xavier_uniform"] * 2
    assert result.runs[0].widths == (64,) * 11 and result.runs[2].widths[:3] == (64, 256, 64)


def test_bad_input():
    with pytest.raises(InvalidArgumentError, match="depth must be >= 1"):
        xavier(depth=0)
    with pytest.raises(InvalidArgumentError, match="gamma"):
        xavier(gamma=0.0)
    with pytest.raises(UnknownNameError, match="xavier_normal, xavier_uniform"):
        xavier(schemes=["kaiming"])


def test_schemes_are_numstab_init_scheme_names() -> None:
    from numstab import init
    from numstab.lab.xavier import SCHEMES

    assert set(SCHEMES) <= set(init.SCHEMES)  # one vocabulary: the same names mean the same laws
