"""The chapter's symmetry argument, run: two hidden units with constant weights never separate under SGD.

D2L: take an MLP with one hidden layer of two units and one output, and set every hidden parameter to
the same constant. Both units compute the same activation and receive the same gradient, so after any
number of minibatch SGD steps their weights are still identical -- the layer acts like one unit.
Dropout breaks the tie (each unit gets its own mask); so does random initialization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from numstab.errors import InvalidArgumentError, check_finite, check_int_at_least, check_positive, check_seed
from numstab.lab._result import LabResult
from numstab.lab._validate import activation_list
from numstab.lab.comparison import Comparison
from numstab.resources import check_memory

__all__ = ["symmetry", "Symmetry", "SymmetryRun", "CHAPTER_SYMMETRY"]

#: What the chapter says of each case.
CHAPTER_SYMMETRY = {
    "constant": "identical forever (exactly 0)",
    "constant + dropout": "dropout breaks the tie",
    "random": "units differ",
}


@dataclass(frozen=True, repr=False)
class SymmetryRun(LabResult):
    """One training run of the two-unit MLP.

    Attributes:
        case: "constant", "constant + dropout" or "random".
        difference: max |W1[0] - W1[1]| plus |b1[0] - b1[1]| and |W2[0] - W2[1]| after each step,
            shape (steps + 1,); exactly 0.0 throughout for "constant".
        final_loss: training loss (mean squared error, no dropout) after the last step.
        hidden_weights: W1 after training, shape (2, inputs).
    """

    case: str
    difference: np.ndarray
    final_loss: float
    hidden_weights: np.ndarray


@dataclass(frozen=True, repr=False)
class Symmetry(LabResult):
    """Result of :func:`symmetry`.

    Attributes:
        runs: the three cases, in the order constant, constant + dropout, random.
        steps, lr, batch_size, dropout, constant, activation, seed: the settings used.
    """

    runs: tuple[SymmetryRun, ...]
    steps: int
    lr: float
    batch_size: int
    dropout: float
    constant: float
    activation: str
    seed: int

    def run(self, case: str) -> SymmetryRun:
        """Return the run of ``case``."""
        return {r.case: r for r in self.runs}[case]

    def comparisons(self) -> list[Comparison]:
        """One row per case: the two units' difference after the last step.

        Agreement: exactly 0.0 for the constant init (no tolerance: the argument is exact), > 0 for the
        dropout and random cases.

        Examples:
            >>> [(row.quantity, row.measured, row.agreement) for row in symmetry(steps=3).comparisons()][0]
            ('constant', 0.0, 'yes')
        """
        rows = []
        for run in self.runs:
            diff = float(run.difference[-1])
            exact = run.case == "constant"
            rows.append(
                Comparison(
                    run.case, CHAPTER_SYMMETRY.get(run.case, "-"), diff, "0 exactly" if exact else "> 0",
                    agrees=diff == 0.0 if exact else diff > 0.0,
                )
            )
        return rows


def symmetry(
    *,
    steps: int = 1000,
    lr: float = 0.05,
    batch_size: int = 16,
    dropout: float = 0.5,
    constant: float = 0.3,
    inputs: int = 4,
    samples: int = 256,
    activation: str = "tanh",
    seed: int = 0,
) -> Symmetry:
    """Train the chapter's two-hidden-unit MLP from constant init (with and without dropout) and random init.

    With :math:`W^{(1)} = c\\,\\mathbf{1}` and equal output weights, the two hidden units are
    interchangeable, so their gradients are equal entry by entry and stay so under SGD:

    .. math::
        h_1 = h_2 \\;\\Rightarrow\\; \\frac{\\partial L}{\\partial W^{(1)}_{1,:}} =
        \\frac{\\partial L}{\\partial W^{(1)}_{2,:}} \\;\\Rightarrow\\; W^{(1)}_{1,:} = W^{(1)}_{2,:}
        \\text{ after every step}

    (D2L "Breaking the Symmetry"). Dropout (Srivastava et al. 2014) masks the units independently and
    separates them. Every step of every case uses the same minibatches (float64, a seeded generator).

    Args:
        steps: SGD steps; lr: learning rate; batch_size: minibatch size.
        dropout: drop probability of the dropout case, in (0, 1).
        constant: the value of every weight and bias at constant initialization.
        inputs: input dimension; samples: size of the synthetic regression data set.
        activation: hidden activation (registry name).
        seed: seed of the torch generator (data, minibatches, masks, random init).

    Examples:
        >>> r = symmetry(steps=50)
        >>> float(r.run("constant").difference.max()), bool(r.run("constant + dropout").difference[-1] > 0)
        (0.0, True)
    """
    steps = check_int_at_least("steps", steps, 1)
    batch_size = check_int_at_least("batch_size", batch_size, 1)
    inputs = check_int_at_least("inputs", inputs, 1)
    samples = check_int_at_least("samples", samples, 1)
    lr, constant = check_positive("lr", lr), check_finite("constant", constant)
    dropout = check_positive("dropout", dropout)
    if dropout >= 1:
        raise InvalidArgumentError(f"dropout must be in (0, 1), got {dropout}: pass e.g. dropout=0.5")
    act = activation_list(activation)[0]
    seed = check_seed("seed", seed)
    # data and teacher (samples, inputs) float64, the minibatch indices, ~100 bytes a step per case kept
    need = 16.0 * samples * inputs + 8.0 * steps * batch_size + 3 * 100.0 * steps
    check_memory(f"steps={steps}, batch_size={batch_size}, samples={samples}, inputs={inputs}", need,
                 "pass fewer steps or a smaller batch")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, inputs, generator=gen, dtype=torch.float64)
    y = torch.sin(x @ torch.randn(inputs, 1, generator=gen, dtype=torch.float64))  # a teacher to fit
    batches = torch.randint(0, samples, (steps, batch_size), generator=gen)
    cases = {
        "constant": (_constant_params(inputs, constant), 0.0),
        "constant + dropout": (_constant_params(inputs, constant), dropout),
        "random": (_random_params(inputs, gen), 0.0),
    }
    runs = tuple(_train(name, p, drop, act, x, y, batches, lr, gen) for name, (p, drop) in cases.items())
    return Symmetry(
        runs=runs,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        dropout=dropout,
        constant=constant,
        activation=act.name,
        seed=seed,
    )


def _constant_params(inputs: int, c: float) -> list[torch.Tensor]:
    shapes = [(2, inputs), (2,), (1, 2), (1,)]  # W1, b1, W2, b2
    return [torch.full(s, c, dtype=torch.float64, requires_grad=True) for s in shapes]


def _random_params(inputs: int, gen: torch.Generator) -> list[torch.Tensor]:
    w1, w2 = torch.empty(2, inputs, dtype=torch.float64), torch.empty(1, 2, dtype=torch.float64)
    torch.nn.init.xavier_normal_(w1, generator=gen)
    torch.nn.init.xavier_normal_(w2, generator=gen)
    params = [w1, torch.zeros(2, dtype=torch.float64), w2, torch.zeros(1, dtype=torch.float64)]
    return [p.requires_grad_(True) for p in params]


def _forward(params, act, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    w1, b1, w2, b2 = params
    h = act.fn(x @ w1.T + b1)
    if mask is not None:
        h = h * mask
    return h @ w2.T + b2


def _difference(params) -> float:
    w1, b1, w2, _ = (p.detach() for p in params)
    return float((w1[0] - w1[1]).abs().max() + (b1[0] - b1[1]).abs() + (w2[0, 0] - w2[0, 1]).abs())


def _train(case, params, drop, act, x, y, batches, lr, gen) -> SymmetryRun:
    diffs = [_difference(params)]
    for idx in batches:
        mask = None
        if drop > 0:  # inverted dropout with our generator (torch's dropout takes none)
            mask = (torch.rand(len(idx), 2, generator=gen, dtype=torch.float64) >= drop) / (1 - drop)
        loss = torch.mean((_forward(params, act, x[idx], mask) - y[idx]) ** 2)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * g
        diffs.append(_difference(params))
    with torch.no_grad():
        final = float(torch.mean((_forward(params, act, x, None) - y) ** 2))
    return SymmetryRun(
        case=case,
        difference=np.array(diffs),
        final_loss=final,
        hidden_weights=params[0].detach().numpy().copy(),
    )
