"""Growth rate of products of random matrices: the chapter's exploding product, made exact.

The chapter multiplies 100 random 4x4 matrices with N(0, 1) entries and watches the entries blow
up. How fast is given by the top Lyapunov exponent (Newman 1986): for iid N(0, s^2) entries,
||M v||^2 / ||v||^2 = s^2 chi^2_k exactly, whatever the unit vector v (rotational invariance), so
the log norm of a product grows by E[ln(s^2 chi^2_k)] / 2 per factor.

Examples:
    >>> round(lyapunov_exponent(4, 1.0), 4)
    0.558
    >>> round(critical_scale(4), 3)
    0.572
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.special

from numstab.errors import check_int_at_least, check_positive, check_seed
from numstab.resources import check_memory

__all__ = ["lyapunov_exponent", "lyapunov_spectrum", "critical_scale", "LogGrowth", "sample_log_growth"]


#: The largest matrix size the formulas take: k / 2 must be a float (k = 10**400 is not).
_K_MAX = 2**53


def lyapunov_exponent(k: int, scale: float) -> float:
    """Top Lyapunov exponent of products of k x k matrices with iid N(0, scale^2) entries (Newman 1986).

    .. math::
        \\lambda_1 = \\ln s + \\tfrac12\\big(\\ln 2 + \\psi(k/2)\\big)

    where psi is the digamma function. Products grow like exp(lambda_1 n): they explode when
    lambda_1 > 0 and vanish when lambda_1 < 0.

    Args:
        k: matrix size, >= 1.
        scale: standard deviation s of each entry, > 0.

    Examples:
        >>> round(lyapunov_exponent(4, 1.0), 5)
        0.55797
        >>> import math
        >>> euler_gamma = 0.5772156649015329  # psi(1) = -gamma
        >>> math.isclose(lyapunov_exponent(2, 1.0), 0.5 * (math.log(2) - euler_gamma))
        True
    """
    check_int_at_least("k", k, 1, _K_MAX)
    s = check_positive("scale", scale)
    return math.log(s) + 0.5 * (math.log(2.0) + float(scipy.special.digamma(0.5 * k)))


def lyapunov_spectrum(k: int, scale: float) -> list[float]:
    """All k Lyapunov exponents of products of k x k matrices with iid N(0, scale^2) entries (Newman 1986).

    .. math::
        \\lambda_i = \\ln s + \\tfrac12\\big(\\ln 2 + \\psi\\big(\\tfrac{k - i + 1}{2}\\big)\\big),
        \\qquad i = 1, \\dots, k

    The i-th singular value of the product of n factors grows like exp(lambda_i n): the product's
    condition number grows like exp((lambda_1 - lambda_k) n) whatever the scale, so a deep product
    of square Gaussian matrices is ill-conditioned even at the critical scale. ``lambda_1`` is
    :func:`lyapunov_exponent`.

    Examples:
        >>> spectrum = lyapunov_spectrum(4, 1.0)
        >>> round(spectrum[0], 5) == round(lyapunov_exponent(4, 1.0), 5), spectrum == sorted(spectrum)[::-1]
        (True, True)
    """
    check_int_at_least("k", k, 1, _K_MAX)
    s = check_positive("scale", scale)
    return [
        math.log(s) + 0.5 * (math.log(2.0) + float(scipy.special.digamma(0.5 * (k - i + 1))))
        for i in range(1, k + 1)
    ]


def critical_scale(k: int) -> float:
    """The entry std at which products of k x k Gaussian matrices neither grow nor shrink (lambda_1 = 0).

    .. math::
        s_c = \\exp\\big(-\\tfrac12(\\ln 2 + \\psi(k/2))\\big)

    Newman 1986. For k = 4 it is 0.5724; it tends to 1 / sqrt(k) for large k.

    Examples:
        >>> round(critical_scale(4), 4)
        0.5724
    """
    check_int_at_least("k", k, 1, _K_MAX)
    return math.exp(-0.5 * (math.log(2.0) + float(scipy.special.digamma(0.5 * k))))


@dataclass(frozen=True)
class LogGrowth:
    """Monte Carlo estimate of the mean log growth per factor of random matrix products.

    Attributes:
        k: matrix size.
        scale: entry standard deviation.
        steps: factors per product.
        trials: independent products.
        mean: mean over trials of ln ||M_n ... M_1 v|| / n (v a unit vector).
        std_error: standard error of ``mean``.
        seed: the numpy seed used.
    """

    k: int
    scale: float
    steps: int
    trials: int
    mean: float
    std_error: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


def sample_log_growth(
    k: int, scale: float, *, steps: int = 100, trials: int = 1000, seed: int = 0
) -> LogGrowth:
    """Estimate the top Lyapunov exponent by Monte Carlo, the check on :func:`lyapunov_exponent`.

    Applies ``steps`` fresh N(0, scale^2) matrices to a unit vector, renormalizing after each one so
    nothing overflows, for ``trials`` products at once (numpy, seeded).

    .. math::
        \\hat\\lambda = \\frac{1}{n}\\sum_{t=1}^{n} \\ln \\frac{\\|M_t v_{t-1}\\|}{\\|v_{t-1}\\|}

    Args:
        k: matrix size, >= 1.
        scale: entry std, > 0.
        steps: factors per product, >= 1.
        trials: products, >= 2.
        seed: numpy seed; same seed, same result.

    Examples:
        >>> est = sample_log_growth(4, 1.0, steps=50, trials=200, seed=0)
        >>> abs(est.mean - lyapunov_exponent(4, 1.0)) < 4 * est.std_error
        True
    """
    check_int_at_least("k", k, 1)
    check_positive("scale", scale)
    check_int_at_least("steps", steps, 1)
    check_int_at_least("trials", trials, 2)
    seed = check_seed("seed", seed)
    check_memory(f"trials={trials}, k={k}", 8.0 * trials * (3 * k * k + 4 * k + 3),
                 "pass fewer trials or a smaller k")
    rng = np.random.default_rng(seed)
    v = np.zeros((trials, k))
    v[:, 0] = 1.0
    total = np.zeros(trials)
    for _ in range(steps):
        v = np.einsum("tij,tj->ti", rng.normal(0.0, scale, size=(trials, k, k)), v)
        norm = np.linalg.norm(v, axis=1)
        total += np.log(norm)
        v /= norm[:, None]
    per_trial = total / steps
    return LogGrowth(
        k=k, scale=float(scale), steps=steps, trials=trials, mean=float(per_trial.mean()),
        std_error=float(per_trial.std(ddof=1) / math.sqrt(trials)), seed=seed,
    )
