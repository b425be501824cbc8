"""Fused gradient norms that stay exact at the extremes of float32.

Why not ``torch.linalg.vector_norm`` alone: torch squares float32 entries without rescaling, so a
gradient whose entries are ``1e-23`` has norm ``0`` and a vector of ``1e19`` s has norm ``inf``. A monitor
built on that would report vanished gradients as exactly zero and raise false non-finite alarms on large
finite ones. LAPACK's ``nrm2`` avoids this by scaling (Blue 1978, "A portable Fortran program to find the
Euclidean norm of a vector"); here the scaling is replaced by float64 accumulation where it is needed.

The plan (one fused pass, one transfer):

1. :func:`fast_norms`: one ``torch._foreach_norm`` over every gradient (a multi-tensor kernel on CUDA,
   vectorized loops on CPU), float32, kept on the device.
2. The host reads that vector once. A float32 norm ``v`` with ``1e-10 <= v < inf`` is already exact to
   float32 rounding (see :data:`SAFE_LOW` for the bound); ``NaN`` is a genuine NaN (squares overflow to
   ``inf``, never to NaN).
3. :func:`exact_norms` recomputes, in float64, only the tensors outside that range (zero, tiny, or
   ``inf`` that may be an overflow): float32 squares of finite entries never overflow or underflow in float64
   (``(3.4e38)**2 = 1.2e77``, ``(1.4e-45)**2 = 2e-90``). Healthy steps never take this path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["SAFE_LOW", "fast_norms", "exact_norms", "needs_exact", "group_norms"]

#: Smallest float32 norm trusted without a float64 recheck. Entries whose squares underflow (``|x| <
#: 1.1e-19``) lose at most ``n * 1.2e-38`` of the squared norm; against ``SAFE_LOW**2 = 1e-20`` that is a
#: relative error below ``1.2e-18 * n``, under float32 rounding for any tensor of fewer than 1e10 entries.
SAFE_LOW = 1e-10


def fast_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return the float32 L2 norm of each tensor, fused, as one vector on the device.

    .. math::

        v_i = \\Big(\\sum_j g_{ij}^2\\Big)^{1/2}

    One multi-tensor kernel (``torch._foreach_norm``), no host synchronisation. Values are float32 and may
    be ``0`` or ``inf`` at the extremes; :func:`needs_exact` says which to recompute.

    Args:
        grads: gradient tensors, all on one device.

    Examples:
        >>> fast_norms([torch.full((4,), 3.0), torch.zeros(2)]).tolist()
        [6.0, 0.0]
    """
    norms = torch._foreach_norm([g.detach() for g in grads], 2)
    device = norms[0].device
    return torch.stack([n.to(device=device, dtype=torch.float32) for n in norms])


def needs_exact(values: Sequence[float]) -> list[int]:
    """Return the indices of float32 norms that may be wrong: zero, under :data:`SAFE_LOW`, or ``inf``.

    ``NaN`` is left out: a NaN norm means a NaN entry, which float64 would report the same way.

    Args:
        values: float32 norms read back on the host.

    Examples:
        >>> needs_exact([1.0, 0.0, float("inf"), float("nan"), 1e-20])
        [1, 2, 4]
    """
    return [i for i, v in enumerate(values) if not math.isnan(v) and not (SAFE_LOW <= v < math.inf)]


def exact_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """Return the L2 norm of each tensor accumulated in float64: exact for any finite float32 entries.

    Blue (1978) scales by the largest entry to avoid over/underflow; squaring float32 values in float64
    achieves the same without a second pass, since no float32 square leaves float64's range.

    Args:
        grads: gradient tensors (any floating dtype up to float64).

    Examples:
        >>> [f"{v:.6e}" for v in exact_norms([torch.full((100,), 1e-30), torch.full((4,), 1e25)]).tolist()]
        ['1.000000e-29', '2.000000e+25']
    """
    norms = [torch.linalg.vector_norm(g.detach(), dtype=torch.float64) for g in grads]
    if not norms:
        return torch.empty(0, dtype=torch.float64)
    device = norms[0].device
    return torch.stack([n.to(device) for n in norms])


def group_norms(norms: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, float]:
    """Combine per-tensor norms into per-group norms and the global norm, in float64.

    .. math::

        \\|g_G\\| = \\Big(\\sum_{i \\in G} \\|g_i\\|^2\\Big)^{1/2}, \\qquad
        \\|g\\| = \\Big(\\sum_i \\|g_i\\|^2\\Big)^{1/2}

    A non-finite member makes its group and the global norm non-finite (``inf`` or ``NaN``).

    Args:
        norms: float64 per-tensor norms, shape ``(P,)``.
        groups: group index of each tensor, shape ``(P,)``, values in ``[0, n_groups)``.
        n_groups: number of groups.

    Examples:
        >>> import numpy as np
        >>> layer, total = group_norms(np.array([3.0, 4.0, 12.0]), np.array([0, 0, 1]), 2)
        >>> layer.tolist(), total
        ([5.0, 12.0], 13.0)
    """
    squares = norms.astype(np.float64) ** 2
    layer = np.sqrt(np.bincount(groups, weights=squares, minlength=n_groups))
    return layer, float(math.sqrt(squares.sum()))
