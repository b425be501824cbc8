"""mlp_gradients: the lecture's synthetic MLP, against a book-style oracle loop and mean-field theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numstab import activations
from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.lab import mlp_gradients

WIDTH, DEPTH, REPEATS = 100, 50, 10  # the lecture's settings


@pytest.fixture(scope="module")
def chapter():
    """The lecture's setting: relu, sigmoid, 4 sigmoid - 2 at 0.1 .. 0.8 plus Xavier uniform, and 0.141."""
    return mlp_gradients(scales=(0.1, 0.2, 0.4, 0.8, math.sqrt(2 / WIDTH)))


def _final(r, act, init):
    a, i = r.index(act, init)
    return r.log10_magnitude[a, i, -1], r.log10_magnitude_std[a, i, -1]


def _tolerance(r, a=None, i=None):
    """Finite-width bias of E log10 plus 4 standard errors of the mean over repeats, both from theory.

    Each layer multiplies the squared norm of a column v of Y by sum_i f'(a_i)^2 (W v)_i^2: K terms whose
    ln has variance (kappa - 1) / K, kappa = E[f'^4 z^4] / E[f'^2 z^2]^2 <= 6 for the chapter's
    activations (relu's mask: E[z^4 1{z > 0}] / E[z^2 1{z > 0}]^2 = 6; 3 for a constant f'). So
    ln ||Y_L v|| has sd <= sqrt(5 L / (4 K)), which bounds the Frobenius norm's (a mean over K such
    columns). The bias (log E minus E log) is about L / K in ln. Neither depends on the measured spread.
    """
    sd_log10 = math.sqrt(5 * r.depth / (4 * r.width)) / math.log(10)
    return r.depth / r.width * math.log10(math.e) + 4 * sd_log10 / math.sqrt(r.repeats)


def test_relu_small_scales_vanish_large_explode_critical_between(chapter):
    crit = f"{math.sqrt(2 / WIDTH):g}"
    assert _final(chapter, "relu", 0.1)[0] < -5
    assert _final(chapter, "relu", 0.4)[0] > 15
    assert _final(chapter, "relu", 0.8)[0] > 35  # ~1e37: beyond what a float32 product survives
    assert abs(_final(chapter, "relu", crit)[0]) < 1.0


def test_relu_matches_chi1_power(chapter):
    # ReLU: chi_1 = sigma_w^2 / 2 with sigma_w = scale * sqrt(K) (He et al. 2015): golden values
    a = chapter.activations.index("relu")
    for init, chi in (("0.1", 0.5), ("0.2", 2.0), ("0.4", 8.0), ("0.8", 32.0), ("xavier_uniform", 0.5)):
        i = chapter.inits.index(init)
        assert chapter.chi1[a, i] == pytest.approx(chi, rel=1e-6)
        theory = DEPTH / 2 * math.log10(chi)
        assert chapter.theory_log10_magnitude[a, i, -1] == pytest.approx(theory, rel=1e-6)
        assert abs(chapter.log10_magnitude[a, i, -1] - theory) < _tolerance(chapter, a, i), init


def test_sigmoid_vanishes_at_every_scale(chapter):
    a = chapter.activations.index("sigmoid")
    assert (chapter.log10_magnitude[a, :, -1] < -2).all()
    assert (chapter.chi1[a] < 1).all()
    # the lecture printed ~1e-33 at 0.1: the magnitude is 1e-31, its smallest entries 1e-36
    assert -33 < chapter.log10_magnitude[a, chapter.inits.index("0.1"), -1] < -30
    for i in range(len(chapter.inits)):
        assert abs(chapter.log10_magnitude[a, i, -1] - chapter.theory_log10_magnitude[a, i, -1]) < 1.0


def test_theory_from_the_input_variance_matches_where_chi1_at_q_star_cannot(chapter):
    # relu: chi is the same at every variance, so both theories are one
    a = chapter.activations.index("relu")
    np.testing.assert_allclose(
        chapter.theory_from_input_log10_magnitude[a], chapter.theory_log10_magnitude[a], rtol=1e-9, atol=1e-9
    )
    # 4 sigmoid - 2 at sigma_w = 1 creeps towards q* = 0 like 1/l, so chi_l < 1 all the way: chi_1^l = 1 says
    # 10^0, the recursion from q_1 = 1 says 10^-0.68 -- and the measurement agrees with the recursion
    for act, inits in (("scaled_sigmoid", ("0.1", "0.2", "xavier_uniform")), ("sigmoid", chapter.inits)):
        a = chapter.activations.index(act)
        for init in inits:
            i = chapter.inits.index(init)
            got, want = chapter.log10_magnitude[a, i, -1], chapter.theory_from_input_log10_magnitude[a, i, -1]
            assert abs(got - want) < _tolerance(chapter, a, i), (act, init)
    i = chapter.inits.index("0.1")
    a = chapter.activations.index("scaled_sigmoid")
    assert (
        chapter.theory_from_input_log10_magnitude[a, i, -1] < -0.5 < chapter.theory_log10_magnitude[a, i, -1]
    )


def test_scaled_sigmoid_is_stable_near_0_1(chapter):
    value, _ = _final(chapter, "scaled_sigmoid", 0.1)
    assert abs(value) < 1.0  # sigma_w = 1: chi_1 = 1 at q* = 0 (4 sigmoid(x) - 2 = x - x^3/12 + ...)
    a, i = chapter.index("scaled_sigmoid", 0.1)
    assert chapter.chi1[a, i] == pytest.approx(1.0, abs=1e-3)


