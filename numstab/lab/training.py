"""Training on real data: what instability does to learning, and what each remedy buys.

The chapter (D2L "Numerical Stability and Initialization") names the consequences of a bad
initialization: a narrow learning-rate window, ``inf`` and ``NaN``, bottom layers that never train,
training that stalls. This module shows them, measured, on scikit-learn's handwritten digits
(``load_digits``: 1797 8x8 images that ship with the package; a fixed, stratified train/test split,
features standardized by the training statistics).

Four experiments, each returning a frozen dataclass:

- :func:`depth_sweep`: deep MLPs with the chapter's activation/init pairs at several depths;
- :func:`lr_sweep`: the learning-rate window that trains, for a poor and a good init;
- :func:`remedies`: one deep net with and without each remedy (residual, LayerNorm, clipping, LARS,
  scaled sigmoid, orthogonal and critical init);
- :func:`trainability_map`: depth x sigma_w for tanh, beside the 6 xi_c boundary of Schoenholz et al.
  (2017), "Deep Information Propagation".

Every model is an MLP: ``depth`` hidden layers ``h <- f(W h + b)`` of ``width`` units, then a linear
read-out, trained by minibatch SGD on the cross-entropy. Many models train *at once*: an experiment
groups the models that share an architecture and runs each group as stacked parameters with batched
matmuls (:mod:`numstab.lab._batched`), not one model after another. Initial weights are drawn with
``torch.nn.init`` on each model's slice, with a generator seeded by the model's seed, so the laws are
exactly torch's and a model can be replayed alone.

A run *diverged* when its loss or a gradient became ``inf``/``NaN``; ``failure_step`` is the first such
step (0-based: step ``t`` is the forward/backward pass before the ``t``-th update). It is tracked on
the device, per model, and read once at the end.

Examples:
    >>> from numstab.lab import training
    >>> res = training.depth_sweep([2], [training.Setup("tanh", "xavier_normal")], steps=20, seeds=[0])
    >>> run = res.runs[0]
    >>> run.depth, run.failure_step, 0.0 <= run.test_accuracy <= 1.0
    (2, None, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from numstab import activations, display, jsonio
from numstab._repr import short_repr
from numstab.errors import (
    InvalidArgumentError,
    NoCriticalPointError,
    NumstabError,
    NumstabTypeError,
    UnknownNameError,
    check_int_at_least,
    check_nonnegative,
    check_positive,
    check_seed,
)
from numstab.lab import _batched, _digits
from numstab.lab._batched import Architecture, InitSpec, Rule
from numstab.resources import check_memory

__all__ = [
    "Setup",
    "Run",
    "DepthSweep",
    "LrSweep",
    "Remedies",
    "TrainabilityMap",
    "depth_sweep",
    "lr_sweep",
    "remedies",
    "trainability_map",
    "DEFAULT_SETUPS",
    "REMEDIES",
    "INITS",
    "NUMBER_OF",
    "TRAINED_ACCURACY",
    "Outcome",
    "outcome",
    "select",
    "check_arguments",
    "LR_SETUPS",
    "REMEDY_BASE",
    "LARS_TRUST",
]

#: A run "trains" when its test accuracy reaches this (chance is 0.1 on ten balanced classes).
TRAINED_ACCURACY = 0.5

#: Initialization schemes a :class:`Setup` may name (see :class:`numstab.lab._batched.InitSpec`).
INITS = _batched.SCHEMES

#: The number each init takes, by name (``scale``: raw std; ``gain``; ``weight_std``: sigma_w).
NUMBER_OF = _batched.NUMBER_OF

#: Remedies :func:`remedies` knows, each one change to the base network or its training.
REMEDIES = ("residual", "layernorm", "clip", "lars", "scaled_sigmoid", "orthogonal", "critical")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Setup:
    """An activation and an initialization: one line of the chapter's comparisons.

    Attributes:
        activation: a name from :mod:`numstab.activations`.
        init: one of :data:`INITS`: ``normal`` (entries N(0, scale**2), the book's raw scale),
            ``xavier_normal``, ``kaiming_normal`` (torch's, gain 1 / relu), ``orthogonal`` (times
            ``gain``), ``weight_std`` (N(0, weight_std**2 / fan_in): the mean-field sigma_w), ``critical``
            (``numstab.init.critical_``).
        scale: the raw std of each entry, for ``normal`` only (default 1).
        bias_std: biases ~ N(0, bias_std**2); 0 gives zero biases (torch's MLP default differs).
        label: name used in tables; built from the fields when empty.
        gain: the orthogonal matrix's gain, for ``orthogonal`` only (default 1).
        weight_std: sigma_w, for ``weight_std`` only (default 1).

    Each number is given only to the init that takes it (:data:`numstab.lab._batched.NUMBER_OF`):
    ``Setup("relu", "orthogonal", 2.0)`` is an error that says to write ``gain=2.0``.
    """

    activation: str
    init: str
    scale: float | None = None
    bias_std: float = 0.0
    label: str = ""
    gain: float | None = None
    weight_std: float | None = None

    def __post_init__(self) -> None:
        _batched.settle_numbers(self, self.init)
        if not self.label:
            object.__setattr__(self, "label", _describe(self))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, with only the number the init takes (``scale``, ``gain``, ``weight_std``)."""
        return _without_unused_numbers(asdict(self))


def _describe(setup: Setup) -> str:
    """"activation, init" with the init's number: "relu, N(0, 0.4²)", "tanh, orthogonal×2", "tanh, σw=1.5"."""
    if setup.init == "normal":
        init = f"N(0, {setup.scale:g}²)"
    elif setup.init == "orthogonal":
        init = f"orthogonal×{setup.gain:g}"
    elif setup.init == "weight_std":
        init = f"σw={setup.weight_std:g}"
    else:
        init = {"xavier_normal": "Xavier", "kaiming_normal": "Kaiming"}.get(setup.init, setup.init)
    return f"{setup.activation}, {init}"


#: The chapter's comparisons: sigmoid with N(0, 0.01) ("fine for small nets"), tanh with Xavier,
#: relu with Kaiming, relu with an overly large scale, and the chapter's fix 4 sigmoid(x) - 2 with Xavier.
DEFAULT_SETUPS = (
    Setup("sigmoid", "normal", 0.01),
    Setup("tanh", "xavier_normal"),
    Setup("relu", "kaiming_normal"),
    Setup("relu", "normal", 0.4),
    Setup("scaled_sigmoid", "xavier_normal"),
)


@dataclass(frozen=True, repr=False)
class Run:
    """One trained model and what was measured on it.

    Attributes:
        label: the setup's label (or the remedy's name in :func:`remedies`).
        activation: activation used.
        init: init scheme used.
        scale: the raw std of each entry (``normal``; None for the others).
        depth: hidden layers.
        lr: SGD learning rate.
        seed: seed of the initialization.
        remedy: the remedy applied, "none" for the base network.
        test_accuracy: share of test images classified right after the last step.
        final_loss: training cross-entropy over the whole training set after the last step (may be nan).
        failure_step: first step whose loss or gradient was inf/NaN; None if the run stayed finite.
        losses: minibatch loss at each recorded step (``record_steps`` of the result).
        grad_norms: per recorded step, each layer's gradient norm (weight and bias), input layer first.
        weight_change: per layer, ||theta_end - theta_0|| / ||theta_0||: did the bottom layers move?
        gain: the orthogonal matrix's gain (``orthogonal``; None for the others).
        weight_std: sigma_w (``weight_std``; None for the others).
    """

    label: str
    activation: str
    init: str
    scale: float | None
    depth: int
    lr: float
    seed: int
    remedy: str
    test_accuracy: float
    final_loss: float
    failure_step: int | None
    losses: tuple[float, ...]
    grad_norms: tuple[tuple[float, ...], ...]
    weight_change: tuple[float, ...]
    gain: float | None = None
    weight_std: float | None = None

    @property
    def diverged(self) -> bool:
        """Whether a loss or gradient became inf/NaN."""
        return self.failure_step is not None

    @property
    def trained(self) -> bool:
        """Whether the run reached :data:`TRAINED_ACCURACY` without diverging."""
        return not self.diverged and self.test_accuracy >= TRAINED_ACCURACY

    __repr__ = short_repr

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (lists for tuples), with only the number the init takes."""
        return jsonio.plain(_without_unused_numbers(asdict(self)))


def _runs(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in runs]


def _without_unused_numbers(fields: dict[str, Any]) -> dict[str, Any]:
    """Drop the init numbers (``scale``, ``gain``, ``weight_std``) that are None: the init takes none."""
    return {k: v for k, v in fields.items() if not (k in ("scale", "gain", "weight_std") and v is None)}


class _Html(display.Displayed):
    """Mixin: notebooks, ``str`` and ``figure()`` go through the renderer registered for the type."""

    __repr__ = short_repr


def select(runs: Iterable[Run], **where: Any) -> list[Run]:
    """The runs whose fields equal ``where`` (e.g. ``select(r.runs, label="tanh, Xavier", depth=10)``)."""
    return [r for r in runs if all(getattr(r, k) == v for k, v in where.items())]


def _known(what: str, value: Any, valid: Sequence[Any]) -> Any:
    """``value`` if it is one of ``valid``; else UnknownNameError listing them (a typo never reads as NaN)."""
    if value not in valid:
        raise UnknownNameError(what, value, [repr(v) if isinstance(v, str) else str(v) for v in valid])
    return value


def _mean_accuracy(runs: Sequence[Run]) -> float:
    return sum(r.test_accuracy for r in runs) / len(runs) if runs else math.nan


@dataclass(frozen=True)
class Outcome:
    """What the runs of one cell (a setup at one depth or rate, or one remedy; over seeds) came to.

    Attributes:
        accuracy: mean test accuracy.
        bottom_change: mean relative change of the input layer, ||theta_end - theta_0|| / ||theta_0||.
        first_failure: the earliest step at which a run's loss or gradient became inf/NaN; None if none.
        failed: how many runs became inf/NaN.
        runs: how many runs.
        verdict: "diverged" (a run became inf/NaN), else "trainable" (every run reached
            :data:`TRAINED_ACCURACY`) or "untrainable".
    """

    accuracy: float
    bottom_change: float
    first_failure: int | None
    failed: int
    runs: int
    verdict: str


def outcome(runs: Sequence[Run]) -> Outcome:
    """Summarize runs over seeds: mean accuracy and bottom-layer change, failures, the verdict."""
    steps = [r.failure_step for r in runs if r.failure_step is not None]
    if steps:
        verdict = "diverged"
    else:
        verdict = "trainable" if all(r.trained for r in runs) else "untrainable"
    return Outcome(
        accuracy=sum(r.test_accuracy for r in runs) / len(runs),
        bottom_change=sum(r.weight_change[0] for r in runs) / len(runs),
        first_failure=min(steps) if steps else None,
        failed=len(steps),
        runs=len(runs),
        verdict=verdict,
    )


@dataclass(frozen=True, repr=False)
class DepthSweep(_Html):
    """Test accuracy, loss curves and per-layer gradient norms of each setup at each depth.

    Attributes:
        depths: hidden-layer counts trained.
        setups: the activation/init pairs.
        seeds: initialization seeds (one model per setup, depth and seed).
        steps: SGD steps per model.
        lr: learning rate.
        record_steps: steps at which each run's loss and gradient norms were recorded.
        runs: every trained model.
    """

    depths: tuple[int, ...]
    setups: tuple[Setup, ...]
    seeds: tuple[int, ...]
    steps: int
    lr: float
    record_steps: tuple[int, ...]
    runs: tuple[Run, ...]

    def accuracy(self, label: str, depth: int) -> float:
        """Mean test accuracy over seeds of one setup at one depth.

        Raises:
            UnknownNameError: ``label`` is not a setup's label or ``depth`` was not trained.
        """
        return _mean_accuracy(self._runs_at(label, depth))

    def outcome(self, label: str, depth: int) -> Outcome:
        """The :class:`Outcome` of one setup at one depth, over seeds.

        Raises:
            UnknownNameError: ``label`` is not a setup's label or ``depth`` was not trained.
        """
        return outcome(self._runs_at(label, depth))

    def _runs_at(self, label: str, depth: int) -> list[Run]:
        _known("setup label", label, [s.label for s in self.setups])
        _known("depth", depth, self.depths)
        return select(self.runs, label=label, depth=depth)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        setups = [s.to_dict() for s in self.setups]
        return jsonio.plain({**asdict(self), "setups": setups, "runs": _runs(self.runs)})


@dataclass(frozen=True, repr=False)
class LrSweep(_Html):
    """Learning rates at a fixed depth: the window that trains, and where each diverging run failed.

    Attributes:
        lrs: learning rates tried, increasing.
        setups: the activation/init pairs.
        depth: hidden layers.
        seeds: initialization seeds.
        steps: SGD steps per model.
        record_steps: steps at which losses were recorded.
        runs: every trained model.
    """

    lrs: tuple[float, ...]
    setups: tuple[Setup, ...]
    depth: int
    seeds: tuple[int, ...]
    steps: int
    record_steps: tuple[int, ...]
    runs: tuple[Run, ...]

    def accuracy(self, label: str, lr: float) -> float:
        """Mean test accuracy over seeds of one setup at one learning rate.

        Raises:
            UnknownNameError: ``label`` is not a setup's label or ``lr`` was not tried.
        """
        return _mean_accuracy(self._runs_at(label, lr))

    def outcome(self, label: str, lr: float) -> Outcome:
        """The :class:`Outcome` of one setup at one learning rate, over seeds.

        Raises:
            UnknownNameError: ``label`` is not a setup's label or ``lr`` was not tried.
        """
        return outcome(self._runs_at(label, lr))

    def _runs_at(self, label: str, lr: float) -> list[Run]:
        _known("setup label", label, [s.label for s in self.setups])
        _known("learning rate", lr, self.lrs)
        return select(self.runs, label=label, lr=lr)

    def window(self, label: str) -> tuple[float, float] | None:
        """Smallest and largest learning rate at which every seed of ``label`` trained; None if none did.

        Raises:
            UnknownNameError: ``label`` is not a setup's label (the message lists them).
        """
        _known("setup label", label, [s.label for s in self.setups])
        good = [lr for lr in self.lrs if all(r.trained for r in select(self.runs, label=label, lr=lr))]
        return (min(good), max(good)) if good else None

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready, with each setup's window."""
        out = {**asdict(self), "setups": [s.to_dict() for s in self.setups], "runs": _runs(self.runs)}
        out["windows"] = {s.label: self.window(s.label) for s in self.setups}
        return jsonio.plain(out)


@dataclass(frozen=True, repr=False)
class Remedies(_Html):
    """One deep network trained as is ("none") and with each remedy, same seeds and budget.

    Attributes:
        base: the activation/init of the base network.
        depth: hidden layers.
        remedies: remedies tried ("none" first).
        seeds: initialization seeds.
        steps: SGD steps per model.
        lr: learning rate.
        record_steps: steps at which losses and gradient norms were recorded.
        runs: every trained model; ``Run.remedy`` says which.
    """

    base: Setup
    depth: int
    remedies: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int
    lr: float
    record_steps: tuple[int, ...]
    runs: tuple[Run, ...]

    def accuracy(self, remedy: str) -> float:
        """Mean test accuracy over seeds with ``remedy`` ("none" for the base).

        Raises:
            UnknownNameError: ``remedy`` was not tried (the message lists the remedies that were).
        """
        return _mean_accuracy(select(self.runs, remedy=_known("remedy", remedy, self.remedies)))

    def outcome(self, remedy: str) -> Outcome:
        """The :class:`Outcome` of the base network with ``remedy`` ("none": as is), over seeds.

        Raises:
            UnknownNameError: ``remedy`` was not tried (the message lists the remedies that were).
        """
        return outcome(select(self.runs, remedy=_known("remedy", remedy, self.remedies)))

    def effect(self, remedy: str) -> float:
        """Change of mean test accuracy the remedy buys over the base network."""
        return self.accuracy(remedy) - self.accuracy("none")

    def bottom_change(self, remedy: str) -> float:
        """Mean over seeds of the input layer's relative parameter change: did the bottom layer train?"""
        runs = select(self.runs, remedy=_known("remedy", remedy, self.remedies))
        return sum(r.weight_change[0] for r in runs) / len(runs)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready, with each remedy's effect."""
        out = {**asdict(self), "base": self.base.to_dict(), "runs": _runs(self.runs)}
        out["effects"] = {r: self.effect(r) for r in self.remedies}
        return jsonio.plain(out)


@dataclass(frozen=True, repr=False)
class TrainabilityMap(_Html):
    """Test accuracy over depth x sigma_w for one activation, with the 6 xi_c boundary of the theory.

    Schoenholz et al. (2017) show that a random network can be trained only while correlations between
    inputs survive its depth: :math:`L \\lesssim 6\\,\\xi_c`, where

    .. math::
        \\xi_c^{-1} = -\\ln\\Big(\\sigma_w^2 \\int \\mathcal{D}z_1\\mathcal{D}z_2\\,
        \\phi'(u_1)\\phi'(u_2)\\Big)

    at the fixed point of the correlation map (:func:`numstab.theory.depth_scales`).

    Attributes:
        depths: hidden-layer counts (rows).
        weight_stds: sigma_w values (columns); weights ~ N(0, sigma_w**2 / fan_in).
        activation: the activation.
        bias_std: sigma_b; biases ~ N(0, sigma_b**2).
        seeds: initialization seeds averaged over.
        steps: SGD steps per model.
        lr: learning rate.
        accuracy: mean test accuracy, shape (len(depths), len(weight_stds)).
        diverged: number of seeds whose run became inf/NaN, same shape.
        xi_c: the theory's correlation depth scale per sigma_w (inf at criticality).
    """

    depths: tuple[int, ...]
    weight_stds: tuple[float, ...]
    activation: str
    bias_std: float
    seeds: tuple[int, ...]
    steps: int
    lr: float
    accuracy: tuple[tuple[float, ...], ...]
    diverged: tuple[tuple[int, ...], ...]
    xi_c: tuple[float, ...]

    @property
    def boundary(self) -> tuple[float, ...]:
        """6 xi_c per sigma_w: the deepest trainable depth the theory allows."""
        return tuple(6.0 * x for x in self.xi_c)

    def trained(self) -> tuple[tuple[bool, ...], ...]:
        """Cells whose mean accuracy reached :data:`TRAINED_ACCURACY`."""
        return tuple(tuple(a >= TRAINED_ACCURACY for a in row) for row in self.accuracy)

    def deepest_trained(self) -> tuple[int | None, ...]:
        """Per sigma_w, the deepest depth whose mean accuracy reached :data:`TRAINED_ACCURACY` (or None)."""
        trained = self.trained()
        return tuple(
            max((d for i, d in enumerate(self.depths) if trained[i][j]), default=None)
            for j in range(len(self.weight_stds))
        )

    def agrees(self) -> tuple[bool, ...]:
        """Per sigma_w, whether the theory holds: no depth deeper than 6 xi_c trained (true if none did)."""
        return tuple(d is None or d <= b for d, b in zip(self.deepest_trained(), self.boundary, strict=True))

    def verdicts(self) -> tuple[str, ...]:
        """Per sigma_w, a verdict word: :meth:`agrees`, never claiming agreement where nothing trained.

        "agrees": some depth trained and none deeper than 6 xi_c; "disagrees": a depth deeper than
        6 xi_c trained; "nothing trained": no depth reached :data:`TRAINED_ACCURACY`, so the column tests
        nothing (6 xi_c is an upper bound: failing to train below it does not contradict it).
        """
        return tuple(
            "nothing trained" if d is None else ("agrees" if ok else "disagrees")
            for d, ok in zip(self.deepest_trained(), self.agrees(), strict=True)
        )

    def outside_boundary(self, tolerance: float = 0.0) -> list[tuple[int, float]]:
        """Trained cells (depth, sigma_w) deeper than (1 + tolerance) * 6 xi_c: the theory's misses."""
        trained, boundary = self.trained(), self.boundary
        return [
            (d, s)
            for i, d in enumerate(self.depths)
            for j, s in enumerate(self.weight_stds)
            if trained[i][j] and d > (1.0 + tolerance) * boundary[j]
        ]

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (inf spelled as a float: use numstab.jsonio to write it)."""
        return jsonio.plain({**asdict(self), "boundary": self.boundary, "trained": self.trained()})


# ---------------------------------------------------------------------------------------------
# Validation: every argument is checked before any training starts.


def _check_setup(setup: Setup) -> Setup:
    if not isinstance(setup, Setup):
        raise InvalidArgumentError(f"setups must hold numstab.lab.training.Setup objects, got {setup!r}")
    activations.get(setup.activation)  # UnknownNameError lists the valid names
    if setup.init not in INITS:
        raise UnknownNameError("init", setup.init, INITS)
    number = _batched.NUMBER_OF.get(setup.init)
    if number is not None:
        check_positive(f"{number} of {setup.label!r}", getattr(setup, number))
    check_nonnegative(f"bias_std of {setup.label!r}", setup.bias_std)
    return setup


def _nonempty(name: str, values: Iterable[Any], hint: str) -> tuple[Any, ...]:
    values = tuple(values)
    if not values:
        raise InvalidArgumentError(f"{name} is empty: nothing to train; pass at least one, e.g. {hint}")
    return values


def _check_depths(depths: Iterable[int]) -> tuple[int, ...]:
    return tuple(check_int_at_least("depth", d, 1) for d in _nonempty("depths", depths, "depths=[2, 10]"))


def _check_lrs(lrs: Iterable[float]) -> tuple[float, ...]:
    return tuple(sorted(check_positive("lr", lr) for lr in _nonempty("lrs", lrs, "lrs=[0.01, 0.1]")))


@dataclass(frozen=True)
class _Budget:
    """The training budget shared by every model of an experiment (validated on construction)."""

    steps: int
    batch_size: int
    width: int
    data_seed: int
    record_every: int = field(init=False)

    def __post_init__(self) -> None:
        check_int_at_least("steps", self.steps, 1)
        check_int_at_least("batch_size", self.batch_size, 1)
        check_int_at_least("width", self.width, 1)
        check_seed("data_seed", self.data_seed)
        object.__setattr__(self, "record_every", max(1, self.steps // 50))


def _check_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    return tuple(check_seed("seed", s) for s in _nonempty("seeds", seeds, "seeds=[0, 1]"))


# ---------------------------------------------------------------------------------------------
# Running: jobs grouped by architecture and update rule, each group one batched training.


@dataclass(frozen=True)
class _Job:
    arch: Architecture
    rule: Rule
    spec: InitSpec
    lr: float
    label: str
    remedy: str = "none"


def _run_jobs(jobs: Sequence[_Job], budget: _Budget, progress: Progress | None) -> tuple[Run, ...]:
    data = _digits.load(seed=budget.data_seed)
    groups: dict[tuple[Architecture, Rule], list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault((job.arch, job.rule), []).append(index)
    runs: list[Run | None] = [None] * len(jobs)
    total = len(groups) * budget.steps
    for done, ((arch, rule), members) in enumerate(groups.items()):
        tick = None if progress is None else (lambda k, base=done * budget.steps: progress(base + k, total))
        outcome = _train_group(arch, rule, [jobs[i] for i in members], data, budget, tick)
        for slot, index in enumerate(members):
            runs[index] = _to_run(jobs[index], outcome, slot)
    return tuple(runs)  # type: ignore[arg-type]


def _train_group(
    arch: Architecture,
    rule: Rule,
    jobs: Sequence[_Job],
    data: _digits.Digits,
    budget: _Budget,
    tick: Callable[[int], None] | None,
) -> _batched.Outcome:
    stack = _batched.init_stack(arch, [j.spec for j in jobs])
    lrs = torch.tensor([j.lr for j in jobs])
    return _batched.train(
        arch, stack, lrs, data, steps=budget.steps, batch_size=budget.batch_size, rule=rule,
        record_every=budget.record_every, order_seed=budget.data_seed, progress=tick,
    )  # fmt: skip


def _to_run(job: _Job, out: _batched.Outcome, m: int) -> Run:
    failure = int(out.first_failure[m])
    return Run(
        label=job.label,
        activation=job.arch.activation,
        init=job.spec.scheme,
        scale=_number(job.spec, "scale"),
        depth=job.arch.depth,
        lr=job.lr,
        seed=job.spec.seed,
        remedy=job.remedy,
        test_accuracy=float(out.test_accuracy[m]),
        final_loss=float(out.final_loss[m]),
        failure_step=None if failure < 0 else failure,
        losses=tuple(out.losses[:, m].tolist()),
        grad_norms=tuple(tuple(row) for row in out.grad_norms[:, m].tolist()),
        weight_change=tuple(out.weight_change[m].tolist()),
        gain=_number(job.spec, "gain"),
        weight_std=_number(job.spec, "weight_std"),
    )


def _number(spec: InitSpec, name: str) -> float | None:
    """The spec's number called ``name`` where its scheme takes it, else None."""
    return getattr(spec, name) if _batched.NUMBER_OF.get(spec.scheme) == name else None


def _job(setup: Setup, depth: int, width: int, seed: int, lr: float, **arch: Any) -> _Job:
    spec = InitSpec(setup.init, setup.scale, setup.bias_std, seed, setup.gain, setup.weight_std)
    return _Job(Architecture(setup.activation, depth, width, **arch), Rule(), spec, lr, setup.label)


@dataclass(frozen=True)
class _Plan:
    """A validated experiment: its jobs, its budget, and how its runs become the result."""

    jobs: list[_Job]
    budget: _Budget
    finish: Callable[[tuple[Run, ...]], Any]

    def __post_init__(self) -> None:
        # Per model: float32 parameters four times (weights, their start copy, gradients, update) and the
        # activations of a batch kept for the backward pass; every model counted, as if trained at once.
        b = self.budget
        per_model = [
            4.0 * (4 * (j.arch.depth * b.width * (b.width + 1) + 74 * b.width) + 3 * b.batch_size * b.width
                   * (j.arch.depth + 2))
            for j in self.jobs
        ]  # fmt: skip
        check_memory(f"{len(self.jobs)} models of width={b.width}, batch_size={b.batch_size}", sum(per_model),
                     "pass a smaller width or depth, or fewer seeds")


#: ``progress=`` value by which :func:`check_arguments` runs an experiment up to its plan only.
_CHECK_ONLY: Any = object()


def _execute(plan: _Plan, progress: Progress | None) -> Any:
    """Train the plan's jobs and build the result (nothing, for :func:`check_arguments`)."""
    if progress is _CHECK_ONLY:
        return None
    if progress is not None and not callable(progress):
        raise NumstabTypeError(
            f"progress must be None or a callable progress(done, total), got {progress!r}: pass None for no "
            "progress reports"
        )
    return plan.finish(_run_jobs(plan.jobs, plan.budget, progress))


def _records(budget: _Budget) -> tuple[int, ...]:
    return tuple(range(0, budget.steps, budget.record_every))


# ---------------------------------------------------------------------------------------------
# The four experiments.


def depth_sweep(
    depths: Sequence[int] = (2, 5, 10, 20),
    setups: Sequence[Setup] = DEFAULT_SETUPS,
    *,
    steps: int = 400,
    lr: float = 0.05,
    seeds: Sequence[int] = (0, 1),
    width: int = 64,
    batch_size: int = 64,
    data_seed: int = 0,
    progress: Progress | None = None,
) -> DepthSweep:
    """Train MLPs of each depth with each activation/init pair on the digits; measure what learns.

    The chapter's claims, measured: with N(0, 0.01) a deep sigmoid net passes products of Jacobians
    with norm about :math:`\\|W\\|\\,\\sigma'(z) \\le 0.01\\sqrt{n}/4` per layer to its bottom layers, so
    they never move and the net stays at chance; Xavier (Glorot & Bengio 2010) for tanh and Kaiming
    (He et al. 2015) for relu keep :math:`\\mathrm{Var}[h_l]` constant and train; an overly large scale
    makes relu activations grow like :math:`(\\text{scale}^2 n/2)^{l/2}` until a step overflows.

    Args:
        depths: hidden-layer counts, each >= 1.
        setups: activation/init pairs (:data:`DEFAULT_SETUPS`: the chapter's five).
        steps: SGD steps per model.
        lr: learning rate, > 0.
        seeds: initialization seeds (one model each).
        width: units per hidden layer.
        batch_size: examples per step.
        data_seed: seed of the train/test split and of the minibatch order.
        progress: called as ``progress(done, total)`` (steps of batched groups) while training.

    Examples:
        >>> r = depth_sweep([3], [Setup("relu", "kaiming_normal")], steps=10, seeds=[0, 1])
        >>> len(r.runs), r.runs[1].seed
        (2, 1)
    """
    depths, seeds = _check_depths(depths), _check_seeds(seeds)
    setups = tuple(_check_setup(s) for s in _nonempty("setups", setups, "setups=DEFAULT_SETUPS"))
    lr = check_positive("lr", lr)
    budget = _Budget(steps, batch_size, width, data_seed)
    jobs = [_job(s, d, width, seed, lr) for s in setups for d in depths for seed in seeds]
    plan = _Plan(
        jobs, budget, lambda runs: DepthSweep(depths, setups, seeds, steps, lr, _records(budget), runs)
    )
    return _execute(plan, progress)


#: The poor and the good init of :func:`lr_sweep`: relu with N(0, 0.25**2) entries (at width 64 the signal
#: grows by sqrt(0.25**2 * 64 / 2) = 1.41 per layer, 32x over 10 layers) and relu with Kaiming (growth 1).
LR_SETUPS = (Setup("relu", "normal", 0.25), Setup("relu", "kaiming_normal"))


def lr_sweep(
    lrs: Sequence[float] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
    setups: Sequence[Setup] = LR_SETUPS,
    *,
    depth: int = 10,
    steps: int = 400,
    seeds: Sequence[int] = (0, 1),
    width: int = 64,
    batch_size: int = 64,
    data_seed: int = 0,
    progress: Progress | None = None,
) -> LrSweep:
    """Sweep the learning rate at a fixed depth: the window that trains, and where runs blow up.

    A step changes the loss by about :math:`-\\eta\\|g\\|^2`; when the gradient's scale is off by a
    factor :math:`k` across layers (a poor init), no single :math:`\\eta` suits every layer and the
    window of rates that train narrows (the chapter's "narrow learning-rate window"). Too large a rate
    overshoots until a value overflows; each such run reports its ``failure_step``. All rates of one
    setup train in one batch: the rate is a per-model tensor.

    Args:
        lrs: learning rates, each > 0.
        setups: activation/init pairs (:data:`LR_SETUPS`: a poor and a good init for relu).
        depth: hidden layers, >= 1.
        steps: SGD steps per model.
        seeds: initialization seeds.
        width: units per hidden layer.
        batch_size: examples per step.
        data_seed: seed of the split and the minibatch order.
        progress: called as ``progress(done, total)`` while training.

    Examples:
        >>> r = lr_sweep([0.01, 100.0], [Setup("relu", "kaiming_normal")], depth=2, steps=10, seeds=[0])
        >>> [run.failure_step is not None for run in r.runs]
        [False, True]
    """
    lrs, seeds = _check_lrs(lrs), _check_seeds(seeds)
    depth = check_int_at_least("depth", depth, 1)
    setups = tuple(_check_setup(s) for s in _nonempty("setups", setups, "setups=LR_SETUPS"))
    budget = _Budget(steps, batch_size, width, data_seed)
    jobs = [_job(s, depth, width, seed, lr) for s in setups for lr in lrs for seed in seeds]
    plan = _Plan(jobs, budget, lambda runs: LrSweep(lrs, setups, depth, seeds, steps, _records(budget), runs))
    return _execute(plan, progress)


def _critical_sigma_w(activation: str, bias_std: float) -> float:
    from numstab import theory

    sigma = float(theory.critical_weight_std(activation, bias_std))
    if not math.isfinite(sigma):
        raise NoCriticalPointError(
            f"activation {activation!r} has no critical weight_std at bias_std={bias_std}: "
            "drop the 'orthogonal' remedy or choose another base activation"
        )
    return sigma


def _remedy_job(base: Setup, remedy: str, depth: int, width: int, seed: int, lr: float) -> _Job:
    """The base network's job with one remedy applied."""
    job = _job(base, depth, width, seed, lr)
    arch, rule, spec = job.arch, job.rule, job.spec
    if remedy == "residual":
        arch = replace(arch, residual=True)
    elif remedy == "layernorm":
        arch = replace(arch, layernorm=True)
    elif remedy == "clip":
        rule = Rule(clip=1.0)
    elif remedy == "lars":
        rule = Rule(lars=LARS_TRUST)
    elif remedy == "scaled_sigmoid":
        arch = replace(arch, activation="scaled_sigmoid")
    elif remedy == "orthogonal":
        gain = _critical_sigma_w(base.activation, base.bias_std)
        spec = InitSpec("orthogonal", None, spec.bias_std, spec.seed, gain=gain)
    elif remedy == "critical":
        spec = InitSpec("critical", None, spec.bias_std, spec.seed)
    return _Job(arch, rule, spec, lr, remedy, remedy)


#: LARS trust coefficient eta: each layer moves by lr * eta of its own norm per step (You et al. 2017).
LARS_TRUST = 0.02

#: The remedies' default base: the chapter's sigmoid with Xavier, deep enough that it does not train.
REMEDY_BASE = Setup("sigmoid", "xavier_normal")


def remedies(
    names: Sequence[str] = REMEDIES,
    *,
    base: Setup = REMEDY_BASE,
    depth: int = 20,
    steps: int = 400,
    lr: float = 0.05,
    seeds: Sequence[int] = (0, 1),
    width: int = 64,
    batch_size: int = 64,
    data_seed: int = 0,
    progress: Progress | None = None,
) -> Remedies:
    """Train one deep network as is and with each remedy; measure what each buys.

    Remedies (each a single change to ``base``):

    - ``residual``: hidden layers compute :math:`h + f(Wh + b)`, so the Jacobian is
      :math:`I + \\partial f` and products add instead of multiply (He et al. 2016);
    - ``layernorm``: :math:`f(\\mathrm{LN}(Wh + b))`, pre-activations rescaled to unit variance per example
      (Ba et al. 2016);
    - ``clip``: each model's gradient clipped to global norm 1, ``torch.nn.utils.clip_grad_norm_``'s rule;
    - ``lars``: layer-wise adaptive rates, :math:`\\Delta\\theta_l = -\\eta\\,\\tau\\,
      \\frac{\\|\\theta_l\\|}{\\|g_l\\|}\\, g_l` (You et al. 2017; the chapter's exercise), trust
      :math:`\\tau` = :data:`LARS_TRUST`;
    - ``scaled_sigmoid``: the activation becomes :math:`4\\sigma(x) - 2`, the chapter's fix;
    - ``orthogonal``: orthogonal weights with gain the critical :math:`\\sigma_w` (Saxe et al. 2014;
      Xiao et al. 2018's delta-orthogonal, for MLPs);
    - ``critical``: Gaussian weights at the critical :math:`\\sigma_w`, :math:`\\chi_1 = 1`
      (``numstab.init.critical_``; Poole et al. 2016).

    Args:
        names: remedies to try, from :data:`REMEDIES`; the base ("none") always runs.
        base: the network's activation and init (:data:`REMEDY_BASE`).
        depth: hidden layers, >= 1.
        steps: SGD steps per model.
        lr: learning rate, > 0.
        seeds: initialization seeds.
        width: units per hidden layer.
        batch_size: examples per step.
        data_seed: seed of the split and the minibatch order.
        progress: called as ``progress(done, total)`` while training.

    Examples:
        >>> r = remedies(["residual"], depth=3, steps=10, seeds=[0])
        >>> r.remedies, [run.remedy for run in r.runs]
        (('none', 'residual'), ['none', 'residual'])
    """
    names = (names,) if isinstance(names, str) else names
    names = tuple(_nonempty("remedies", names, "remedies=['residual']"))
    for name in names:
        if name not in REMEDIES:
            raise UnknownNameError("remedy", name, REMEDIES)
    base, seeds = _check_setup(base), _check_seeds(seeds)
    depth, lr = check_int_at_least("depth", depth, 1), check_positive("lr", lr)
    budget = _Budget(steps, batch_size, width, data_seed)
    if "orthogonal" in names:
        _critical_sigma_w(base.activation, base.bias_std)  # fail before training, not half-way
    all_names = ("none", *(n for n in names if n != "none"))
    jobs = [_remedy_job(base, n, depth, width, s, lr) if n != "none" else _job(base, depth, width, s, lr)
            for n in all_names for s in seeds]  # fmt: skip
    plan = _Plan(
        jobs, budget, lambda runs: Remedies(base, depth, all_names, seeds, steps, lr, _records(budget), runs)
    )
    return _execute(plan, progress)


def _xi_c(activation: str, weight_std: float, bias_std: float) -> float:
    from numstab import theory

    return float(theory.depth_scales(activation, weight_std, bias_std)[1])


def trainability_map(
    depths: Sequence[int] = (2, 4, 8, 12, 16, 24, 32, 48),
    weight_stds: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0),
    *,
    activation: str = "tanh",
    bias_std: float = 0.05**0.5,
    steps: int = 300,
    seeds: Sequence[int] = (0, 1),
    lr: float = 0.01,
    width: int = 32,
    batch_size: int = 32,
    data_seed: int = 0,
    progress: Progress | None = None,
) -> TrainabilityMap:
    """Train tanh nets over depth x sigma_w and compare the trained region with 6 xi_c.

    Weights ~ N(0, sigma_w^2 / fan_in), biases ~ N(0, sigma_b^2) (the mean-field convention). Schoenholz
    et al. (2017), Fig. 5: networks train only where :math:`L < 6\\xi_c`; this is the same picture at the
    digits' scale (width 32, a few hundred SGD steps), with the boundary from
    :func:`numstab.theory.depth_scales`. All (sigma_w, seed) models of a depth train in one batch.

    Args:
        depths: hidden-layer counts, each >= 1 (rows of the map).
        weight_stds: sigma_w values, each > 0 (columns).
        activation: activation name.
        bias_std: sigma_b (default: sigma_b^2 = 0.05, as in the paper's figure).
        steps: SGD steps per model.
        seeds: initialization seeds averaged over.
        lr: learning rate.
        width: units per hidden layer.
        batch_size: examples per step.
        data_seed: seed of the split and the minibatch order.
        progress: called as ``progress(done, total)`` while training.

    Examples:
        >>> m = trainability_map([2], [1.0], steps=5, seeds=[0])
        >>> len(m.accuracy), len(m.accuracy[0]), m.boundary[0] > 2
        (1, 1, True)
    """
    depths, seeds = _check_depths(depths), _check_seeds(seeds)
    stds = tuple(check_positive("weight_std", s) for s in _nonempty("weight_stds", weight_stds, "[1.0, 2.0]"))
    activations.get(activation)
    bias_std, lr = check_nonnegative("bias_std", bias_std), check_positive("lr", lr)
    budget = _Budget(steps, batch_size, width, data_seed)
    xi_c = tuple(_xi_c(activation, s, bias_std) for s in stds)
    setups = [Setup(activation, "weight_std", bias_std=bias_std, weight_std=s) for s in stds]
    jobs = [_job(u, d, width, seed, lr) for d in depths for u in setups for seed in seeds]

    def finish(runs: tuple[Run, ...]) -> TrainabilityMap:
        cells = [[select(runs, depth=d, weight_std=s) for s in stds] for d in depths]
        accuracy = tuple(tuple(_mean_accuracy(c) for c in row) for row in cells)
        diverged = tuple(tuple(sum(r.diverged for r in c) for c in row) for row in cells)
        return TrainabilityMap(depths, stds, activation, bias_std, seeds, steps, lr, accuracy, diverged, xi_c)

    return _execute(_Plan(jobs, budget, finish), progress)


def check_arguments(experiment: Callable[..., Any], **kwargs: Any) -> None:
    """Validate an experiment's arguments without training (the CLI checks everything first).

    The experiment itself validates and plans, then stops before the first step: its parameters are
    written once, in its signature.

    Args:
        experiment: :func:`depth_sweep`, :func:`lr_sweep`, :func:`remedies` or :func:`trainability_map`.
        **kwargs: the arguments it would be called with.

    Raises:
        InvalidArgumentError: an argument is out of range, a name unknown or a sweep empty.

    Examples:
        >>> check_arguments(depth_sweep, depths=[0])
        Traceback (most recent call last):
        numstab.errors.InvalidArgumentError: depth must be >= 1, got 0: pass depth=1 or more
    """
    if "progress" in kwargs:
        raise InvalidArgumentError(f"{experiment.__name__}: progress= is not checked; drop it")
    try:
        experiment(**kwargs, progress=_CHECK_ONLY)
    except TypeError as err:
        if isinstance(err, NumstabError) or err.__traceback__.tb_next is not None:
            raise  # raised inside the experiment: its own message, or a bug
        raise InvalidArgumentError(f"{experiment.__name__}: {err}") from None  # the call did not bind
