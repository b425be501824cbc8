"""numstab.theory.spectrum: Jacobian spectra at criticality against deep linear and relu networks."""

from __future__ import annotations

import pytest
import torch

from numstab import theory
from numstab.errors import InvalidArgumentError, UnknownNameError

N = 400


@pytest.mark.parametrize(
    ("name", "weights", "per_layer"),
    [("identity", "gaussian", 1.0), ("identity", "orthogonal", 0.0), ("relu", "gaussian", 2.0),
     ("relu", "orthogonal", 1.0), ("tanh", "gaussian", 1.0), ("tanh", "orthogonal", 0.0)],
)
def test_closed_forms(name, weights, per_layer):
    # Pennington et al. 2017: var = L (mu2 / mu1^2 - 1 - s1); tanh at sigma_b = 0 has q* = 0: mu1 = mu2 = 1
    spec = theory.jacobian_spectrum(name, 8, weights=weights)
    assert spec.mean == pytest.approx(1.0, abs=1e-9)
    assert spec.variance == pytest.approx(8 * per_layer, abs=1e-9)


def _orthogonal(gen):
    return torch.nn.init.orthogonal_(torch.empty(N, N, dtype=torch.float64), generator=gen)


def _squared_singular_values(matrices):
    jac = torch.eye(N, dtype=torch.float64)
    for m in matrices:
        jac = m @ jac
    return torch.linalg.svdvals(jac) ** 2


def test_deep_linear_orthogonal_is_an_isometry():
    gen = torch.Generator().manual_seed(0)
    s = torch.sqrt(_squared_singular_values([_orthogonal(gen) for _ in range(16)]))
    torch.testing.assert_close(s, torch.ones(N, dtype=torch.float64), rtol=0, atol=1e-5)


@pytest.mark.parametrize("depth", [4, 16])
def test_deep_linear_gaussian_variance_grows_like_depth(depth):
    # N = 400, weights N(0, 1 / N), seed 0: var(s^2) within 20% of L
    gen = torch.Generator().manual_seed(0)
    mats = [torch.randn(N, N, generator=gen, dtype=torch.float64) / N**0.5 for _ in range(depth)]
    s2 = _squared_singular_values(mats)
    predicted = theory.jacobian_spectrum("identity", depth, weights="gaussian").variance
    assert float(s2.var()) == pytest.approx(predicted, rel=0.2)
    assert float(s2.mean()) == pytest.approx(1.0, rel=0.2)


def test_relu_orthogonal_variance_is_depth():
    # relu at sigma_w = sqrt(2) with orthogonal weights: J = prod D_l sqrt(2) O_l, D_l = diag(h_l > 0).
    # One network's overall scale (1/N) tr JJ^T = prod_l 2 * (active fraction) drifts by ~5% per layer
    # at N = 400, so compare the scale-free spread var(s^2) / mean(s^2)^2 (= var at m1 = 1); within 20%
    gen = torch.Generator().manual_seed(0)
    depth = 8
    x = torch.randn(N, generator=gen, dtype=torch.float64)
    mats = []
    for _ in range(depth):
        w = 2**0.5 * _orthogonal(gen)
        h = w @ x
        mats.append((h > 0).double()[:, None] * w)
        x = torch.relu(h)
    s2 = _squared_singular_values(mats)
    predicted = theory.jacobian_spectrum("relu", depth, weights="orthogonal").variance
    assert float(s2.var() / s2.mean() ** 2) == pytest.approx(predicted, rel=0.2)


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="depth must be >= 1"):
        theory.jacobian_spectrum("relu", 0)
    with pytest.raises(UnknownNameError, match="unknown weights 'uniform': use one of gaussian, orthogonal"):
        theory.jacobian_spectrum("relu", 4, weights="uniform")
    assert set(theory.jacobian_spectrum("relu", 2).to_dict()) >= {"mean", "variance", "mu1", "mu2"}