def test_no_inf_nan_or_flushed_zero_in_results(chapter):
    assert np.isfinite(chapter.log10_magnitude).all()
    assert np.isfinite(chapter.log10_min_entry).all()
    # exact zeros only where relu' = 0 zeroes whole rows: about half of them (binomial, 1000 rows per pair)
    a = chapter.activations.index("relu")
    assert (np.abs(chapter.zero_fraction[a] - 0.5) < 4 * math.sqrt(0.25 / (REPEATS * WIDTH))).all()
    # no zero elsewhere up to scale 0.4; at 0.8 pre-activations reach |a| > 37, where the registry's
    # sigmoid' = s (1 - s) (the notebook's formula too) is itself 0.0 in float64
    others = [i for i, name in enumerate(chapter.activations) if name != "relu"]
    small = [chapter.inits.index(s) for s in ("0.1", "0.2", "0.4", "xavier_uniform")]
    assert (chapter.zero_fraction[np.ix_(others, small)] == 0).all()


def _oracle(act_name, scale, width, depth, repeats, seed, dtype, uniform=False):
    """The notebook's loop, one matrix at a time, float64, replaying the generator's draws."""
    act = activations.get(act_name)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(repeats, width, 1, generator=gen, dtype=torch.float64).numpy()
    normal, unif = [], []
    for _ in range(depth):
        normal.append(torch.randn(repeats, width, width, generator=gen, dtype=dtype).double().numpy())
        unif.append((torch.rand(repeats, width, width, generator=gen, dtype=dtype) * 2 - 1).double().numpy())
    out = np.empty((repeats, depth + 1))
    for r in range(repeats):
        h, y = x[r], np.eye(width)
        out[r, 0] = 0.0
        for layer in range(depth):
            w = scale * (unif[layer][r] * math.sqrt(3) if uniform else normal[layer][r])
            a = w @ h
            y = act.derivative(a) * (w.T @ y)
            h = act.fn(a)
            out[r, layer + 1] = math.log10(np.linalg.norm(y) / math.sqrt(width))
    return out.mean(axis=0)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-9), ("float32", 2e-4)])
def test_batched_run_equals_the_notebooks_loop(dtype, tol):
    r = mlp_gradients(["relu", "sigmoid"], [0.3, 1.1], width=9, depth=7, repeats=3, seed=5, dtype=dtype)
    for a, act in enumerate(r.activations):
        for i, s in enumerate((0.3, 1.1)):
            expected = _oracle(act, s, 9, 7, 3, 5, getattr(torch, dtype))
            np.testing.assert_allclose(r.log10_magnitude[a, i], expected, atol=tol)
        xavier = _oracle(act, 1 / 3, 9, 7, 3, 5, getattr(torch, dtype), uniform=True)
        np.testing.assert_allclose(r.log10_magnitude[a, 2], xavier, atol=tol)


def test_same_seed_same_numbers():
    a, b, c = (mlp_gradients(["tanh"], [0.2], width=6, depth=4, repeats=2, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.log10_magnitude, b.log10_magnitude)
    assert not np.array_equal(a.log10_magnitude, c.log10_magnitude)


def test_an_all_dead_network_is_an_exact_zero_not_an_error():
    # width 1: a relu unit with a < 0 kills the product for good; -inf is the true log10 of 0
    r = mlp_gradients(["relu"], [1.0], width=1, depth=30, repeats=4, seed=0, xavier_uniform=False)
    # after 30 layers each unit has died (a < 0 with probability 1/2 per layer) in all 4 repeats (seed 0)
    assert r.zero_fraction[0, 0] == 1.0
    assert np.isneginf(r.log10_magnitude[0, 0, -1]) and np.isneginf(r.log10_min_entry[0, 0])
    assert not np.isnan(r.log10_magnitude).any() and not np.isnan(r.log10_min_entry).any()


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"scales": (0.1, 0.0)}, InvalidArgumentError, "scales[1]"),
        ({"scales": (-0.2,)}, InvalidArgumentError, "scales[0]"),
        ({"depth": 0}, InvalidArgumentError, "depth must be >= 1"),
        ({"width": 0}, InvalidArgumentError, "width must be >= 1"),
        ({"repeats": 0}, InvalidArgumentError, "repeats must be >= 1"),
        ({"depth": 2.5}, NumstabTypeError, "depth must be an integer"),
        ({"activations": ["relu", "swishy"]}, UnknownNameError, "use one of identity"),
        ({"dtype": "float16"}, InvalidArgumentError, "dtype must be one of float32, float64"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(kwargs, error, word):
    with pytest.raises(error) as err:
        mlp_gradients(**kwargs)
    assert word in str(err.value)


def test_theory_from_input_is_theorys_variance_map_recursion():
    from numstab import theory

    r = mlp_gradients(["sigmoid", "tanh"], [0.3, 0.9], width=25, depth=6, repeats=1, xavier_uniform=False)
    for a, name in enumerate(r.activations):
        act = activations.get(name)
        for i, scale in enumerate((0.3, 0.9)):
            sigma_w = scale * 5.0  # sqrt(25)
            q = [sigma_w**2]
            for _ in range(5):
                q.append(theory.variance_map(act, sigma_w, 0.0, q[-1]))
            squared = lambda z, act=act: act.derivative(z) ** 2  # noqa: E731
            chi = [sigma_w**2 * theory.gaussian_expectation(squared, qj) for qj in q]
            expected = np.concatenate(([0.0], 0.5 * np.cumsum(np.log10(chi))))
            np.testing.assert_allclose(
                r.theory_from_input_log10_magnitude[a, i], expected, rtol=1e-10, atol=1e-12
            )
