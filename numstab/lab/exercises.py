"""The chapter's four exercises, answered by computation.

D2L "Numerical Stability and Initialization" ends with four questions:

1. Which other cases, besides the permutation symmetry of an MLP's hidden units, need symmetry breaking?
   :func:`tied_units`: the channels of a convolution and the heads of multi-head attention are
   interchangeable too; trained from a constant init they stay identical bit for bit, from a random
   init they differ.
2. Can all weights of linear or softmax regression start at the same value? :func:`equal_start`: yes;
   there is no hidden layer, so no two units compute the same function of the same inputs (each output
   sees its own labels), and the loss is convex: equal and random starts reach the same accuracy.
3. Bounds on the eigenvalues (singular values) of a product of two matrices; what do they say about
   well-conditioned gradients? :func:`product_bounds`: every singular value of AB lies in
   [sigma_min(A) sigma_min(B), sigma_max(A) sigma_max(B)]; through n Gaussian factors the singular values
   spread at the rates of the Lyapunov spectrum (:func:`numstab.theory.lyapunov_spectrum`), so the
   condition number grows like exp((lambda_1 - lambda_k) n), while orthogonal factors keep it at 1.
4. Can divergence be fixed after the fact (LARS, You et al. 2017)? The training lab's ``lars`` remedy
   against plain SGD on an exploding deep ReLU net (:func:`numstab.lab.training.remedies`).

:func:`exercises` runs all four and returns :class:`Exercises`, whose ``comparisons()`` are the tour's rows.

Examples:
    >>> [(u.layer, u.init, u.difference == 0.0) for u in tied_units(steps=5)][:2]
    [('conv channels', 'constant', True), ('conv channels', 'random', False)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from numstab.errors import check_int_at_least, check_positive, check_seed
from numstab.lab import _digits, training
from numstab.lab._result import LabResult
from numstab.lab.comparison import Comparison
from numstab.notation import fmt

__all__ = [
    "exercises", "tied_units", "equal_start", "product_bounds", "lars_against_sgd", "Exercises", "TiedUnits",
    "EqualStart", "ProductBounds", "CHAPTER_EXERCISES", "LARS_BASE", "SAME_ACCURACY",
]  # fmt: skip

#: The four questions, in the edition's words (English edition).
CHAPTER_EXERCISES = (
    "Can you design other cases where a neural network might exhibit symmetry requiring breaking, "
    "besides the permutation symmetry in an MLP's layers?",
    "Can we initialize all weight parameters in linear regression or in softmax regression to the same "
    "value?",
    "Look up analytic bounds on the eigenvalues of the product of two matrices. What does this tell you "
    "about ensuring that gradients are well conditioned?",
    "If we know that some terms diverge, can we fix this after the fact? Look at the paper on layerwise "
    "adaptive rate scaling for inspiration (You et al. 2017).",
)

#: The exploding deep net of exercise 4: ReLU with N(0, 0.4^2) entries (the lecture's exploding scale).
LARS_BASE = training.Setup("relu", "normal", 0.4)

#: Equal and random starts "reach the same accuracy" when their test accuracies differ by at most this
#: (two test digits in a hundred: the spread of a few seeds of the same run).
SAME_ACCURACY = 0.02


@dataclass(frozen=True, repr=False)
class TiedUnits(LabResult):
    """Two units of one layer type after SGD from one initialization.

    Attributes:
        layer: "conv channels" (Conv2d(1, 2, 3), tanh, Linear) or "attention heads"
            (nn.MultiheadAttention(4, 2 heads), mean over positions).
        init: "constant" (every weight and bias 0.3) or "random" (N(0, 0.5^2)).
        difference: max |unit 1 - unit 2| over every parameter of the two channels (filter, bias and the
            output weights reading them) or heads (their q, k, v rows and out_proj columns), after the
            last step.
        steps: SGD steps taken.
    """

    layer: str
    init: str
    difference: float
    steps: int


@dataclass(frozen=True, repr=False)
class EqualStart(LabResult):
    """Linear or softmax regression on the digits from equal weights and from random weights.

    Attributes:
        model: "linear" (squared error to one-hot targets, argmax) or "softmax" (cross-entropy).
        equal_accuracy: test accuracy after full-batch gradient descent from all-equal weights (0.01).
        random_accuracy: the same from N(0, 0.01^2) weights.
        columns_differ: the smallest max |w_i - w_j| over pairs of class weight vectors after training
            from equal weights: > 0, the data broke the tie.
        steps: gradient steps.
    """

    model: str
    equal_accuracy: float
    random_accuracy: float
    columns_differ: float
    steps: int


@dataclass(frozen=True, repr=False)
class ProductBounds(LabResult):
    """Singular values of products against the two-matrix bounds and the Lyapunov spectrum.

    Attributes:
        k: matrix size; trials: products drawn; factors: n, the length of the deep products.
        lower_ratio: min over trials and i of sigma_i(AB) / (sigma_min(A) sigma_min(B)) (>= 1 by the bound).
        upper_ratio: max over trials and i of sigma_i(AB) / (sigma_max(A) sigma_max(B)) (<= 1 by the bound).
        violations: singular values outside the bounds (beyond a relative 1e-12 of rounding).
        lyapunov: measured exponents, mean over trials of ln |R_ii| / n by QR re-orthogonalization, (k,).
        lyapunov_stderr: their standard errors, (k,).
        lyapunov_theory: :func:`numstab.theory.lyapunov_spectrum` at the same scale, (k,).
        log10_condition: mean log10 condition number of the n-factor Gaussian product.
        orthogonal_condition: the condition number of a product of n random orthogonal matrices.
    """

    k: int
    trials: int
    factors: int
    scale: float
    lower_ratio: float
    upper_ratio: float
    violations: int
    lyapunov: np.ndarray
    lyapunov_stderr: np.ndarray
    lyapunov_theory: np.ndarray
    log10_condition: float
    orthogonal_condition: float


@dataclass(frozen=True, repr=False)
class Exercises(LabResult):
    """The four exercises' answers.

    Attributes:
        tied: :func:`tied_units` (exercise 1).
        regressions: :func:`equal_start` (exercise 2).
        bounds: :func:`product_bounds` (exercise 3).
        lars: :func:`lars_against_sgd`, a :class:`numstab.lab.training.Remedies` (exercise 4).
    """

    tied: tuple[TiedUnits, ...]
    regressions: tuple[EqualStart, ...]
    bounds: ProductBounds
    lars: Any

    def comparisons(self) -> list[Comparison]:
        """One row per answer, each checked against the answer the chapter implies.

        Agreement: (1) constant init leaves the two units exactly equal (0.0, no tolerance) and random
        init separates them (> 0); (2) equal and random starts reach test accuracies within
        :data:`SAME_ACCURACY`; (3) no singular value of AB leaves the bounds, and every measured Lyapunov
        exponent is within 4 standard errors + 0.02 (the O(1/n) bias of n factors) of the theory's;
        (4) LARS stays finite where SGD diverges on the same net.

        Examples:
            >>> r = exercises(quick=True)
            >>> [row.agreement for row in r.comparisons()].count("yes") == len(r.comparisons())
            True
        """
        rows = [_tied_row(u) for u in self.tied]
        rows += [_equal_row(e) for e in self.regressions]
        rows += _bounds_rows(self.bounds)
        return [*rows, _lars_row(self.lars)]


def _tied_row(u: TiedUnits) -> Comparison:
    constant = u.init == "constant"
    return Comparison(
        f"1. {u.layer}, {u.init} init: max |unit 1 - unit 2|",
        "a further symmetry to break" if constant else "random init breaks it",
        u.difference,
        "0 exactly" if constant else "> 0",
        regime="tied" if u.difference == 0.0 else "broken",
        agrees=u.difference == 0.0 if constant else u.difference > 0.0,
    )


def _equal_row(e: EqualStart) -> Comparison:
    gap = abs(e.equal_accuracy - e.random_accuracy)
    return Comparison(
        f"2. {e.model} regression: accuracy from equal / random weights",
        "may the weights start equal?",
        f"{e.equal_accuracy:.3f} / {e.random_accuracy:.3f}",
        "the same: no hidden unit, a convex loss",
        regime=f"classes' weights differ by >= {fmt(e.columns_differ)}",
        agrees=gap <= SAME_ACCURACY and e.columns_differ > 0,
    )


def _bounds_rows(b: ProductBounds) -> list[Comparison]:
    gap = np.abs(b.lyapunov - b.lyapunov_theory)
    spectrum_ok = bool(np.all(gap < 4 * b.lyapunov_stderr + 0.02))
    measured = ", ".join(f"{x:.3f}" for x in b.lyapunov)
    theory = ", ".join(f"{x:.3f}" for x in b.lyapunov_theory)
    return [
        Comparison(
            f"3. sigma(AB) of {b.trials} pairs of {b.k}x{b.k} Gaussians",
            "sigma_min(A) sigma_min(B) <= sigma(AB) <= sigma_max(A) sigma_max(B)",
            f"min ratio to lower bound {b.lower_ratio:.3g}, max ratio to upper {b.upper_ratio:.3g}",
            "ratios >= 1 and <= 1",
            regime=f"{b.violations} outside",
            agrees=b.violations == 0,
        ),
        Comparison(
            f"3. Lyapunov spectrum, {b.factors} factors, scale {b.scale:g}",
            "gradients well conditioned?",
            measured,
            theory,
            regime=f"kappa ~ 1e{b.log10_condition:.0f}; orthogonal: {b.orthogonal_condition:.6f}",
            agrees=spectrum_ok and abs(b.orthogonal_condition - 1.0) < 1e-6,
            note_key="note.lyapunov",
            note_fields=(
                ("factors", b.factors), ("k", b.k), ("spread", b.lyapunov_theory[0] - b.lyapunov_theory[-1]),
                ("log10", b.log10_condition),
            ),  # fmt: skip
        ),
    ]


def _lars_row(r: Any) -> Comparison:
    sgd, lars = r.outcome("none"), r.outcome("lars")
    return Comparison(
        f"4. LARS vs SGD, {r.base.label}, depth {r.depth}",
        "fix divergence after the fact?",
        f"SGD: {sgd.verdict} (step {sgd.first_failure}); LARS: accuracy {lars.accuracy:.3f}, {lars.verdict}",
        "per-layer step eta * tau * ||w|| / ||g||: bounded",
        regime=lars.verdict,
        agrees=sgd.first_failure is not None and lars.first_failure is None,
    )


def _sgd(params: list[torch.Tensor], loss_fn: Any, steps: int, lr: float) -> None:
    for _ in range(steps):
        loss = loss_fn()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * g


def _fill(module: nn.Module, constant: bool, generator: torch.Generator) -> None:
    with torch.no_grad():
        for p in module.parameters():
            if constant:
                p.fill_(0.3)
            else:
                p.normal_(0.0, 0.5, generator=generator)


def _conv_difference(constant: bool, steps: int, generator: torch.Generator) -> float:
    """Two output channels of Conv2d(1, 2, 3) -> tanh -> Linear on 6x6 inputs (a regression)."""
    conv, head = nn.Conv2d(1, 2, 3, dtype=torch.float64), nn.Linear(2 * 16, 1, dtype=torch.float64)
    for m in (conv, head):
        _fill(m, constant, generator)
    x = torch.randn(32, 1, 6, 6, dtype=torch.float64, generator=generator)
    y = torch.randn(32, 1, dtype=torch.float64, generator=generator)
    params = [conv.weight, conv.bias, head.weight, head.bias]
    _sgd(params, lambda: (head(torch.tanh(conv(x)).flatten(1)) - y).pow(2).mean(), steps, 0.05)
    w = head.weight.detach().view(2, 16)  # the output weights reading channel 0, then channel 1
    parts = [conv.weight[0] - conv.weight[1], conv.bias[:1] - conv.bias[1:], w[0] - w[1]]
    return max(float(p.detach().abs().max()) for p in parts)


def _attention_difference(constant: bool, steps: int, generator: torch.Generator) -> float:
    """Two heads of nn.MultiheadAttention(4, 2): their q, k, v rows and out_proj columns."""
    embed, heads = 4, 2
    mha = nn.MultiheadAttention(embed, heads, batch_first=True, dtype=torch.float64)
    _fill(mha, constant, generator)
    x = torch.randn(16, 3, embed, dtype=torch.float64, generator=generator)
    y = torch.randn(16, dtype=torch.float64, generator=generator)
    params = list(mha.parameters())
    def loss() -> torch.Tensor:
        return (mha(x, x, x, need_weights=False)[0].mean(dim=(1, 2)) - y).pow(2).mean()

    _sgd(params, loss, steps, 0.05)
    d = embed // heads
    w, b, out = mha.in_proj_weight.detach(), mha.in_proj_bias.detach(), mha.out_proj.weight.detach()
    parts = []
    for block in range(3):  # q, k, v
        rows = [slice(block * embed + h * d, block * embed + (h + 1) * d) for h in range(heads)]
        parts += [w[rows[0]] - w[rows[1]], b[rows[0]] - b[rows[1]]]
    parts.append(out[:, :d] - out[:, d:])
    return max(float(p.abs().max()) for p in parts)


def tied_units(*, steps: int = 200, seed: int = 0) -> tuple[TiedUnits, ...]:
    """Exercise 1: train conv channels and attention heads from constant and random init (float64, SGD).

    With every parameter equal, the two channels (heads) compute the same function of the same inputs,
    receive the same gradient and stay equal after every step (D2L "Breaking the Symmetry"):

    .. math::
        \\theta_1 = \\theta_2 \\;\\Rightarrow\\; \\nabla_{\\theta_1} L = \\nabla_{\\theta_2} L

    Args:
        steps: SGD steps (learning rate 0.05) on a random regression task.
        seed: seed of the torch generator (data and random init).
    """
    steps = check_int_at_least("steps", steps, 1)
    generator = torch.Generator().manual_seed(check_seed("seed", seed))
    return tuple(
        TiedUnits(layer, "constant" if constant else "random", run(constant, steps, generator), steps)
        for layer, run in (("conv channels", _conv_difference), ("attention heads", _attention_difference))
        for constant in (True, False)
    )


def _regression_accuracy(model: str, w0: torch.Tensor, data: Any, steps: int) -> tuple[float, torch.Tensor]:
    x, y = data.x_train.double(), data.y_train
    w = torch.cat([w0, torch.zeros(1, w0.shape[1], dtype=torch.float64)]).requires_grad_(True)  # + bias row
    ones = torch.ones(len(x), 1, dtype=torch.float64)
    xb = torch.cat([x, ones], dim=1)
    onehot = torch.nn.functional.one_hot(y, 10).double()
    if model == "softmax":
        def loss() -> torch.Tensor:
            return torch.nn.functional.cross_entropy(xb @ w, y)
    else:
        def loss() -> torch.Tensor:
            return (xb @ w - onehot).pow(2).sum(dim=1).mean()
    _sgd([w], loss, steps, 0.5 if model == "softmax" else 0.05)
    xt = torch.cat([data.x_test.double(), torch.ones(len(data.x_test), 1, dtype=torch.float64)], dim=1)
    accuracy = float(((xt @ w).argmax(dim=1) == data.y_test).double().mean())
    return accuracy, w.detach()[:-1]


def equal_start(*, steps: int = 300, seed: int = 0) -> tuple[EqualStart, ...]:
    """Exercise 2: linear and softmax regression on the digits from equal (0.01) and random weights.

    Each class c has its own weight vector w_c; its gradient depends on whether the label is c, so the
    data separates the w_c at the first step whatever the start, and the loss is convex in w:

    .. math::
        \\nabla_{w_c} \\mathrm{CE} = \\tfrac{1}{N}\\textstyle\\sum_n (p_{nc} - [y_n = c])\\, x_n

    Args:
        steps: full-batch gradient steps (learning rate 0.5 softmax, 0.05 linear).
        seed: seed of the data split and of the random start.
    """
    steps = check_int_at_least("steps", steps, 1)
    data = _digits.load(seed=check_seed("seed", seed))
    generator = torch.Generator().manual_seed(seed)
    shape = (data.n_features, data.n_classes)
    random = torch.randn(*shape, dtype=torch.float64, generator=generator) * 0.01
    out = []
    for model in ("linear", "softmax"):
        equal_acc, w = _regression_accuracy(model, torch.full(shape, 0.01, dtype=torch.float64), data, steps)
        random_acc, _ = _regression_accuracy(model, random, data, steps)
        gaps = (w.T[:, None, :] - w.T[None, :, :]).abs().amax(dim=2)
        differ = float(gaps[~torch.eye(shape[1], dtype=torch.bool)].min())
        out.append(EqualStart(model, equal_acc, random_acc, differ, steps))
    return tuple(out)


def product_bounds(
    *, k: int = 4, trials: int = 200, factors: int = 400, scale: float = 1.0, seed: int = 0
) -> ProductBounds:
    """Exercise 3: sigma(AB) against the bounds, and the Lyapunov spectrum of n-factor products.

    .. math::
        \\sigma_\\min(A)\\,\\sigma_\\min(B) \\le \\sigma_i(AB) \\le \\sigma_\\max(A)\\,\\sigma_\\max(B),
        \\qquad \\tfrac1n \\ln \\sigma_i(M_n \\cdots M_1) \\to \\lambda_i

    (Horn & Johnson, Topics in Matrix Analysis, 3.3.16; Newman 1986). The exponents are measured by QR
    re-orthogonalization: M_t Q_{t-1} = Q_t R_t, lambda_i ~ (1/n) sum_t ln |(R_t)_ii|.

    Args:
        k: matrix size; trials: independent pairs and products; factors: n.
        scale: std of each Gaussian entry.
        seed: seed of the torch generator.
    """
    k = check_int_at_least("k", k, 2, 64)
    trials = check_int_at_least("trials", trials, 2, 100_000)
    factors = check_int_at_least("factors", factors, 1, 100_000)
    scale = check_positive("scale", scale)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    a, b = (torch.randn(trials, k, k, dtype=torch.float64, generator=g) * scale for _ in range(2))
    sa, sb, sab = (torch.linalg.svdvals(m) for m in (a, b, a @ b))
    lower, upper = sa[:, -1:] * sb[:, -1:], sa[:, :1] * sb[:, :1]
    violations = int(((sab < lower * (1 - 1e-12)) | (sab > upper * (1 + 1e-12))).sum())
    q = torch.eye(k, dtype=torch.float64).expand(trials, k, k)
    logs = torch.zeros(trials, k, dtype=torch.float64)
    orthogonal = torch.eye(k, dtype=torch.float64).expand(trials, k, k)
    for _ in range(factors):
        m = torch.randn(trials, k, k, dtype=torch.float64, generator=g) * scale
        q, r = torch.linalg.qr(m @ q)
        logs += torch.log(torch.diagonal(r, dim1=1, dim2=2).abs())
        orthogonal = torch.linalg.qr(m)[0] @ orthogonal
    exponents = (logs / factors).numpy()
    spread = exponents[:, 0] - exponents[:, -1]
    from numstab.theory import lyapunov_spectrum

    s_orth = torch.linalg.svdvals(orthogonal)
    return ProductBounds(
        k, trials, factors, scale,
        lower_ratio=float((sab / lower).min()), upper_ratio=float((sab / upper).max()), violations=violations,
        lyapunov=exponents.mean(axis=0), lyapunov_stderr=exponents.std(axis=0, ddof=1) / math.sqrt(trials),
        lyapunov_theory=np.array(lyapunov_spectrum(k, scale)),
        log10_condition=float(np.mean(spread) * factors / math.log(10)),
        orthogonal_condition=float((s_orth[:, 0] / s_orth[:, -1]).max()),
    )  # fmt: skip


def lars_against_sgd(*, depth: int = 10, steps: int = 200, seed: int = 0) -> Any:
    """Exercise 4: the training lab's LARS remedy against plain SGD on the exploding ReLU net.

    LARS (You et al. 2017) scales each layer's step to its weights: a diverging gradient cannot blow a
    layer up, ``Δθ_l = -η τ ||θ_l|| / ||∇_l L|| ∇_l L``. This is :func:`numstab.lab.training.remedies`
    with ``["lars"]`` on :data:`LARS_BASE`.
    """
    return training.remedies(["lars"], base=LARS_BASE, depth=depth, steps=steps, seeds=[seed])


def exercises(*, quick: bool = False, seed: int = 0) -> Exercises:
    """Answer the chapter's four exercises (quick: about a second; otherwise a few seconds).

    Examples:
        >>> r = exercises(quick=True)
        >>> r.bounds.violations, r.tied[0].difference
        (0, 0.0)
    """
    return Exercises(
        tied_units(steps=20 if quick else 200, seed=seed),
        equal_start(steps=100 if quick else 300, seed=seed),
        product_bounds(trials=50 if quick else 200, factors=100 if quick else 400, seed=seed),
        lars_against_sgd(depth=6 if quick else 10, steps=30 if quick else 200, seed=seed),
    )
