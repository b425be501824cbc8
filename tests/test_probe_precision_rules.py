"""numstab.probe.precision_rules: the Gaussian floors re-measured, against the closed form, and the limits."""

from __future__ import annotations

import math

import pytest
import torch

from numstab.precision import RECIPE_NAMES, measure
from numstab.probe import precision_rules as rules

# E[4**floor(log2 |z|)] for z ~ N(0, 1), summed over binades with the normal law (scipy-free: erf)
C_GAUSS = sum(4.0**k * (math.erf(2.0 ** (k + 1) / math.sqrt(2)) - math.erf(2.0**k / math.sqrt(2)))
              for k in range(-60, 10))


def test_the_closed_form_constant():
    assert C_GAUSS == pytest.approx(0.5428590, rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_floors_are_what_the_recipes_do_to_a_standard_normal_tensor(seed):
    z = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(seed))
    measured = measure(z, RECIPE_NAMES)
    for recipe, (underflow, rel_mse) in rules.GAUSSIAN_FLOOR.items():
        m = measured[recipe]
        # seed 0 is the table's own draw (4 significant digits); seed 1 is another draw of 2**20 values
        tol = 1e-3 if seed == 0 else 0.02
        assert m.rel_mse == pytest.approx(rel_mse, rel=tol), recipe
        assert m.fraction(m.underflow) == pytest.approx(underflow, rel=0.02 if seed == 0 else 0.35, abs=2e-5)


@pytest.mark.parametrize(("recipe", "mantissa_bits"), [
    ("bfloat16", 7), ("float16", 10), ("e4m3_cast", 3), ("e4m3_tensor", 3), ("e5m2_tensor", 2)])
def test_floors_of_plain_float_formats_follow_the_uniform_rounding_error_law(recipe, mantissa_bits):
    # rel_mse ~ E[4**floor(log2|z|)] / 12 * 4**-m: rounding error uniform over one ulp (3% for m >= 2)
    assert rules.GAUSSIAN_FLOOR[recipe][1] == pytest.approx(C_GAUSS / 12 * 4.0**-mantissa_bits, rel=0.03)


def test_limits_and_problems():
    expected = rules.Limits(rel_mse=0.002796, underflow=0.05001, overflow_to_inf=False)
    assert rules.limits("e4m3_tensor") == expected
    assert rules.limits("nvfp4").underflow == 0.1182
    assert rules.limits("e5m2_cast").overflow_to_inf and not rules.limits("mxfp8_e5m2").overflow_to_inf
    assert rules.problem("float16", overflow=1e-6, underflow=0.0, rel_mse=0.0) == "overflow to inf 0.0001%"
    assert rules.problem("e4m3_tensor", overflow=0.01, underflow=0.0, rel_mse=7e-4) is None  # saturation
    assert rules.problem("nvfp4", overflow=0.0, underflow=0.1, rel_mse=0.01) is None
    assert rules.problem("nvfp4", overflow=0.0, underflow=0.0, rel_mse=0.05) == \
        "rel MSE 0.05 > 0.036 (5.52x the Gaussian floor)"
    assert rules.problem("bfloat16", overflow=0.0, underflow=0.0, rel_mse=math.nan).startswith("rel MSE nan")
    assert rules.shortfall_db("nvfp4", 0.0) == -math.inf
    assert set(rules.GAUSSIAN_FLOOR) == set(RECIPE_NAMES)
