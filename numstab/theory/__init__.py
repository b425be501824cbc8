"""Signal-propagation theory for any activation: pure numpy/scipy, no torch.

Mean-field theory of deep networks at initialization (Poole et al. 2016; Schoenholz et al. 2017),
random matrix products (Newman 1986) and Jacobian spectra (Pennington et al. 2017). It predicts,
before anything is trained, whether gradients vanish or explode, at which initialization they do
neither, and how deep a network can be and still train.

Conventions follow the papers: weights ~ N(0, weight_std^2 / fan_in), biases ~ N(0, bias_std^2).
Activations are registry names, :class:`numstab.activations.Activation` objects or callables,
which are called on float64 numpy arrays.

Examples:
    >>> import numstab.theory as theory
    >>> round(theory.critical_weight_std("relu") ** 2, 12)
    2.0
    >>> theory.summary("tanh", 1.5**0.5, 0.05**0.5).phase
    'ordered'
"""

from __future__ import annotations

# Gaussian expectations, split at the kink at 0.
from numstab.theory.quadrature import bivariate_expectation, gaussian_expectation, hermite_coefficients

# One initialization: variance and correlation maps, fixed points, chi_1, depth scales.
from numstab.theory.meanfield import (  # isort: skip
    CRITICAL_RTOL,
    chi1,
    chi1_at,
    chi_c,
    correlation_fixed_point,
    correlation_map,
    critical_weight_std,
    critical_weight_stds,
    depth_scales,
    fixed_point,
    predict_gradient_norms,
    trainable_depth,
    variance_map,
)

# Everything about one initialization in one result.
from numstab.theory.summary import TheorySummary, classify_phase, summary  # isort: skip

# The whole plane of initializations, vectorized.
from numstab.theory.phase import PhaseDiagram, phase_diagram  # isort: skip

# Products of random matrices and Jacobian spectra.
from numstab.theory.products import (  # isort: skip
    LogGrowth, critical_scale, lyapunov_exponent, lyapunov_spectrum, sample_log_growth,
)
from numstab.theory.spectrum import JacobianSpectrum, jacobian_spectrum  # isort: skip

__all__ = [
    # quadrature
    "gaussian_expectation",
    "bivariate_expectation",
    "hermite_coefficients",
    # mean field
    "variance_map",
    "fixed_point",
    "chi1",
    "chi1_at",
    "critical_weight_std",
    "critical_weight_stds",
    "correlation_map",
    "correlation_fixed_point",
    "chi_c",
    "depth_scales",
    "trainable_depth",
    "predict_gradient_norms",
    "CRITICAL_RTOL",
    # summary
    "TheorySummary",
    "summary",
    "classify_phase",
    # phase diagram
    "PhaseDiagram",
    "phase_diagram",
    # products and spectra
    "lyapunov_exponent",
    "lyapunov_spectrum",
    "critical_scale",
    "LogGrowth",
    "sample_log_growth",
    "JacobianSpectrum",
    "jacobian_spectrum",
]
