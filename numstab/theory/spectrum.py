"""Spread of the input-output Jacobian's singular values at criticality: Gaussian vs orthogonal weights.

chi_1 = 1 fixes the *mean* squared singular value of the Jacobian J of a deep network, but not
how the squared singular values spread around it. Free probability (Pennington et al. 2017,
"Resurrecting the sigmoid") gives the variance of the spectrum of J J^T at criticality:

    var = L (mu_2 / mu_1^2 - 1 - s_1),   mu_k = E[f'(sqrt(q*) z)^(2k)],

with s_1 = -1 for Gaussian weights and s_1 = 0 for orthogonal ones. A deep linear network with
orthogonal weights is perfectly isometric (var = 0); with Gaussian weights var grows like L.
Networks whose spectrum stays concentrated as L grows ("dynamical isometry") train fastest.

Examples:
    >>> round(jacobian_spectrum("identity", 16, weights="gaussian").variance, 9)
    16.0
    >>> abs(jacobian_spectrum("identity", 16, weights="orthogonal").variance) < 1e-12
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from numstab.activations import Activation
from numstab.errors import UnknownNameError, check_int_at_least
from numstab.theory import meanfield
from numstab.theory.quadrature import gaussian_expectation

__all__ = ["JacobianSpectrum", "jacobian_spectrum", "WeightEnsemble", "S_TRANSFORM_S1"]

WeightEnsemble = Literal["gaussian", "orthogonal"]

#: First coefficient s_1 of the S-transform of W^T W (Pennington et al. 2017, eq. 11).
S_TRANSFORM_S1 = {"gaussian": -1.0, "orthogonal": 0.0}


@dataclass(frozen=True)
class JacobianSpectrum:
    """Moments of the squared singular values of the input-output Jacobian at criticality.

    Attributes:
        activation: the activation's name.
        depth: number of layers L.
        weights: "gaussian" or "orthogonal".
        weight_std: the critical sigma_w used.
        bias_std: sigma_b.
        q_star: the variance fixed point.
        mu1: E[f'(sqrt(q*) z)^2].
        mu2: E[f'(sqrt(q*) z)^4].
        mean: mean squared singular value, (sigma_w^2 mu1)^L = 1 at criticality.
        variance: variance of the squared singular values, L (mu2 / mu1^2 - 1 - s1).
    """

    activation: str
    depth: int
    weights: WeightEnsemble
    weight_std: float
    bias_std: float
    q_star: float
    mu1: float
    mu2: float
    mean: float
    variance: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


def _derivative_powers(act: Activation, q: float) -> tuple[float, float]:
    """(mu1, mu2) at q*; homogeneous activations do not depend on q (their q* may be anything)."""
    q_eval = np.array(1.0 if act.positively_homogeneous else q)
    mu1 = float(gaussian_expectation(lambda x: act.derivative(x) ** 2, q_eval))
    mu2 = float(gaussian_expectation(lambda x: act.derivative(x) ** 4, q_eval))
    return mu1, mu2


def jacobian_spectrum(
    activation: str | Activation | Callable[[Any], Any],
    depth: int,
    *,
    weights: WeightEnsemble = "gaussian",
    bias_std: float = 0.0,
) -> JacobianSpectrum:
    """Mean and variance of the Jacobian's squared singular values at the critical initialization.

    Pennington, Schoenholz & Ganguli 2017, eqs. 13-16, at chi_1 = sigma_w^2 mu_1 = 1:

    .. math::
        m_1 = (\\sigma_w^2 \\mu_1)^L = 1,\\qquad
        \\sigma^2_{JJ^T} = L\\Big(\\frac{\\mu_2}{\\mu_1^2} - 1 - s_1\\Big)

    Args:
        activation: a registered name, an Activation or a callable.
        depth: number of layers L >= 1.
        weights: "gaussian" (s_1 = -1) or "orthogonal" (s_1 = 0).
        bias_std: sigma_b >= 0; sigma_w is :func:`numstab.theory.critical_weight_std` at it.

    Examples:
        >>> round(jacobian_spectrum("relu", 4, weights="orthogonal").variance, 9)  # relu: mu2 / mu1^2 = 2
        4.0
    """
    check_int_at_least("depth", depth, 1, 2**53)  # a float-sized depth: the moments grow linearly in it
    meanfield.check_std("bias_std", bias_std)
    if weights not in S_TRANSFORM_S1:
        raise UnknownNameError("weights", weights, S_TRANSFORM_S1)
    act = meanfield.resolve(activation)
    sigma_w = meanfield.critical_weight_std(act, bias_std)
    q = meanfield.fixed_point(act, sigma_w, bias_std)
    mu1, mu2 = _derivative_powers(act, q)
    return JacobianSpectrum(
        activation=act.name,
        depth=depth,
        weights=weights,
        weight_std=sigma_w,
        bias_std=float(bias_std),
        q_star=q,
        mu1=mu1,
        mu2=mu2,
        mean=(sigma_w**2 * mu1) ** depth,
        variance=depth * (mu2 / mu1**2 - 1.0 - S_TRANSFORM_S1[weights]),
    )
