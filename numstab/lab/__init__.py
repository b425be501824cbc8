"""The experiments of D2L "Numerical Stability and Initialization", reproduced, vectorized, beside theory.

Each function runs with no arguments at the chapter's settings and returns a frozen dataclass with
``to_dict()`` and a notebook ``_repr_html_``; nothing here prints or plots (see :mod:`numstab.render.lab`
and ``numstab lab --help``).

==========================  =========================================================================
:func:`activation_curves`   sigmoid, tanh, relu, 4 sigmoid - 2 and their autograd gradients on [-8, 8)
:func:`matrix_products`     products of 100 random 4x4 matrices against the top Lyapunov exponent
:func:`mlp_gradients`       the lecture's 50-layer synthetic MLP gradient against chi_1 ** l
:func:`taylor`              f(0), f'(0): which activations look like the identity near 0
:func:`xavier`              forward and backward variance through a deep Xavier-initialized stack
:func:`symmetry`            two hidden units with constant init never separate; dropout separates them
:func:`precision`           1.5^100 and 0.8^100 per format; the layer where each format over/underflows
:func:`exercises`           the chapter's four exercises answered by computation
``training``                training on real data (:mod:`numstab.lab.training`)
``explorer``                what ``numstab explore`` draws, for any settings (:mod:`numstab.lab.explorer`)
==========================  =========================================================================

Every result's ``comparisons()`` returns :class:`Comparison` rows: the chapter's claim, the measurement,
the theory, the regime and whether they agree (the verdicts ``numstab tour`` prints).

Examples:
    >>> from numstab import lab
    >>> lab.taylor(["sigmoid"]).verdict("sigmoid")
    False
"""

from __future__ import annotations

# Each module is named after its function. Importing the function here, after its module, makes
# ``numstab.lab.taylor`` the function; ``from numstab.lab.taylor import TaylorTable`` still reads the module
# (``import numstab.lab.taylor as m`` does not: it gives the function).
from numstab.lab import explorer, training
from numstab.lab.activation_curves import activation_curves
from numstab.lab.comparison import Comparison
from numstab.lab.exercises import exercises
from numstab.lab.matrix_products import matrix_products
from numstab.lab.mlp_gradients import mlp_gradients
from numstab.lab.precision import precision
from numstab.lab.symmetry import symmetry
from numstab.lab.taylor import taylor
from numstab.lab.xavier import xavier

__all__ = [
    "activation_curves", "matrix_products", "mlp_gradients", "taylor", "xavier", "symmetry", "precision",
    "exercises", "training", "explorer", "Comparison",
]
