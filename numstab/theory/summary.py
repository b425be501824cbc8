"""Everything mean-field theory says about one initialization, in one frozen result.

The CLI (`numstab theory`), the lab and `diagnose` call :func:`summary` and render or compare it;
nothing here prints.

Examples:
    >>> s = summary("tanh", 1.5**0.5, 0.05**0.5)
    >>> s.phase, round(s.chi1, 4), round(s.xi_c, 1)
    ('ordered', 0.9386, 15.8)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from numstab import display
from numstab.activations import Activation
from numstab.errors import NoCriticalPointError
from numstab.theory import meanfield

__all__ = ["TheorySummary", "summary", "classify_phase", "Phase"]

Phase = Literal["ordered", "critical", "chaotic"]


def classify_phase(chi1: float, *, rtol: float = meanfield.CRITICAL_RTOL) -> Phase:
    """"ordered" (chi_1 < 1), "critical" (|chi_1 - 1| <= rtol) or "chaotic" (chi_1 > 1); Poole et al. 2016.

    Examples:
        >>> classify_phase(0.5), classify_phase(1.0), classify_phase(2.0)
        ('ordered', 'critical', 'chaotic')
    """
    if abs(chi1 - 1.0) <= rtol:
        return "critical"
    return "ordered" if chi1 < 1.0 else "chaotic"


@dataclass(frozen=True)
class TheorySummary(display.Displayed):
    """Mean-field predictions at one (activation, weight_std, bias_std) (Schoenholz et al. 2017).

    Attributes:
        activation: the activation's name.
        weight_std: sigma_w (weights ~ N(0, sigma_w^2 / fan_in)).
        bias_std: sigma_b.
        critical_weight_std: sigma_w with chi_1 = 1 at this sigma_b; NaN where none exists.
        q_star: the pre-activation variance fixed point; inf where it diverges.
        chi1: gradient second-moment growth per layer.
        xi_q: depth scale of the variance (layers); inf at criticality or where q* diverges.
        xi_c: depth scale of the correlation (layers); inf likewise.
        phase: "ordered", "critical" or "chaotic".
        trainable_depth: 6 xi_c, roughly the deepest network that trains.
    """

    activation: str
    weight_std: float
    bias_std: float
    critical_weight_std: float
    q_star: float
    chi1: float
    xi_q: float
    xi_c: float
    phase: Phase
    trainable_depth: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (floats may be inf or NaN)."""
        return asdict(self)


def _critical_or_nan(act: Activation, bias_std: float) -> float:
    try:
        return meanfield.critical_weight_std(act, bias_std)
    except NoCriticalPointError:
        return math.nan


def summary(
    activation: str | Activation | Callable[[Any], Any],
    weight_std: float | None = None,
    bias_std: float = 0.0,
) -> TheorySummary:
    """Collect critical weight std, q*, chi_1, depth scales and the phase at one initialization.

    Poole et al. 2016; Schoenholz et al. 2017. ``weight_std=None`` means the critical one.

    .. math::
        \\chi_1 = \\sigma_w^2 E[f'(\\sqrt{q^*} z)^2],\\qquad L_{\\max} \\approx 6\\,\\xi_c

    Args:
        activation: a registered name, an Activation or a callable.
        weight_std: sigma_w >= 0, or None for the critical value.
        bias_std: sigma_b >= 0.

    Raises:
        InvalidArgumentError: a negative or non-finite std.
        NoCriticalPointError: weight_std=None where no critical one exists.

    Examples:
        >>> s = summary("relu")
        >>> s.phase, round(s.weight_std ** 2, 12)
        ('critical', 2.0)
    """
    act = meanfield.resolve(activation)
    critical = _critical_or_nan(act, bias_std)
    if weight_std is None:
        weight_std = meanfield.critical_weight_std(act, bias_std) if math.isnan(critical) else critical
    q_star, growth, xi_q, xi_c = meanfield.at_fixed_point(act, weight_std, bias_std)  # q* solved once
    return TheorySummary(
        activation=act.name,
        weight_std=float(weight_std),
        bias_std=float(bias_std),
        critical_weight_std=critical,
        q_star=q_star,
        chi1=growth,
        xi_q=xi_q,
        xi_c=xi_c,
        phase=classify_phase(growth),
        trainable_depth=6.0 * xi_c,
    )
