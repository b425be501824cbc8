"""The lecture's synthetic MLP gradient: 50 random layers of width 100, the Jacobian product accumulated.

The notebook's ``synthetic_grad(K, sigma, sigma_prime, get_weight)`` repeats 10 times::

    x = randn(K, 1); h = x; y = eye(K)
    for _ in range(50):
        w = get_weight(K); a = w @ h
        y = sigma_prime(a) * (w.T @ y)      # the backward product, one layer more
        h = sigma(a)
    min |y|, averaged over the repeats

:func:`mlp_gradients` runs every (activation, scale) pair and every repeat in one batched loop, in
float32 with the product renormalized at every layer and its log-scale carried in float64 (the magnitudes
reach 1e38 and 1e-31, outside float32), and sets the measured growth beside mean-field theory's chi_1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.special
import torch

from numstab.activations import get as get_activation
from numstab.errors import InvalidArgumentError, check_int_at_least, check_seed
from numstab.lab._result import LabResult
from numstab.lab._validate import activation_list, scales_tuple
from numstab.lab.comparison import SILENT, Comparison, magnitude_regime
from numstab.notation import power10
from numstab.resources import check_memory

__all__ = ["mlp_gradients", "MLPGradients", "CHAPTER_ACTIVATIONS", "CHAPTER_MLP_SCALES", "LECTURE_MLP",
           "LECTURE_MLP_REGIME", "LECTURE_MLP_LOG10", "CLAIM_DECADES"]

#: The lecture's activations and normal weight scales (standard deviations of the entries).
CHAPTER_ACTIVATIONS = ("relu", "sigmoid", "scaled_sigmoid")
CHAPTER_MLP_SCALES = (0.1, 0.2, 0.4, 0.8)
XAVIER_UNIFORM = "xavier_uniform"

#: What the lecture printed for the smallest gradient entry, by (activation, init) (read off the transcript).
LECTURE_MLP = {
    ("relu", "0.1"): "~1e-9",
    ("relu", "0.2"): "reasonable",
    ("relu", "0.4"): "~1e20 (explodes)",
    ("relu", "0.8"): "explodes",
    ("relu", "xavier_uniform"): "~1e-9",
    ("sigmoid", "0.1"): "~1e-33",
    ("sigmoid", "0.8"): "~5e-5",
    ("scaled_sigmoid", "0.1"): "~0.01",
    ("scaled_sigmoid", "0.2"): "not too large",
    ("scaled_sigmoid", "0.4"): "reasonable",
    ("scaled_sigmoid", "0.8"): "reasonable",
}

#: The regime each of the lecture's words (or printed numbers) claims.
LECTURE_MLP_REGIME = {
    "~1e-9": "vanishing", "reasonable": "stable", "~1e20 (explodes)": "exploding", "explodes": "exploding",
    "~1e-33": "vanishing", "~5e-5": "vanishing", "~0.01": "stable", "not too large": "stable",
    "vanishes": "vanishing",
}  # fmt: skip

#: log10 of the numbers the lecture printed, by (activation, init).
LECTURE_MLP_LOG10 = {
    ("relu", "0.1"): -9.0, ("relu", "0.4"): 20.0, ("relu", "xavier_uniform"): -9.0,
    ("sigmoid", "0.1"): -33.0, ("sigmoid", "0.8"): math.log10(5e-5), ("scaled_sigmoid", "0.1"): -2.0,
}  # fmt: skip

#: A measured magnitude within this many decades of a number the lecture printed agrees with it (the
#: lecture printed one run's smallest entry, we report the mean log magnitude: a decade or two apart).
CLAIM_DECADES = 2.0
_LN10 = math.log(10.0)


@dataclass(frozen=True, repr=False)
class MLPGradients(LabResult):
    """Result of :func:`mlp_gradients`. ``A`` activations, ``I`` inits (the scales, then Xavier uniform).

    Attributes:
        activations: activation names, length A.
        inits: init labels, length I: the scales as text ("0.1") and "xavier_uniform" if asked.
        weight_scales: raw standard deviation of each weight entry per init, shape (I,)
            (Xavier uniform: sqrt(6 / (2 K)) / sqrt(3) = 1 / sqrt(K)).
        width: K, depth: L, repeats: R, seed: the torch generator's seed.
        common_random_numbers: True: all (activation, init) pairs share the input x and the standard
            draws (N(0, 1) for the normal inits, U(-1, 1) for Xavier), each multiplied by its scale. A
            positively homogeneous activation (relu) then has the same f'(a) at every scale, so one run
            serves all its scales: Y_l(s) = (s / s_0)^l Y_l(s_0), exactly.
        dtype: the dtype of the matrix products ("float32" or "float64").
        log10_magnitude: mean over repeats of log10(||Y_l||_F / sqrt(K)) for l = 0..L, shape (A, I, L + 1);
            Y_0 = I, so the first column is 0.
        log10_magnitude_std: standard deviation over the repeats, shape (A, I, L + 1).
        log10_min_entry: the lecture's summary number: log10 of the mean over repeats of the smallest
            non-zero |entry| of Y_L, shape (A, I).
        zero_fraction: share of exactly-zero entries of Y_L (relu' = 0 zeroes whole rows), shape (A, I).
        chi1: theory: chi_1 at sigma_w = scale * sqrt(K) (mean-field, Poole et al. 2016), shape (A, I).
        theory_log10_magnitude: (l / 2) log10 chi_1, shape (A, I, L + 1): E ||Y_l||_F^2 / K ~ chi_1**l
            once the pre-activation variance has reached its fixed point q*.
        theory_from_input_log10_magnitude: the same theory along the way to q*: (1/2) sum_{j <= l} log10
            chi_j with chi_j = sigma_w^2 E[f'(z)^2], z ~ N(0, q_j), q_1 = sigma_w^2 E[x^2] = sigma_w^2 and
            q_{j+1} = variance_map(q_j), shape (A, I, L + 1). Equal to the former for relu.
    """

    activations: tuple[str, ...]
    inits: tuple[str, ...]
    weight_scales: np.ndarray
    width: int
    depth: int
    repeats: int
    seed: int
    common_random_numbers: bool
    dtype: str
    log10_magnitude: np.ndarray
    log10_magnitude_std: np.ndarray
    log10_min_entry: np.ndarray
    zero_fraction: np.ndarray
    chi1: np.ndarray
    theory_log10_magnitude: np.ndarray
    theory_from_input_log10_magnitude: np.ndarray

    def index(self, activation: str, init: str | float) -> tuple[int, int]:
        """Return the (activation, init) indices of a pair, e.g. ``index("relu", 0.1)``."""
        label = init if isinstance(init, str) else _label(float(init))
        if activation not in self.activations or label not in self.inits:
            raise InvalidArgumentError(
                f"no pair ({activation!r}, {label!r}) in this result: activations {self.activations}, "
                f"inits {self.inits}"
            )
        return self.activations.index(activation), self.inits.index(label)

    def comparisons(self) -> list[Comparison]:
        """One row per (activation, init): the lecture's value, the measured and predicted magnitude.

        The regime is the measured magnitude's (:func:`numstab.lab.comparison.magnitude_regime`:
        vanishing below 1e-3, exploding above 1e3). Agreement with the lecture: its claim's regime
        (:data:`LECTURE_MLP_REGIME`) is the measured one, or, for a number it printed, the measured
        magnitude is within :data:`CLAIM_DECADES` decades of it. Where the lecture is silent, the
        measured regime is the mean-field theory's. A disagreement's note gives the per-layer factor
        chi_1 that decides it.

        Examples:
            >>> r = mlp_gradients(["relu"], [0.05, 0.8], width=50, depth=20, repeats=2, xavier_uniform=False)
            >>> [(row.quantity, row.regime, row.agreement) for row in r.comparisons()]
            [('relu, 0.05', 'vanishing', 'theory: yes'), ('relu, 0.8', 'exploding', 'yes')]
        """
        return [self._row(a, i) for a in range(len(self.activations)) for i in range(len(self.inits))]

    def _row(self, a: int, i: int) -> Comparison:
        act, init = self.activations[a], self.inits[i]
        final = float(self.log10_magnitude[a, i, -1])
        theory = float(self.theory_from_input_log10_magnitude[a, i, -1])
        regime = magnitude_regime(final)
        claim = LECTURE_MLP.get((act, init), "vanishes" if act == "sigmoid" else SILENT)
        if claim == SILENT:
            agrees = regime == magnitude_regime(theory)
        else:
            printed = LECTURE_MLP_LOG10.get((act, init))
            near = printed is not None and abs(final - printed) <= CLAIM_DECADES
            agrees = regime == LECTURE_MLP_REGIME[claim] or near
        key, fields = "", ()
        if not agrees:
            chi, sigma_w = float(self.chi1[a, i]), float(self.weight_scales[i]) * math.sqrt(self.width)
            key = "note.mlp.silent" if claim == SILENT else "note.mlp"
            fields = (
                ("act", act), ("init", init), ("claim", claim), ("width", self.width), ("sigma_w", sigma_w),
                ("chi", chi), ("trend", "grows" if chi > 1 else "shrinks"), ("theory", power10(theory)),
                ("measured", power10(final)), ("depth", self.depth), ("regime", regime),
            )  # fmt: skip
        return Comparison(
            f"{act}, {init}",
            claim,
            f"{power10(final)} (min {power10(self.log10_min_entry[a, i])})",
            power10(theory),
            regime=regime,
            agrees=agrees,
            note_key=key,
            note_fields=fields,
        )


def mlp_gradients(
    activations: Sequence[str] | str = CHAPTER_ACTIVATIONS,
    scales: Sequence[float] | float = CHAPTER_MLP_SCALES,
    *,
    width: int = 100,
    depth: int = 50,
    repeats: int = 10,
    seed: int = 0,
    xavier_uniform: bool = True,
    dtype: str = "float32",
) -> MLPGradients:
    """Accumulate the notebook's backward product through ``depth`` random layers, all pairs batched.

    Per layer (the notebook's recursion), with W ~ N(0, scale^2) (or Xavier uniform) and h_0 = x ~ N(0, I):

    .. math::
        a_l = W_l h_{l-1},\\quad Y_l = f'(a_l) \\odot (W_l^\\top Y_{l-1}),\\quad h_l = f(a_l),
        \\qquad \\frac{\\mathbb{E}\\|Y_l\\|_F^2}{K} \\approx \\chi_1^{\\,l},\\quad
        \\chi_1 = \\sigma_w^2\\,\\mathbb{E}[f'(z)^2],\\ \\sigma_w = \\text{scale}\\sqrt{K}

    (Poole et al. 2016; Schoenholz et al. 2017). For relu chi_1 = sigma_w^2 / 2, critical at
    scale = sqrt(2 / K) = 0.141 for K = 100 (He et al. 2015).

    Args:
        activations: registered activation names (the lecture: relu, sigmoid, scaled_sigmoid).
        scales: standard deviations of the normal weight entries, each > 0 (the lecture: 0.1 .. 0.8).
        width: K, the layer width (the lecture: 100).
        depth: number of layers (the lecture: 50).
        repeats: independent networks per pair (the lecture: 10).
        seed: seed of the torch generator.
        xavier_uniform: also run Xavier uniform, U(-a, a) with a = sqrt(6 / (2 K)) (the lecture does).
        dtype: "float32" (fast; the product is renormalized every layer) or "float64".

    Raises:
        InvalidArgumentError: a scale <= 0, width, depth or repeats < 1, an unknown dtype, or
            pre-activations that overflow float64 (an unbounded activation at a huge scale).
        UnknownNameError: an unregistered activation.

    Examples:
        >>> r = mlp_gradients(["relu"], [0.1, 0.8], width=20, depth=5, repeats=2)
        >>> r.log10_magnitude.shape
        (1, 3, 6)
        >>> bool(r.log10_magnitude[0, 0, -1] < 0 < r.log10_magnitude[0, 1, -1])   # vanishes, explodes
        True
    """
    acts = activation_list(activations)
    scale_values = scales_tuple("scales", scales)
    width = check_int_at_least("width", width, 1)
    depth = check_int_at_least("depth", depth, 1)
    repeats = check_int_at_least("repeats", repeats, 1)
    torch_dtype = _dtype(dtype)
    seed = check_seed("seed", seed)
    _check_memory(len(acts), len(scale_values), width, depth, repeats, torch_dtype, xavier_uniform)
    gen = torch.Generator().manual_seed(seed)
    groups = [_Group(acts, scale_values, "normal", width, repeats, torch_dtype)]
    if xavier_uniform:
        groups.append(_Group(acts, (1.0 / math.sqrt(width),), "uniform", width, repeats, torch_dtype))
    _run(groups, depth, width, repeats, gen)
    inits = tuple(_label(s) for s in scale_values) + ((XAVIER_UNIFORM,) if xavier_uniform else ())
    weight_scales = np.array(scale_values + ((1.0 / math.sqrt(width),) if xavier_uniform else ()))
    return _result(acts, inits, weight_scales, groups, width, depth, repeats, seed, dtype)


def _check_memory(
    n_acts: int, n_scales: int, width: int, depth: int, repeats: int, dtype: torch.dtype, xavier: bool
) -> None:
    """Refuse sizes whose state cannot fit: per group two (R, K, C, K) products and (R, K, K) draws."""
    item = torch.finfo(dtype).bits // 8
    columns = n_acts * n_scales + (n_acts if xavier else 0)  # C summed over the groups
    groups = 2 if xavier else 1
    need = repeats * width * width * (2.0 * columns * item + groups * (8 + item))
    need += 8.0 * repeats * columns * (3 * width + depth + 1)  # h, a, f'(a); the per-layer log scales
    what = f"width={width}, depth={depth}, repeats={repeats}"
    check_memory(what, need, "pass a smaller width or fewer repeats")


class _Group:
    """The (activation, scale) pairs sharing one kind of draw.

    A positively homogeneous activation (relu) needs one run for all its scales: with the draws shared,
    a_l(s) = (s/s_0)^l a_l(s_0), so f'(a) is the same and Y_l(s) = (s/s_0)^l Y_l(s_0) exactly. The runs
    actually computed are ordered activation-major; ``source`` and ``shift`` map every (activation, scale)
    pair to its run and its log10 shift per layer.

    State (R = repeats, C = computed runs): h (R, K, C), a float64 numpy array; y (R, K, C, K) in
    ``dtype``, equal to the product Y_l divided by exp(log_scale) and multiplied by 1 / inv_norm (both
    (R, C) float64 numpy arrays); spare, a buffer of y's shape that the next product is written into;
    the per-layer log magnitudes.
    """

    def __init__(self, acts, scales, kind: str, width: int, repeats: int, dtype: torch.dtype) -> None:
        self.acts, self.kind, self.dtype = acts, kind, dtype
        self.blocks = [1 if act.positively_homogeneous else len(scales) for act in acts]
        runs = [scales[:n] for n in self.blocks]
        starts = np.cumsum([0] + self.blocks[:-1])
        self.source = np.array(
            [
                start + (0 if n == 1 else i)
                for start, n in zip(starts, self.blocks, strict=True)
                for i in range(len(scales))
            ]
        )
        self.shift = np.array(
            [math.log10(s / run[0]) if len(run) == 1 else 0.0 for run in runs for s in scales]
        )
        # U(-1, 1) has variance 1/3: multiply by sqrt(3) * std so the entries have standard deviation std.
        unit = math.sqrt(3.0) if kind == "uniform" else 1.0
        self.scales = np.array([s * unit for run in runs for s in run], dtype=np.float64)
        self.log_scales = np.log(self.scales)
        self.columns = [slice(int(a), int(a + n)) for a, n in zip(starts, self.blocks, strict=True)]
        self.pairs = [_value_and_derivative_of(act) for act in acts]
        c = len(self.scales)
        self.y = torch.eye(width, dtype=dtype)[None, :, None, :].expand(repeats, width, c, width).contiguous()
        self.spare = torch.empty_like(self.y)  # the next layer's product is written here, then swapped
        self.draw64 = np.empty((repeats, width, width))
        self.log_scale = np.zeros((repeats, c))
        self.inv_norm = np.ones((repeats, c))  # 1 / ||Y||_F sqrt(K) of self.y
        self.history = [self.log_scale]

    def expand(self, values: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Map per-run values (..., C, T) to every pair (..., A * S, T), adding shift * steps (log10)."""
        return values[..., self.source, :] + self.shift[:, None] * steps

    def step(self, draw: torch.Tensor) -> None:
        """Advance one layer with the standard draw (R, K, K) shared by every config.

        The pre-activations are a thin batched product (N = C columns) in float64; numpy's matmul does
        that several times faster than torch.bmm, and the activations take numpy arrays as well. The
        backward product W^T Y also goes through numpy's matmul (OpenBLAS), ~15% faster than torch.bmm
        (MKL) at this shape on the AMD EPYC measured, written into the spare buffer. Only the f'(a)
        scaling and the norm run in torch (on the same memory); the small (R, K, C) and (R, C) arrays stay
        in numpy, and each activation's value and derivative come from one pass.
        """
        np.copyto(self.draw64, draw.numpy())
        a = np.matmul(self.draw64, self.h)
        a *= self.scales  # (R, K, C): a = W h, W = scale * draw
        self.h, deriv = np.empty_like(a), np.empty_like(a)
        for pair, cols in zip(self.pairs, self.columns, strict=True):  # one block of columns per activation
            self.h[..., cols], deriv[..., cols] = pair(a[..., cols])
        # the previous layer's 1 / norm is folded into the small (R, K, C) factor rather than into a pass
        # over Y: self.y holds Y_{l-1} times a known factor
        deriv *= self.inv_norm[:, None, :]
        r, k, c, _ = self.y.shape
        # Y_l = f'(a) * (W^T Y_{l-1}), W^T Y without the scale
        np.matmul(draw.numpy().transpose(0, 2, 1), _flat(self.y), out=_flat(self.spare))
        self.y, self.spare = self.spare, self.y
        y = self.y
        y.mul_(torch.from_numpy(deriv.astype(_NUMPY[self.dtype]))[..., None])
        rows = torch.linalg.vector_norm(y, dim=3)  # contiguous reduction first: (R, K, C)
        # (R, C): ||Y||_F / sqrt(K)
        norm = torch.linalg.vector_norm(rows, dim=1).numpy().astype(np.float64) / math.sqrt(k)
        with np.errstate(divide="ignore"):
            self.inv_norm = np.where(norm > 0, 1 / norm, 1.0)
            self.log_scale = self.log_scale + np.log(norm) + self.log_scales
        self.history.append(self.log_scale)


def _run(groups: list[_Group], depth: int, width: int, repeats: int, gen: torch.Generator) -> None:
    x = torch.randn(repeats, width, 1, generator=gen, dtype=torch.float64)
    for g in groups:
        g.h = np.repeat(x.numpy(), len(g.scales), axis=-1)  # (R, K, C) float64
    shape, dtype = (repeats, width, width), groups[0].dtype
    draws = [torch.empty(shape, dtype=dtype) for _ in groups]  # refilled in place every layer
    for _ in range(depth):
        for g, draw in zip(groups, draws, strict=True):  # one group per kind of draw
            if g.kind == "normal":
                torch.randn(shape, generator=gen, dtype=dtype, out=draw)
            else:
                draw.uniform_(-1.0, 1.0, generator=gen)
            g.step(draw)


def _flat(y: torch.Tensor) -> np.ndarray:
    """The numpy view (R, K, C * K) of a product (R, K, C, K): the configs side by side as columns."""
    r, k, c, _ = y.shape
    return y.view(r, k, c * k).numpy()


_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def _sigmoid_pair(x: np.ndarray, gain: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """gain * sigmoid(x) + offset and its derivative gain * sigmoid(x) * sigmoid(-x), sharing sigmoid(x)."""
    s = scipy.special.expit(x)
    if gain == 1.0:
        return s, s * scipy.special.expit(-x)
    scaled = gain * s
    return scaled + offset, scaled * scipy.special.expit(-x)


def _relu_pair(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """relu(x) and its derivative 1[x > 0] (0 at the kink), each as the registry writes it."""
    positive, zero = x > 0, 0 * x
    return np.where(positive, x, zero), np.where(positive, 1.0, zero)


# the chapter's activations, value and derivative in one pass; equal to the registry's fn and derivative
_PAIRS = {
    "relu": _relu_pair,
    "sigmoid": lambda x: _sigmoid_pair(x, 1.0, 0.0),
    "scaled_sigmoid": lambda x: _sigmoid_pair(x, 4.0, -2.0),
}


def _value_and_derivative_of(act) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return a function x -> (f(x), f'(x)) on numpy arrays, one pass for the chapter's activations.

    Examples:
        >>> from numstab import activations
        >>> x = np.concatenate((np.linspace(-800.0, 800.0, 1601), [0.0, -0.0, np.inf, -np.inf, np.nan]))
        >>> def same(name):  # bit for bit, NaN where the registry gives NaN
        ...     act = activations.get(name)
        ...     with np.errstate(invalid="ignore"):  # 0 * inf, as the registry computes it
        ...         fast = _value_and_derivative_of(act)(x)
        ...         book = act.fn(x), act.derivative(x)
        ...     return all(np.array_equal(u, v, equal_nan=True) for u, v in zip(fast, book))
        >>> [same(name) for name in ("relu", "sigmoid", "scaled_sigmoid", "tanh")]
        [True, True, True, True]
    """
    pair = _PAIRS.get(act.name)
    if pair is not None and act is get_activation(act.name):  # the registry's own, not a namesake
        return pair
    return lambda x: (act.fn(x), act.derivative(x))


def _result(acts, inits, weight_scales, groups, width, depth, repeats, seed, dtype) -> MLPGradients:
    n_acts, layers = len(acts), np.arange(depth + 1)
    logs = np.concatenate(
        [
            g.expand(np.stack(g.history, axis=-1) / _LN10, layers).reshape(repeats, n_acts, -1, depth + 1)
            for g in groups
        ],
        axis=2,
    )  # (R, A, I, L + 1), log10 magnitudes
    parts = [_smallest_entries(g, n_acts, depth) for g in groups]
    smallest = np.concatenate([p[0] for p in parts], axis=2)  # (R, A, I)
    zeros = np.concatenate([p[1] for p in parts], axis=2)
    # -inf is a true result (every unit dead: the product is exactly 0); NaN or +inf is an overflow.
    if np.isnan(logs).any() or np.isposinf(logs).any() or np.isnan(smallest).any():
        raise InvalidArgumentError(
            "the pre-activations overflowed float64 (non-finite values): lower the scales or the depth"
        )
    chi1 = np.array([[_chi1(a, s * math.sqrt(width)) for s in weight_scales] for a in acts])
    return MLPGradients(
        activations=tuple(a.name for a in acts),
        inits=inits,
        weight_scales=weight_scales,
        width=width,
        depth=depth,
        repeats=repeats,
        seed=seed,
        common_random_numbers=True,
        dtype=dtype,
        log10_magnitude=logs.mean(axis=0),
        log10_magnitude_std=_spread(logs),
        log10_min_entry=_log10_mean_exp10(smallest),
        zero_fraction=zeros.mean(axis=0),
        chi1=chi1,
        theory_log10_magnitude=0.5 * np.arange(depth + 1) * np.log10(chi1)[..., None],
        theory_from_input_log10_magnitude=np.stack(
            [_theory_from_input(a, weight_scales * math.sqrt(width), depth) for a in acts]
        ),
    )


def _spread(logs: np.ndarray) -> np.ndarray:
    """Standard deviation over the repeats (axis 0); 0 for one repeat, NaN where a product is exactly 0."""
    if logs.shape[0] == 1:
        return np.zeros(logs.shape[1:])
    with np.errstate(invalid="ignore"):
        return logs.std(axis=0, ddof=1)


def _smallest_entries(g: _Group, n_acts: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """log10 of the smallest non-zero |entry| of each final product (+inf when all are 0) and the share
    of exact zeros, each of shape (R, A, scales)."""
    r, k, _, _ = g.y.shape
    magnitude = g.y.abs()  # (R, K, C, K); the contiguous dimension reduced first, as in the norms
    zero = magnitude == 0
    share = zero.sum(dim=3).sum(dim=1).numpy() / (k * k)
    smallest = magnitude.masked_fill_(zero, math.inf).amin(dim=3).amin(dim=1).numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # all dead: -inf + -inf, marked just below
        log10 = np.log10(smallest * g.inv_norm) + g.log_scale / _LN10
    log10 = np.where(np.isinf(smallest), math.inf, log10)  # no non-zero entry: mark, never NaN
    log10 = g.expand(log10[..., None], np.array([depth]))[..., 0]
    share = g.expand(share[..., None], np.array([0]))[..., 0]
    return log10.reshape(r, n_acts, -1), share.reshape(r, n_acts, -1)


def _log10_mean_exp10(values: np.ndarray) -> np.ndarray:
    """log10 of the mean over axis 0 of 10**values, in log space (values reach +-40); +inf means "none"."""
    values = np.where(np.isposinf(values), -np.inf, values)  # no non-zero entry at all: the product is 0
    top = values.max(axis=0)
    with np.errstate(invalid="ignore"):
        out = top + np.log10(np.mean(10.0 ** (values - top), axis=0))
    return np.where(np.isneginf(top), -np.inf, out)


def _chi1(act, weight_std: float) -> float:
    from numstab import theory  # pure numpy/scipy

    return float(theory.chi1(act, weight_std, 0.0))


def _theory_from_input(act, weight_stds: np.ndarray, depth: int) -> np.ndarray:
    """(1/2) cumulative sum of log10 chi_j along the variance recursion from the input (bias 0), for every
    weight_std at once: q_{j+1} = sigma_w^2 E[f(z)^2] (theory.variance_map's formula), shape (S, L + 1)."""
    from numstab import theory  # pure numpy/scipy

    w2 = np.asarray(weight_stds, dtype=np.float64) ** 2
    q = [w2]  # q_1 = sigma_w^2 * E[x^2], x ~ N(0, 1)
    for _ in range(depth - 1):
        q.append(w2 * np.asarray(theory.gaussian_expectation(lambda z: act.fn(z) ** 2, q[-1])))
    q_all = np.stack(q, axis=-1)  # (S, L)
    moment = theory.gaussian_expectation(lambda z: act.derivative(z) ** 2, q_all.reshape(-1))
    chi = w2[:, None] * np.asarray(moment).reshape(q_all.shape)
    return np.concatenate((np.zeros((len(w2), 1)), 0.5 * np.cumsum(np.log10(chi), axis=-1)), axis=-1)


def _label(scale: float) -> str:
    return f"{scale:g}"


def _dtype(name: str) -> torch.dtype:
    options = {"float32": torch.float32, "float64": torch.float64}
    if name not in options:
        raise InvalidArgumentError(f"dtype must be one of {', '.join(options)}, got {name!r}")
    return options[name]
