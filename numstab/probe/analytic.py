"""Mean-field predictions beside the measurements, where a layer stack matches the theory's assumptions.

For a dense or convolutional layer ``j`` fed by a registered activation ``f`` applied to the output
``h_i`` of the previous dense/conv layer (calls ``D_i, f, D_j`` in a row), with weights of std
``sigma_w / sqrt(fan_in)`` and biases of std ``sigma_b``, mean-field theory (Poole et al. 2016,
Schoenholz et al. 2017) predicts from the measured ``q_i = E[h_i²]``:

.. math::

    E[h_j^2] = \\sigma_w^2\\, E_z\\big[f(\\sqrt{q_i}\\, z)^2\\big] + \\sigma_b^2, \\qquad
    \\frac{E[g_{h_i}^2]}{E[g_{h_j}^2]}
    = \\sigma_w^2\\, \\frac{n_\\text{out}}{n_\\text{in}}\\, E_z\\big[f'(\\sqrt{q_i}\\, z)^2\\big]

with ``z ~ N(0, 1)`` and the fans ``n_in``, ``n_out`` of layer ``j``; the second is the backward
pass ``g_x = W^T g_h``, ``g_{h_i} = f'(h_i) g_x``.
The expectations come from :mod:`numstab.theory`. The prediction assumes wide layers with independent
Gaussian weights of zero mean; a trained or structured weight breaks it, and then the gap is the news.

Examples:
    >>> from numstab.probe.report import LayerReport
    >>> def dense(name, q, g):
    ...     return LayerReport(name, "Linear", 0.0, q**0.5, g**0.5, 2**0.5 / 10, None, 0.0, 0, {}, 0,
    ...                        activation_second_moment=q, grad_second_moment=g, fan_in=100, fan_out=100)
    >>> relu = LayerReport("1", "ReLU", 0.0, 1.0, 1.0, None, None, 0.0, 0, {}, 0)
    >>> out = annotate([dense("0", 2.0, 1.0), relu, dense("2", 2.0, 1.0)], {"1": "relu"})
    >>> round(out[2].theory_second_moment, 9), round(out[2].theory_grad_factor, 9)
    (2.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from numstab import activations
from numstab.probe.report import LayerReport

__all__ = ["annotate", "activation_of"]

#: The registered activation a torch module computes (kept here under its old name; the table lives in
#: :func:`numstab.activations.from_module`).
activation_of = activations.from_module


def annotate(layers: Sequence[LayerReport], acts: dict[str, Any]) -> list[LayerReport]:
    """Fill ``theory_*`` and ``measured_grad_factor`` of each dense/conv layer preceded by ``D, f``.

    Args:
        layers: the per-call reports in call order.
        acts: ``{layer name: activation}`` for the activation calls (names or Activations).

    Returns:
        A new list; layers that do not match the pattern are returned unchanged.
    """
    out = list(layers)
    for j in range(2, len(out)):
        prev, act, layer = out[j - 2], out[j - 1], out[j]
        if act.name in acts and _dense(prev) and _dense(layer):
            out[j] = _predict(prev, activations.get(acts[act.name]), layer)
    return out


def _dense(layer: LayerReport) -> bool:
    return layer.kind.startswith(("Linear", "Conv")) and layer.fan_in is not None and not layer.nonfinite


def _predict(prev: LayerReport, act: activations.Activation, layer: LayerReport) -> LayerReport:
    from numstab.theory import chi1_at, variance_map

    q = prev.activation_second_moment
    sigma_w = (layer.weight_std or 0.0) * math.sqrt(layer.fan_in or 0)
    q_next = float(variance_map(act, sigma_w, layer.bias_std or 0.0, q))
    # chi1_at = sigma_w^2 E[f'(sqrt(q) z)^2]; the gradient's per-element second moment also scales
    # by fan_out / fan_in (backward sums over fan_out, the weights are normalised by fan_in)
    factor = float(chi1_at(act, sigma_w, q)) * (layer.fan_out or 0) / (layer.fan_in or 1)
    measured = None
    if prev.grad_second_moment is not None and layer.grad_second_moment:
        measured = prev.grad_second_moment / layer.grad_second_moment
    return replace(
        layer, theory_second_moment=q_next, theory_grad_factor=factor, measured_grad_factor=measured
    )
