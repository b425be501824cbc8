"""matrix_products: Monte Carlo against the Lyapunov exponent and its exact spread (Newman 1986)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from numstab.errors import InvalidArgumentError
from numstab.lab import matrix_products
from numstab.lab.matrix_products import frobenius_offset, log_norm_std

LN10 = math.log(10.0)
LAMBDA_4 = 0.5579657578292062  # ln 2 / 2 + psi(2) / 2 = (ln 2 + 1 - gamma) / 2, Newman 1986
STEP_SD_4 = math.sqrt((math.pi**2 / 6 - 1) / 4)  # sd of ln ||W v|| for unit v, k = 4: sqrt(psi'(2) / 4)
TRIALS = 2000


@pytest.fixture(scope="module")
def products():
    return matrix_products((0.5, 0.7, 1.0), trials=TRIALS, seed=0)


def test_closed_forms_are_the_literals():
    assert frobenius_offset(4) == pytest.approx((1 + 2 * math.log(2)) / 2, rel=1e-12)
    assert log_norm_std(4, 1) == pytest.approx(STEP_SD_4, rel=1e-12)
    assert log_norm_std(4, 101) / LN10 == pytest.approx(1.7526, abs=1e-4)  # the "+- 1.7"


def test_book_cell_log10_frobenius_is_25_0_plus_minus_1_7(products):
    b = products.book
    assert b.factors == 101
    lyapunov_only = 101 * LAMBDA_4 / LN10
    assert lyapunov_only == pytest.approx(24.47, abs=0.01)  # the 24.5
    expected = (101 * LAMBDA_4 + frobenius_offset(4)) / LN10  # 24.99
    # Monte Carlo error of the mean: sd / sqrt(trials); 4 standard errors
    assert abs(b.mean_log10_frobenius - expected) < 4 * 1.7526 / math.sqrt(TRIALS)
    # the sample sd of a normal sample has standard error sd / sqrt(2 (trials - 1))
    assert abs(b.std_log10_frobenius - 1.7526) < 4 * 1.7526 / math.sqrt(2 * (TRIALS - 1)) + 0.05


def test_growth_per_product_matches_the_lyapunov_exponent(products):
    stderr = STEP_SD_4 / math.sqrt(100 * TRIALS)  # exact: i.i.d. log-increments
    for s, rate in zip(products.scales, products.growth_rate, strict=True):
        assert abs(rate - (math.log(s) + LAMBDA_4)) < 4 * stderr
    assert products.critical_scale == pytest.approx(math.exp(-LAMBDA_4), rel=1e-9)  # 0.5724


def test_lecture_scales_give_1e_minus_6_and_1e9(products):
    i05, i07 = 0, 1
    # Frobenius norms against theory within 4 Monte Carlo standard errors of the mean
    se = log_norm_std(4, 100) / LN10 / math.sqrt(TRIALS)
    for i, s in ((i05, 0.5), (i07, 0.7)):
        theory = (100 * (math.log(s) + LAMBDA_4) + frobenius_offset(4)) / LN10
        assert abs(products.mean_log10_frobenius[i] - theory) < 4 * se + 0.02
    # the printed magnitudes: ~1e-6 at 0.5, ~1e9 - 1e10 at 0.7 (one run spreads by +-1.7 decades)
    assert -7 < products.median_log10_abs_entry[i05] < -5
    assert 9 < products.mean_log10_frobenius[i07] < 10


def test_common_random_numbers_equal_a_direct_unnormalized_product():
    # oracle: the lecture's loop Y = W @ Y in float64 with the same draws, no renormalization
    r = matrix_products((0.3, 0.7, 2.0), k=3, n=12, trials=5, seed=7)
    gen = torch.Generator().manual_seed(7)
    draws = [torch.randn(5, 3, 3, generator=gen, dtype=torch.float64) for _ in range(13)]
    assert r.common_random_numbers
    for i, s in enumerate((0.3, 0.7, 2.0)):
        y = torch.eye(3, dtype=torch.float64).expand(5, 3, 3)
        for w in draws[:12]:
            y = (s * w) @ y
        direct = torch.linalg.matrix_norm(y).log10().mean().item()
        assert r.mean_log10_frobenius[i] == pytest.approx(direct, rel=1e-12, abs=1e-12)


def test_long_products_never_overflow():
    r = matrix_products((1.0, 0.1), n=3000, trials=4)
    assert np.isfinite(r.mean_log10_frobenius).all()
    assert r.mean_log10_frobenius[0] > 700  # far beyond float64's 1.8e308, carried in log space
    assert r.mean_log10_frobenius[1] < -2000


def test_same_seed_same_numbers_other_seed_other_numbers():
    a, b, c = (matrix_products((0.5,), n=10, trials=50, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.path_mean_log10, b.path_mean_log10)
    assert not np.array_equal(a.path_mean_log10, c.path_mean_log10)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"scales": (0.5, 0.0)}, "scales[1]"),
        ({"scales": (-1.0,)}, "scales[0]"),
        ({"scales": ()}, "scales is empty"),
        ({"scales": (0.5,), "k": 0}, "k must be >= 1"),
        ({"scales": (0.5,), "n": 0}, "n must be >= 1"),
        ({"scales": (0.5,), "trials": 0}, "trials must be >= 1"),
    ],
)
def test_bad_input_names_the_argument(kwargs, word):
    with pytest.raises(InvalidArgumentError) as err:
        matrix_products(**kwargs)
    assert word in str(err.value)
