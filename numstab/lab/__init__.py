"""The experiments of D2L "Numerical Stability and Initialization", reproduced, vectorized, beside theory.

Each function runs with no arguments at the chapter's settings and returns a frozen dataclass with
``to_dict()`` and a notebook ``_repr_html_``; nothing here prints or plots (see :mod:`numstab.report.lab`
and ``numstab lab --help``).

==========================  =========================================================================
:func:`activation_curves`   sigmoid, tanh, relu, 4 sigmoid - 2 and their autograd gradients on [-8, 8)
:func:`matrix_products`     products of 100 random 4x4 matrices against the top Lyapunov exponent
:func:`mlp_gradients`       the lecture's 50-layer synthetic MLP gradient against chi_1 ** l
:func:`taylor`              f(0), f'(0): which activations look like the identity near 0
:func:`xavier`              forward and backward variance through a deep Xavier-initialized stack
:func:`symmetry`            two hidden units with constant init never separate; dropout separates them
:func:`precision`           1.5^100 and 0.8^100 per format; the layer where each format over/underflows
``training``                training on real data (:mod:`numstab.lab.training`)
``explorer``                what ``numstab explore`` draws, for any settings (:mod:`numstab.lab.explorer`)
==========================  =========================================================================

Examples:
    >>> from numstab import lab
    >>> lab.taylor(["sigmoid"]).verdict("sigmoid")
    False
"""

from __future__ import annotations

import importlib
from typing import Any

_FUNCTIONS = {
    "activation_curves": "curves",
    "matrix_products": "products",
    "mlp_gradients": "mlp",
    "taylor": "taylor_check",
    "xavier": "xavier_variance",
    "symmetry": "symmetry_check",
    "precision": "formats",
}
_SUBMODULES = {
    "training",
    "explorer",
    "curves",
    "products",
    "mlp",
    "taylor_check",
    "xavier_variance",
    "symmetry_check",
    "formats",
}

__all__ = sorted(_FUNCTIONS) + ["training", "explorer"]


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"numstab.lab.{_FUNCTIONS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"numstab.lab.{name}")
    raise AttributeError(f"module 'numstab.lab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _SUBMODULES)
