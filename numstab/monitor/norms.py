"""Fused gradient norms that stay exact at the extremes of float32.

Why not ``torch.linalg.vector_norm`` alone: torch squares float32 entries without rescaling, so a
gradient whose entries are ``1e-23`` has norm ``0`` and a vector of ``1e19`` s has norm ``inf``. A monitor
built on that would report vanished gradients as exactly zero and raise false non-finite alarms on large
finite ones. LAPACK's ``nrm2`` avoids this by scaling (Blue 1978, "A portable Fortran program to find the
Euclidean norm of a vector"); here the scaling is replaced by float64 accumulation where it is needed.

The plan (one fused pass, one transfer):

1. :func:`fast_norms`: one ``torch._foreach_norm`` over every gradient, kept on the device. On CUDA the
   fused kernel accumulates in float64 (``dtype=torch.float64``): exact in the single pass. On CPU torch's
   float64 reduction kernels are about 30x slower than float32, so the pass is float32.
2. The host reads that vector once. A float32 norm ``v`` with ``1e-10 <= v < inf`` has no under- or
   overflow (see :data:`SAFE_LOW` for the bound); ``NaN`` is a genuine NaN (squares overflow to ``inf``,
   never to NaN).
3. :func:`exact_norms` recomputes only the tensors outside that range (zero, tiny, or ``inf`` that may be an
   overflow) in float64, a chunk at a time: no float32 square leaves float64's range
   (``(3.4e38)**2 = 1.2e77``, ``(1.4e-45)**2 = 2e-90``). Healthy steps never take this path.

Note:
    Accuracy of the CPU float32 pass: torch's CPU norm kernel accumulates long rows in float32, so its
    relative error grows with the tensor size (measured: 7e-7 for 262,144 Gaussian entries, 8e-5 for 4.2
    million; 1.4e-4 and 1.5e-3 for the same sizes of equal entries). The same error is in
    ``p.grad.norm()``. The float64 paths (CUDA, and the recheck) are exact to about 1e-15.
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
    """Return the L2 norm of each tensor, fused, as one vector on the device.

    .. math::

        v_i = \\Big(\\sum_j g_{ij}^2\\Big)^{1/2}

    One multi-tensor ``torch._foreach_norm``, no host synchronisation. On CUDA the squares are accumulated
    in float64 inside the same fused kernel (``dtype=torch.float64``; checked on an H100: exact for entries
    of ``1e-30`` and ``1e25``), so the result is exact and float64. Elsewhere torch's float64 kernels are
    about 30x slower than float32, so the norm is float32 and may be ``0`` or ``inf`` at the extremes;
    :func:`needs_exact` says which to recompute.

    Args:
        grads: gradient tensors, all on one device.

    Examples:
        >>> fast_norms([torch.full((4,), 3.0), torch.zeros(2)]).tolist()
        [6.0, 0.0]
    """
    grads = list(grads)
    exact = grads[0].is_cuda
    with torch.no_grad():  # gradients made with create_graph=True must not grow a graph here
        norms = torch._foreach_norm(grads, 2, dtype=torch.float64) if exact else torch._foreach_norm(grads, 2)
        try:
            return torch.stack(norms).to(torch.float64 if exact else torch.float32)
        except RuntimeError:  # model-parallel: parameters on several devices
            return torch.stack([n.to(device=norms[0].device, dtype=torch.float32) for n in norms])


def needs_exact(values: Sequence[float] | np.ndarray) -> list[int]:
    """Return the indices of float32 norms that may be wrong: zero, under :data:`SAFE_LOW`, or ``inf``.

    ``NaN`` is left out: a NaN norm means a NaN entry, which float64 would report the same way.

    Args:
        values: float32 norms read back on the host.

    Examples:
        >>> needs_exact([1.0, 0.0, float("inf"), float("nan"), 1e-20])
        [1, 2, 4]
    """
    # the common case, two builtin passes: a leading NaN fails both tests, and a later NaN is skipped by both
    # (it compares false), so no value outside the range can hide behind one
    if min(values) >= SAFE_LOW and max(values) < math.inf:
        return []
    v = np.asarray(values, dtype=np.float64)
    return np.flatnonzero(~np.isnan(v) & ((v < SAFE_LOW) | (v == math.inf))).tolist()


def exact_norms(grads: Sequence[torch.Tensor], *, chunk: int = 1 << 20) -> torch.Tensor:
    """Return the L2 norm of each tensor accumulated in float64: exact for any finite float32 entries.

    Blue (1978), ACM TOMS 4(1), scales by the largest entry to avoid under- and overflow; squaring the
    float32 (or 16-bit) entries in float64 achieves the same, since none of their squares leaves float64's
    range. Each tensor is upcast ``chunk`` entries at a time, so the temporary stays bounded:

    .. math::

        \\|g\\| = \\Big(\\sum_c \\|\\operatorname{f64}(g_c)\\|^2\\Big)^{1/2}

    Args:
        grads: the tensors to recompute.
        chunk: entries upcast at a time (8 MiB of float64 by default).

    Examples:
        >>> g = [torch.full((100,), 1e-30), torch.full((4,), 1e25)]
        >>> [f"{v:.9e}" for v in exact_norms(g).tolist()]
        ['1.000000003e-29', '1.999999912e+25']
    """
    if not grads:
        return torch.empty(0, dtype=torch.float64)
    with torch.no_grad():
        norms = [_norm64(g.detach().reshape(-1), chunk) for g in grads]
    return torch.stack([n.to(norms[0].device) for n in norms])


def _norm64(flat: torch.Tensor, chunk: int) -> torch.Tensor:
    if flat.dtype == torch.float64:
        # float64 entries above ~1e154 (below ~1e-154) overflow (flush) their squares: scale by the largest
        # finite entry (Blue 1978)
        finite = flat[torch.isfinite(flat)]
        top = finite.abs().max() if finite.numel() else flat.new_zeros(())
        if float(top) > 1e150 or 0.0 < float(top) < 1e-150:
            return top * _norm64(flat / top, chunk)
    parts = [torch.linalg.vector_norm(c.double()) for c in flat.split(chunk)]
    return torch.linalg.vector_norm(torch.stack(parts)) if len(parts) > 1 else parts[0]


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
    norms = np.asarray(norms, dtype=np.float64)
    squares = norms * norms
    layer = np.sqrt(np.bincount(groups, weights=squares, minlength=n_groups))
    return layer, float(math.sqrt(squares.sum()))
