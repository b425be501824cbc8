"""symmetry: constant init keeps two hidden units bit-identical under SGD; dropout and random init do not."""

from __future__ import annotations

import numpy as np
import pytest

from numstab.errors import InvalidArgumentError
from numstab.lab import symmetry


@pytest.fixture(scope="module")
def result():
    return symmetry(steps=300, seed=0)


def test_constant_init_stays_exactly_symmetric(result):
    run = result.run("constant")
    assert run.difference.shape == (301,)
    assert (run.difference == 0.0).all()  # exactly, at every step
    assert np.array_equal(run.hidden_weights[0], run.hidden_weights[1])
    assert not np.allclose(run.hidden_weights[0], 0.3)  # it did train


def test_dropout_separates_the_units_and_random_init_differs(result):
    assert result.run("constant + dropout").difference[0] == 0.0
    assert result.run("constant + dropout").difference[-1] > 1e-6
    assert result.run("random").difference[0] > 1e-3


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_symmetry_holds_for_other_activations(activation):
    assert symmetry(steps=50, activation=activation).run("constant").difference.max() == 0.0


def test_same_seed_same_run():
    a, b = symmetry(steps=20, seed=3), symmetry(steps=20, seed=3)
    assert all(np.array_equal(x.difference, y.difference) for x, y in zip(a.runs, b.runs, strict=True))


@pytest.mark.parametrize("dropout", [0.0, 1.0, 1.5])
def test_dropout_outside_0_1_is_refused(dropout):
    with pytest.raises(InvalidArgumentError, match="dropout"):
        symmetry(steps=1, dropout=dropout)
