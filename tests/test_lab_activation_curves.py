"""activation_curves: the book's sigmoid cell, by autograd, against closed forms."""

from __future__ import annotations

import math

import pytest
import scipy.optimize

from numstab.errors import InvalidArgumentError, UnknownNameError
from numstab.lab import activation_curves


@pytest.fixture(scope="module")
def curves():
    return activation_curves()


def test_grid_is_the_books(curves):
    # torch.arange(-8.0, 8.0, 0.1): 160 points, -8 included, 8 excluded
    assert curves.x.shape == (160,)
    assert curves.x[0] == -8.0 and curves.x[-1] < 8.0
    assert [c.name for c in curves.curves] == ["sigmoid", "tanh", "relu", "scaled_sigmoid"]


def test_sigmoid_gradient_peaks_at_a_quarter_at_zero(curves):
    s = curves.curve("sigmoid")
    assert s.max_gradient == pytest.approx(0.25, abs=1e-7)  # float32 autograd
    assert abs(s.argmax) < 1e-6


def test_sigmoid_gradient_at_minus_8_is_the_books_3_35e_4(curves):
    # sigma'(-8) = e^-8 / (1 + e^-8)^2 = 3.3523767e-4 (closed form, float64)
    expected = math.exp(-8) / (1 + math.exp(-8)) ** 2
    assert expected == pytest.approx(3.3523767e-4, rel=1e-7)
    assert curves.curve("sigmoid").gradient_at_lo == pytest.approx(expected, rel=1e-5)


def test_autograd_matches_the_registry_closed_forms(curves):
    for c in curves.curves:
        assert c.closed_form_error < 1e-6, c.name  # float32 autograd vs float64 closed form


def test_sigmoid_vanishing_region_edges_sit_where_the_closed_form_crosses_the_threshold(curves):
    # sigma'(x) = 1e-3 at |x| = x*, solved independently; the grid runs must end within one step of it
    x_star = scipy.optimize.brentq(lambda x: math.exp(-x) / (1 + math.exp(-x)) ** 2 - 1e-3, 0, 20)
    (left_lo, left_hi), (right_lo, right_hi) = curves.curve("sigmoid").vanishing
    assert left_lo == -8.0 and right_hi == pytest.approx(7.9, abs=1e-6)
    assert -x_star - 0.1 <= left_hi <= -x_star
    assert x_star <= right_lo <= x_star + 0.1


def test_relu_vanishes_exactly_on_the_negative_half_and_scaled_sigmoid_nowhere(curves):
    relu = curves.curve("relu")
    assert relu.vanishing == ((-8.0, pytest.approx(-0.1, abs=1e-6)),)
    assert relu.closed_form_error == 0.0
    assert curves.curve("scaled_sigmoid").vanishing == ()  # 4 sigma'(8) = 1.3e-3 > 1e-3


def test_to_dict_is_plain_json():
    d = activation_curves(["tanh"], -1.0, 1.0, 0.5).to_dict()
    assert d["x"] == [-1.0, -0.5, 0.0, 0.5]
    assert isinstance(d["curves"][0]["gradient"], list)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"lo": 1.0, "hi": 0.0}, ["hi must be > lo", "lo=-8.0"]),
        ({"step": 0.0}, ["step", "> 0"]),
        ({"step": -0.1}, ["step"]),
    ],
)
def test_bad_grid_is_refused_with_the_fix(kwargs, words):
    with pytest.raises(InvalidArgumentError) as err:
        activation_curves(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_unknown_activation_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="use one of identity, relu"):
        activation_curves(["relu6"])
