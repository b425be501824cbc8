"""GradientMonitor: per-layer gradient norms during training, one device-to-host transfer per step.

Cost model (why it is cheap): per recorded step the monitor runs one fused ``torch._foreach_norm`` over all
gradients (one read of every gradient, see :mod:`numstab.monitor.norms`), stacks the per-tensor norms and
the GradScaler's scale into one small vector and copies it to the host once. Everything else (per-layer
sums, trend events, history) is arithmetic on a few hundred host floats. Unrecorded steps (``every=N``)
cost a Python counter. Per-parameter ``.norm().item()`` loops pay one device synchronisation per parameter.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.amp.grad_scaler import OptState

from numstab.errors import (
    InvalidArgumentError,
    ModelError,
    MonitorStateError,
    NumstabTypeError,
    check_int_at_least,
)
from numstab.monitor import distributed
from numstab.monitor.events import Event, TrendConfig, TrendDetector
from numstab.monitor.locate import Culprit, locate_nonfinite
from numstab.monitor.norms import exact_norms, fast_norms, needs_exact

__all__ = ["GradientMonitor", "StepStats", "MonitorStateError"]

logger = logging.getLogger(__name__)

GroupBy = Literal["module", "parameter"]
ROOT = "(root)"


@dataclass(frozen=True)
class StepStats:
    """Gradient health of one recorded step.

    Attributes:
        step: 0-based count of ``step()`` calls before this one (``0, every, 2*every, ...`` are recorded).
        global_norm: L2 norm of all gradients together (unscaled under a GradScaler); ``inf``/``nan`` if any
            gradient is non-finite.
        layer_norms: L2 norm per module that owns parameters (name -> float; ``"(root)"`` for parameters
            registered on the model itself), or per parameter with ``group_by="parameter"``. Parameters
            without a gradient this step are left out.
        nonfinite: whether any gradient holds inf or NaN.
        culprits: names of the parameters whose gradients are non-finite, in model order.
        skipped: whether the GradScaler skips this step (non-finite gradients under an enabled scaler).
        scale: the GradScaler's scale at this step, or None without one.
        events: trend events of this step (vanishing, exploding, non-finite fault).
        culprit_ranks: under DDP, for each culprit, the ranks whose *local* gradient was non-finite before
            the all-reduce (empty outside DDP).

    Examples:
        >>> StepStats(0, 1.0, {"fc": 1.0}, False, ()).to_dict()["layer_norms"]
        {'fc': 1.0}
    """

    step: int
    global_norm: float
    layer_norms: dict[str, float]
    nonfinite: bool
    culprits: tuple[str, ...]
    skipped: bool = False
    scale: float | None = None
    events: tuple[Event, ...] = ()
    culprit_ranks: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the step as JSON-ready plain data (non-finite floats stay ``inf``/``nan``)."""
        return {
            "step": self.step,
            "global_norm": self.global_norm,
            "layer_norms": dict(self.layer_norms),
            "nonfinite": self.nonfinite,
            "culprits": list(self.culprits),
            "skipped": self.skipped,
            "scale": self.scale,
            "events": [e.to_dict() for e in self.events],
            "culprit_ranks": {k: list(v) for k, v in self.culprit_ranks.items()},
        }


#: Norms above this (or below its inverse) are scaled before squaring: their squares would leave float64's
#: range (~1.3e154 and, for full precision, ~1e-154).
_SQUARE_SAFE = 1e150


