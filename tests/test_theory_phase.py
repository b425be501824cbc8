"""numstab.theory.phase: the vectorized phase diagram agrees with the scalar functions point by point."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from numstab import theory
from numstab.errors import InvalidArgumentError

WEIGHTS = np.linspace(0.5, 3.5, 13)
BIASES = np.array([0.0, 0.05**0.5, 0.6])


@pytest.mark.parametrize("name", ["tanh", "gelu", "erf", "relu", "selu", "sigmoid"])
def test_grid_matches_scalar_functions(name):
    pd = theory.phase_diagram(name, WEIGHTS, BIASES)
    assert pd.chi1.shape == pd.xi_c.shape == pd.q_star.shape == (3, 13)
    for i, b in enumerate(BIASES):
        for j, w in enumerate(WEIGHTS):
            _assert_same(pd.q_star[i, j], theory.fixed_point(name, w, b), rel=1e-9)
            assert pd.chi1[i, j] == pytest.approx(theory.chi1(name, w, b), rel=1e-9)
            # chaotic xi_c comes from the Mehler series on the grid, from the polar rule in depth_scales
            _assert_same(pd.xi_c[i, j], theory.depth_scales(name, w, b)[1], rel=1e-6)


def _assert_same(grid_value, scalar_value, *, rel):
    if math.isinf(scalar_value):
        assert grid_value == scalar_value
    else:
        assert grid_value == pytest.approx(scalar_value, rel=rel, abs=1e-300)


def test_critical_line_matches_scalar_and_is_nan_where_none():
    pd = theory.phase_diagram("tanh", WEIGHTS, BIASES)
    for b, w in zip(BIASES, pd.critical_weight_stds, strict=True):
        assert w == pytest.approx(theory.critical_weight_std("tanh", b), rel=1e-12)
    assert pd.critical_weight_stds[1] ** 2 == pytest.approx(1.761, abs=2e-3)
    assert np.isnan(theory.phase_diagram("softplus", [1.0], [0.1]).critical_weight_stds).all()


def test_phase_labels_and_trainable_depth():
    pd = theory.phase_diagram("relu", [1.0, 2**0.5, 2.0], [0.0, 0.5])
    assert pd.phase().tolist() == [["ordered", "critical", "chaotic"]] * 2
    assert pd.trainable_depth()[0, 0] == pytest.approx(6 / math.log(2), rel=1e-12)  # xi_c = -1 / ln(1/2)


def test_to_dict_round_trips_through_json():
    pd = theory.phase_diagram("tanh", [0.8, 1.2], [0.1])
    data = json.loads(json.dumps(pd.to_dict()))
    assert data["chi1"] == pd.chi1.tolist() and data["activation"] == "tanh"


@pytest.mark.parametrize(
    ("weights", "biases", "match"),
    [
        ([], [0.1], "weight_stds must be a non-empty 1-D"),
        ([1.0], [], "bias_stds must be a non-empty 1-D"),
        ([[1.0, 2.0]], [0.1], "weight_stds must be a non-empty 1-D"),
        ([1.0, -2.0], [0.1], "weight_stds must hold"),
        ([1.0], [math.nan], "bias_stds must hold finite stds >= 0, got nan"),
    ],
)
def test_bad_grids_are_rejected(weights, biases, match):
    with pytest.raises(InvalidArgumentError, match=match):
        theory.phase_diagram("tanh", weights, biases)


def test_result_arrays_are_read_only():
    pd = theory.phase_diagram("tanh", [1.0, 2.0], [0.1])
    with pytest.raises(ValueError, match="read-only"):
        pd.chi1[0, 0] = 0.0
