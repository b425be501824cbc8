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


def test_measured_variances_match_theory_within_their_spread(result):
    for run in result.runs:
        for got, want, spread in (
            (run.forward_var, run.forward_theory, run.forward_log10_spread),
            (run.backward_var, run.backward_theory, run.backward_log10_spread),
        ):
            # 4 standard errors over trials, plus the batch's sampling error (~1/sqrt(batch*width))
            tol = 4 * spread / math.sqrt(result.trials) + 4 / math.sqrt(64 * 64)
            assert (np.abs(np.log10(got / want)) < tol + 0.02).all(), run.scheme


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