class GradientMonitor:
    """Watch per-layer gradient norms during training: fused, exact at the extremes, AMP- and DDP-aware.

    Per recorded step: per-tensor norms :math:`\\|g_i\\|_2` in one fused pass, combined as

    .. math::

        \\|g_{\\text{layer}}\\| = \\Big(\\sum_{i \\in \\text{layer}} \\|g_i\\|^2\\Big)^{1/2},\\qquad
        \\|g\\| = \\Big(\\sum_i \\|g_i\\|^2\\Big)^{1/2},

    divided by the GradScaler's scale when the gradients are still scaled. Vanishing and exploding
    gradients are the failure modes of Glorot & Bengio (2010) and D2L 4.8; see
    :mod:`numstab.monitor.events` for the trend rules.

    Call ``step()`` after ``backward()`` and before ``optimizer.zero_grad()``; under AMP, before
    ``scaler.update()`` (before or after ``scaler.step``/``scaler.unscale_``: both are handled).

    Args:
        model: the module being trained (a ``DistributedDataParallel`` wrapper is fine).
        every: record one step in ``every`` (``step()`` returns None on the others).
        history: how many recorded steps ``monitor.history`` keeps (a ring buffer).
        writer: a ``torch.utils.tensorboard.SummaryWriter``: per-layer norms as scalars each recorded step.
        group_by: "module" (default) or "parameter" for ``layer_norms``.
        trends: thresholds of the trend events (:class:`TrendConfig`).
        histogram_every: with ``writer``, also write a gradient histogram per parameter every this many
            recorded steps (None: never; histograms copy every gradient to the host).

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        >>> with GradientMonitor(net) as monitor:
        ...     net(torch.ones(2, 4)).sum().backward()
        ...     stats = monitor.step()
        >>> sorted(stats.layer_norms), stats.nonfinite, len(monitor.history)
        (['0', '2'], False, 1)
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 1,
        history: int = 1000,
        writer: Any = None,
        group_by: GroupBy = "module",
        trends: TrendConfig | None = None,
        histogram_every: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise NumstabTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.every = check_int_at_least("every", every, 1)
        check_int_at_least("history", history, 1)
        if group_by not in ("module", "parameter"):
            raise InvalidArgumentError(f"group_by must be 'module' or 'parameter', got {group_by!r}")
        if histogram_every is not None:
            check_int_at_least("histogram_every", histogram_every, 1)
        self.model = model
        self.writer = writer
        self.histogram_every = histogram_every
        self.history: deque[StepStats] = deque(maxlen=history)
        self.events: deque[Event] = deque(maxlen=history)
        self._names, self._params = _trainable(model)
        groups, self._layers = _group_index(self._names, group_by)
        self._group_of = groups.tolist()
        self._members = [np.flatnonzero(groups == g).tolist() for g in range(len(self._layers))]
        self._detector = TrendDetector(trends or TrendConfig())
        self._rank, self._world = distributed.rank_and_world(model)
        self._local: list[torch.Tensor | None] = [None] * len(self._params)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._fresh = False
        self._calls = 0
        self._recorded = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether the monitor's hooks are on the model."""
        return bool(self._handles)

    def attach(self) -> GradientMonitor:
        """Add one post-accumulate-grad hook per trainable parameter; return ``self``.

        Raises:
            MonitorStateError: already attached.
        """
        if self.attached:
            raise MonitorStateError(
                "this GradientMonitor is already attached: call detach() first, or use one `with` block"
            )
        try:
            for index, param in enumerate(self._params):
                self._handles.append(param.register_post_accumulate_grad_hook(self._hook(index)))
        except BaseException:
            self.detach()
            raise
        self._fresh = False
        return self

    def detach(self) -> None:
        """Remove every hook the monitor added (safe to call twice)."""
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> GradientMonitor:
        return self.attach()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.detach()

    def _hook(self, index: int) -> Callable[[torch.Tensor], None]:
        def on_grad(param: torch.Tensor) -> None:
            self._fresh = True
            if self._world > 1 and self._calls % self.every == 0 and param.grad is not None:
                # this rank's own gradient, before DDP's reducer sees it: one pass, no sync; min and max
                # are finite exactly when every entry is (a norm could overflow on large finite entries)
                self._local[index] = torch.stack(torch.aminmax(param.grad.detach()))

        return on_grad

    # -- the step --------------------------------------------------------------------------------------

    def step(self, scaler: torch.amp.GradScaler | None = None) -> StepStats | None:
        """Record this step's gradient norms (one step in ``every``); return them, or None if not recorded.

        Args:
            scaler: the ``torch.amp.GradScaler`` when training with AMP: norms are reported unscaled, and a
                step with non-finite gradients is marked ``skipped`` (the scaler will skip it) rather than
                reported as a fault, unless it persists as the scale falls (``TrendConfig.amp_patience``).

        Raises:
            MonitorStateError: not attached, or no backward since the last ``step()``.
        """
        if not self.attached:
            raise MonitorStateError(
                "the monitor is not attached: use `with GradientMonitor(model) as monitor:` "
                "or monitor.attach()"
            )
        if not self._fresh:
            raise MonitorStateError(
                "step() called before any backward since the last step: call loss.backward() first, then "
                "monitor.step()"
            )
        self._fresh = False
        index, self._calls = self._calls, self._calls + 1
        if index % self.every:
            return None
        stats = self._record(index, scaler if scaler is not None and scaler.is_enabled() else None)
        self.history.append(stats)
        self.events.extend(stats.events)
        if self.writer is not None:
            self._write(stats)
        self._recorded += 1
        return stats

    def _record(self, index: int, scaler: torch.amp.GradScaler | None) -> StepStats:
        grads = [p.grad for p in self._params]
        present = None  # None: every parameter has a gradient (the common case)
        if any(g is None for g in grads):
            present = [i for i, g in enumerate(grads) if g is not None]
            grads = [grads[i] for i in present]
        norms, scale = self._read_norms(grads, scaler)  # the step's one device->host transfer
        if scale is not None and _still_scaled(scaler):
            norms = [v / scale for v in norms]
        names, layers, layer, total = self._combine(norms, present)
        # a non-finite norm makes the sum of squares non-finite: the per-tensor scan runs only then
        bad = [] if math.isfinite(total) else [i for i, v in enumerate(norms) if not math.isfinite(v)]
        culprits = tuple(names[i] for i in bad)
        skipped = bool(culprits) and scale is not None
        events = self._detector.observe(index, layers, layer)
        values = [norms[i] for i in bad]
        fault = self._detector.nonfinite(index, culprits, values, skipped=skipped, scale=scale)
        events += (fault,) if fault is not None else ()
        ranks = self._culprit_ranks(culprits) if culprits and self._world > 1 else {}
        layer_norms = dict(zip(layers, layer, strict=True))
        return StepStats(index, total, layer_norms, bool(culprits), culprits, skipped, scale, events, ranks)

    def _combine(
        self, norms: list[float], present: list[int] | None
    ) -> tuple[list[str], list[str], list[float], float]:
        """Per-layer and global norms: float64 sums of squares (the formula of ``norms.group_norms``).

        Plain Python floats over precomputed member lists: right after a backward pass the host caches are
        cold, and a few dozen float operations cost less than the numpy calls they would replace.
        Parameters without a gradient count as zero, and layers with none of them are left out.
        """
        # norms above ~1e154 or below ~1e-154 (float64 gradients) would overflow or flush their squares:
        # scale those steps by the largest finite norm (Blue 1978); every other step keeps the plain sum
        top = max((abs(v) for v in norms if math.isfinite(v)), default=0.0)
        unit = top if top > _SQUARE_SAFE or 0.0 < top < 1.0 / _SQUARE_SAFE else 1.0
        squares = [(v / unit) ** 2 for v in norms] if unit != 1.0 else [v * v for v in norms]
        if present is not None:
            full = [0.0] * len(self._params)
            for i, square in zip(present, squares, strict=True):
                full[i] = square
            squares = full
        layer = [unit * math.sqrt(sum([squares[i] for i in members])) for members in self._members]
        total = unit * math.sqrt(sum(squares))
        if present is None:
            return self._names, self._layers, layer, total
        kept = sorted({self._group_of[i] for i in present})
        names = [self._names[i] for i in present]
        return names, [self._layers[g] for g in kept], [layer[g] for g in kept], total

    def _read_norms(
        self, grads: Sequence[torch.Tensor], scaler: torch.amp.GradScaler | None
    ) -> tuple[list[float], float | None]:
        if not grads:
            raise MonitorStateError("no parameter has a gradient: call loss.backward() before monitor.step()")
        fast = fast_norms(grads)
        scale_t = getattr(scaler, "_scale", None) if scaler is not None else None
        packed = fast if scale_t is None else torch.cat([fast, scale_t.detach().reshape(1).to(fast)])
        host = packed.cpu().tolist()
        norms, scale = host[: len(grads)], (host[-1] if scale_t is not None else None)
        if fast.dtype != torch.float64:  # float32 accumulation: recheck the extremes
            redo = needs_exact(norms)
            if redo:  # zero, tiny or overflowed: recompute those few in float64 (rare, one more sync)
                exact = exact_norms([grads[i] for i in redo]).cpu().tolist()
                for i, value in zip(redo, exact, strict=True):
                    norms[i] = value
        return norms, scale

    def _culprit_ranks(self, culprits: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
        local = [
            self._names[i]
            for i, value in enumerate(self._local)
            if value is not None and not bool(torch.isfinite(value).all())
        ]
        every_rank = distributed.all_gather_objects(self.model, local)
        return {name: tuple(r for r, bad in enumerate(every_rank) if name in bad) for name in culprits}

    def _write(self, stats: StepStats) -> None:
        for name, value in stats.layer_norms.items():
            self.writer.add_scalar(f"grad_norm/{name}", value, stats.step)
        self.writer.add_scalar("grad_norm/global", stats.global_norm, stats.step)
        if self.histogram_every is not None and self._recorded % self.histogram_every == 0:
            bad = set(stats.culprits)
            for name, param in zip(self._names, self._params, strict=True):
                if param.grad is not None and name not in bad:  # histograms of inf/NaN are rejected
                    self.writer.add_histogram(f"grad/{name}", param.grad.detach().cpu(), stats.step)

    # -- localisation ----------------------------------------------------------------------------------

    def locate_nonfinite(
        self,
        inputs: Any,
        loss_fn: Callable[..., torch.Tensor],
        target: Any = None,
        *,
        scaler: torch.amp.GradScaler | None = None,
    ) -> Culprit | None:
        """Replay ``inputs`` once and name the module that produced the first inf/NaN (see
        :func:`numstab.monitor.locate_nonfinite`); attached or not, nothing the user owns changes.

        Under DDP every rank must call it (a collective) with its own batch; every rank gets the same
        answer, attributed to the lowest rank that saw a non-finite value (``Culprit.rank``).

        Returns:
            The :class:`Culprit`, or None when the batch is finite everywhere (forward, loss, gradients).
        """
        found = locate_nonfinite(distributed.unwrap(self.model), inputs, loss_fn, target, scaler=scaler)
        if found is None:
            logger.info("locate_nonfinite: forward, loss and gradients are all finite on this batch")
        every_rank = distributed.all_gather_objects(self.model, found)
        for rank, culprit in enumerate(every_rank):
            if culprit is not None:
                return culprit.with_rank(rank)
        return None


def _trainable(model: nn.Module) -> tuple[list[str], list[nn.Parameter]]:
    named = [(n, p) for n, p in distributed.unwrap(model).named_parameters() if p.requires_grad]
    if not named:
        raise ModelError(
            f"{type(model).__name__} has no trainable parameters (none with requires_grad=True): nothing to "
            "monitor; unfreeze some parameters or monitor a different module"
        )
    return [n for n, _ in named], [p for _, p in named]


def _group_index(names: list[str], group_by: GroupBy) -> tuple[np.ndarray, list[str]]:
    keys = names if group_by == "parameter" else [n.rpartition(".")[0] or ROOT for n in names]
    layers = list(dict.fromkeys(keys))
    position = {layer: i for i, layer in enumerate(layers)}
    return np.array([position[k] for k in keys], dtype=np.int64), layers


def _still_scaled(scaler: torch.amp.GradScaler | None) -> bool:
    """Whether the gradients still carry the scale: not once ``unscale_`` or ``step`` has run this step."""
    states = getattr(scaler, "_per_optimizer_states", {})
    return not any(s.get("stage") in (OptState.UNSCALED, OptState.STEPPED) for s in states.values())
