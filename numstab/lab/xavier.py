"""Xavier initialization measured: forward and backward variance through a deep linear stack.

The chapter's argument (Glorot & Bengio 2010): a linear layer o_i = sum_j w_ij x_j with Var w = sigma^2
and Var x = gamma^2 has Var o = n_in sigma^2 gamma^2 forward and multiplies the gradient's variance by
n_out sigma^2 backward; Xavier's sigma^2 = 2 / (n_in + n_out) keeps both at 1 when n_in = n_out and
compromises otherwise. :func:`xavier` measures both through a stack of layers, normal and uniform side
by side, with equal widths and with widths alternating between two sizes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from numstab.errors import (
    InvalidArgumentError,
    UnknownNameError,
    check_int_at_least,
    check_positive,
    check_seed,
)
from numstab.lab._result import LabResult
from numstab.lab.comparison import Comparison
from numstab.resources import check_memory

__all__ = ["xavier", "XavierVariance", "XavierRun", "SCHEMES"]

SCHEMES = {"xavier_normal": torch.nn.init.xavier_normal_, "xavier_uniform": torch.nn.init.xavier_uniform_}


@dataclass(frozen=True, repr=False)
class XavierRun(LabResult):
    """One stack: an init scheme and a list of widths.

    Attributes:
        scheme: "xavier_normal" or "xavier_uniform" (torch.nn.init).
        widths: n_0, ..., n_L (layer l maps n_{l-1} -> n_l).
        forward_var: measured E[h_l^2] for l = 0..L (mean over batch, units and trials), shape (L + 1,).
        forward_theory: gamma^2 prod_{j <= l} n_in sigma^2 (= 2 n_in / (n_in + n_out) per layer), (L + 1,).
        backward_var: measured E[g_l^2] of the gradient w.r.t. h_l, from unit variance at h_L, (L + 1,).
        backward_theory: prod_{j > l} n_out sigma^2 (= 2 n_out / (n_in + n_out) per layer), (L + 1,).
        forward_log10_spread: standard deviation over the trials of log10 of the forward variance, (L + 1,).
        backward_log10_spread: the same for the backward variance, (L + 1,).
    """

    scheme: str
    widths: tuple[int, ...]
    forward_var: np.ndarray
    forward_theory: np.ndarray
    backward_var: np.ndarray
    backward_theory: np.ndarray
    forward_log10_spread: np.ndarray
    backward_log10_spread: np.ndarray


@dataclass(frozen=True, repr=False)
class XavierVariance(LabResult):
    """Result of :func:`xavier`.

    Attributes:
        runs: one :class:`XavierRun` per (widths, scheme), equal widths first.
        gamma: standard deviation of the inputs.
        batch: inputs per trial; trials: independent weight draws; seed: the torch generator's seed.
    """

    runs: tuple[XavierRun, ...]
    gamma: float
    batch: int
    trials: int
    seed: int

    def comparisons(self) -> list[Comparison]:
        """Per stack, the last layer's forward variance and the first layer's backward variance.

        Agreement: the measured variance is within ``4 s / sqrt(trials) + 0.05`` decades of the chapter's
        product of n_in sigma^2 (forward) or n_out sigma^2 (backward) factors, s being the spread over
        the trials of log10 of that variance (four standard errors of the mean log, plus 0.05 for the
        finite batch).

        Examples:
            >>> r = xavier(width=16, other_width=64, depth=4, batch=32, trials=2, schemes=["xavier_normal"])
            >>> [row.quantity for row in r.comparisons()][:2]
            ['normal 16/16: fwd Var, last', 'normal 16/16: bwd Var, first']
        """
        rows = []
        for run in self.runs:
            name = f"{run.scheme.replace('xavier_', '')} {run.widths[0]}/{run.widths[1]}"
            chapter = "1 when n_in = n_out" if len(set(run.widths)) == 1 else "compromise"
            for what, got, want, spread in (
                ("fwd Var, last", run.forward_var[-1], run.forward_theory[-1], run.forward_log10_spread[-1]),
                ("bwd Var, first", run.backward_var[0], run.backward_theory[0], run.backward_log10_spread[0]),
            ):
                ok = abs(math.log10(got / want)) < 4 * spread / math.sqrt(self.trials) + 0.05
                rows.append(Comparison(f"{name}: {what}", chapter, got, want, agrees=ok))
        return rows


#: The largest input std: its square, the predicted forward variance, stays finite in float64.
_GAMMA_MAX = 1e100


def xavier(
    *,
    width: int = 128,
    other_width: int = 512,
    depth: int = 20,
    schemes: Sequence[str] = tuple(SCHEMES),
    gamma: float = 1.0,
    batch: int = 128,
    trials: int = 4,
    seed: int = 0,
) -> XavierVariance:
    """Measure forward and backward variance through ``depth`` Xavier-initialized linear layers.

    .. math::
        \\operatorname{Var}[o] = n_\\mathrm{in}\\sigma^2\\gamma^2,\\qquad
        \\operatorname{Var}[\\partial_x] = n_\\mathrm{out}\\sigma^2\\operatorname{Var}[\\partial_o],\\qquad
        \\sigma^2 = \\frac{2}{n_\\mathrm{in} + n_\\mathrm{out}}

    (Glorot & Bengio 2010). Uniform Xavier draws U(-a, a) with a = sqrt(6 / (n_in + n_out)), the same
    variance. With widths alternating ``width``, ``other_width``, ... each pair of layers multiplies both
    variances by 4 n m / (n + m)^2 < 1: Xavier's compromise shrinks the signal when n_in != n_out.

    Args:
        width: the equal width, and the first of the alternating widths.
        other_width: the second alternating width.
        depth: number of layers.
        schemes: any of "xavier_normal", "xavier_uniform".
        gamma: standard deviation of the inputs (> 0).
        batch: inputs per trial.
        trials: independent weight draws (the variances are averaged over them).
        seed: seed of the torch generator (weights, inputs and output gradients).

    Examples:
        >>> r = xavier(width=16, other_width=64, depth=4, batch=32, trials=2)
        >>> [(run.scheme, run.widths[:3]) for run in r.runs][:3]
        [('xavier_normal', (16, 16, 16)), ('xavier_uniform', (16, 16, 16)), ('xavier_normal', (16, 64, 16))]
        >>> round(float(r.runs[2].forward_theory[2]), 4)   # (2*16/80) * (2*64/80)
        0.64
    """
    width = check_int_at_least("width", width, 1)
    other_width = check_int_at_least("other_width", other_width, 1)
    depth = check_int_at_least("depth", depth, 1)
    batch = check_int_at_least("batch", batch, 1)
    trials = check_int_at_least("trials", trials, 1)
    gamma = check_positive("gamma", gamma)
    if gamma > _GAMMA_MAX:
        raise InvalidArgumentError(
            f"gamma must be <= 1e100, got {gamma!r}: gamma**2 would overflow; pass a smaller gamma"
        )
    for s in schemes:
        if s not in SCHEMES:
            raise UnknownNameError("scheme", s, SCHEMES)
    seed = check_seed("seed", seed)
    widest = max(width, other_width)
    # one trial's float32 weights and activations; ~200 bytes per recorded scalar tensor of every trial
    need = 4.0 * depth * widest * widest + 16.0 * batch * widest + 4 * 200.0 * trials * (depth + 1)
    check_memory(f"width={width}, other_width={other_width}, depth={depth}, batch={batch}, trials={trials}",
                 need, "pass smaller widths, a smaller depth or fewer trials")
    gen = torch.Generator().manual_seed(seed)
    stacks = [(width,) * (depth + 1), tuple(width if i % 2 == 0 else other_width for i in range(depth + 1))]
    runs = tuple(_run(s, w, gamma, batch, trials, gen) for w in stacks for s in schemes)
    return XavierVariance(runs=runs, gamma=gamma, batch=batch, trials=trials, seed=seed)


def _run(scheme: str, widths: tuple[int, ...], gamma: float, batch: int, trials: int, gen) -> XavierRun:
    fwd, bwd = [], []
    for _ in range(trials):
        weights = [
            SCHEMES[scheme](torch.empty(n_out, n_in), generator=gen)
            for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
        ]
        h = gamma * torch.randn(batch, widths[0], generator=gen)
        fwd.append([h.square().mean()] + [(h := h @ w.T).square().mean() for w in weights])
        g = torch.randn(batch, widths[-1], generator=gen)
        bwd.append(([(g := g @ w).square().mean() for w in reversed(weights)])[::-1] + [torch.tensor(1.0)])
    fwd_t, bwd_t = torch.tensor(fwd, dtype=torch.float64), torch.tensor(bwd, dtype=torch.float64)
    n_in, n_out = np.array(widths[:-1], float), np.array(widths[1:], float)
    return XavierRun(
        scheme=scheme,
        widths=widths,
        forward_var=fwd_t.mean(0).numpy(),
        forward_theory=gamma**2 * np.concatenate(([1.0], np.cumprod(2 * n_in / (n_in + n_out)))),
        backward_var=bwd_t.mean(0).numpy(),
        backward_theory=np.concatenate((np.cumprod((2 * n_out / (n_in + n_out))[::-1])[::-1], [1.0])),
        forward_log10_spread=_log_spread(fwd_t),
        backward_log10_spread=_log_spread(bwd_t),
    )


def _log_spread(values: torch.Tensor) -> np.ndarray:
    logs = values.log10()
    return (logs.std(0) if values.shape[0] > 1 else torch.zeros(values.shape[1], dtype=values.dtype)).numpy()
