"""GradientMonitor: per-layer gradient norms during training, one device-to-host transfer per step.

Cost model (why it is cheap): per recorded step the monitor runs one fused ``torch._foreach_norm`` over all
gradients (one read of every gradient, see :mod:`numstab.monitor.norms`), stacks the per-tensor norms and
the GradScaler's scale into one small vector and copies it to the host once. Everything else (per-layer
sums, trend events, history) is arithmetic on a few hundred host floats. Unrecorded steps (``every=N``)
cost a Python counter. Per-parameter ``.norm().item()`` loops pay one device synchronisation per parameter.
With ``non_blocking=True`` even the one copy does not wait: it lands in pinned host memory and is read at
the next ``step()`` call, so the statistics of step k are available by step k+1 (or at ``flush()``).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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
from numstab.monitor.events import Event, RateLimiter, TrendConfig, TrendDetector
from numstab.monitor.locate import NOT_REPRODUCED, Culprit, Level, locate_nonfinite
from numstab.monitor.norms import exact_norms, fast_norms, needs_exact

__all__ = ["GradientMonitor", "StepStats", "MonitorStateError"]

logger = logging.getLogger(__name__)

GroupBy = Literal["module", "parameter"]
ROOT = "(root)"


@dataclass(frozen=True)
class StepStats:
    """Gradient health of one recorded step.

    Attributes:
        step: count of ``step()`` calls before this one, from ``first_step`` (0 by default; the multiples of
            ``every`` are recorded).
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
        culprit_ranks: under DDP or FSDP2, for each culprit, the ranks whose *local* gradient was non-finite
            before the all-reduce or reduce-scatter (empty in a single process).

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


@dataclass
class _Packet:
    """One recorded step's measurement on its way to the host.

    ``values`` holds the per-tensor norms (then the GradScaler's scale, if any): host floats, or a pinned host
    tensor that a non-blocking copy is still filling until ``event`` completes.
    """

    index: int
    values: torch.Tensor | list[float]
    event: Any
    count: int
    present: list[int] | None
    has_scale: bool
    still_scaled: bool
    local: list[torch.Tensor | None] | None

    def read(self) -> list[float]:
        if self.event is not None:
            self.event.synchronize()  # issued a step ago: done by now unless the host runs far ahead
        return self.values if isinstance(self.values, list) else self.values.tolist()


class GradientMonitor:
    """Watch per-layer gradient norms in training: fused, exact at the extremes, AMP-, DDP- and FSDP2-aware.

    Per recorded step: per-tensor norms :math:`\\|g_i\\|_2` in one fused pass, combined as

    .. math::

        \\|g_{\\text{layer}}\\| = \\Big(\\sum_{i \\in \\text{layer}} \\|g_i\\|^2\\Big)^{1/2},\\qquad
        \\|g\\| = \\Big(\\sum_i \\|g_i\\|^2\\Big)^{1/2},

    divided by the GradScaler's scale when the gradients are still scaled. Under FSDP2 each
    :math:`\\|g_i\\|^2` is the sum of the shards' squares over the ranks (one all-reduce per recorded step,
    see :mod:`numstab.monitor.distributed`), so the norms are those of the full gradients. Vanishing and
    exploding gradients are the failure modes of Glorot & Bengio (2010) and D2L 4.8; see
    :mod:`numstab.monitor.events` for the trend rules.

    Call ``step()`` after ``backward()`` and before ``optimizer.zero_grad()``; under AMP, before
    ``scaler.update()`` (before or after ``scaler.step``/``scaler.unscale_``: both are handled).

    Args:
        model: the module being trained (``DistributedDataParallel``, ``fully_shard`` and ``torch.compile``
            wrappers are fine; names are those of the module inside).
        every: record one step in ``every`` (``step()`` returns None on the others).
        history: how many recorded steps ``monitor.history`` keeps (a ring buffer).
        writer: a ``torch.utils.tensorboard.SummaryWriter``: per-layer norms as scalars each recorded step.
        group_by: "module" (default) or "parameter" for ``layer_norms``.
        trends: thresholds of the trend events (:class:`TrendConfig`).
        histogram_every: with ``writer``, also write a gradient histogram per parameter every this many
            recorded steps (None: never; histograms copy every gradient to the host).
        non_blocking: never make the training loop wait for the device: the norms of a recorded step are
            copied to pinned host memory without a synchronisation and read at the **next** ``step()`` call
            (or at ``flush()`` / ``detach()``), which returns them. The values are the same as without it;
            only their delivery is one call later. For GPUs; on the CPU nothing waits anyway.
        first_step: the step number of the first ``step()`` call (a framework's global step, or the step a
            resumed run starts from); recorded steps are the multiples of ``every``.

    Note:
        Cost: one fused ``torch._foreach_norm`` over all gradients, the per-tensor norms and the scale packed
        into one small vector, one device-to-host copy per recorded step (blocking unless ``non_blocking``).
        On the CPU the fused pass accumulates in float32 and the rare norms that come out zero, under 1e-10 or
        inf are recomputed in float64 right away (while the gradients are still this step's); elsewhere the
        pass accumulates in float64 (see :mod:`numstab.monitor.norms`).

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
        non_blocking: bool = False,
        first_step: int = 0,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise NumstabTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.every = check_int_at_least("every", every, 1)
        check_int_at_least("history", history, 1)
        check_int_at_least("first_step", first_step, 0)
        if group_by not in ("module", "parameter"):
            raise InvalidArgumentError(f"group_by must be 'module' or 'parameter', got {group_by!r}")
        if histogram_every is not None:
            check_int_at_least("histogram_every", histogram_every, 1)
        self.model = model
        self.writer = writer
        self.histogram_every = histogram_every
        self.non_blocking = bool(non_blocking)
        self.history: deque[StepStats] = deque(maxlen=history)
        self.events: deque[Event] = deque(maxlen=history)
        self._raw, self._params = _trainable(model)
        self._names = [distributed.clean_name(n) for n in self._raw]
        groups, self._layers = _group_index(self._names, group_by)
        self._group_of = groups.tolist()
        self._members = [np.flatnonzero(groups == g).tolist() for g in range(len(self._layers))]
        config = trends or TrendConfig()
        self._detector = TrendDetector(config)
        self._limit = RateLimiter(config.repeat_after)
        self._rank, self._world = distributed.rank_and_world(model)
        self._sharded = distributed.is_sharded(model)
        self._plans: dict[tuple[int, ...] | None, distributed.Plan] = {}
        self._local: list[torch.Tensor | None] = [None] * len(self._params)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._pending: _Packet | None = None
        self._fresh = False
        self._calls = first_step
        self._launched = 0

    # -- lifecycle -------------------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        """Whether the monitor's hooks are on the model."""
        return bool(self._handles)

    @property
    def parameter_names(self) -> list[str]:
        """Names of the watched parameters, in model order (as the original module names them)."""
        return list(self._names)

    @property
    def layer_names(self) -> list[str]:
        """The keys ``layer_norms`` can have (layers, or parameters by ``group_by``), in model order."""
        return list(self._layers)

    @property
    def next_step(self) -> int:
        """The step number the next ``step()`` call will carry (``first_step`` plus the calls so far)."""
        return self._calls

    @property
    def parameters(self) -> list[nn.Parameter]:
        """The watched (trainable) parameters, in the order of :attr:`parameter_names`."""
        return list(self._params)

    def attach(self) -> GradientMonitor:
        """Add one post-accumulate-grad hook per trainable parameter; return ``self``.

        Under FSDP2 with several ranks, also one per unsharded parameter (registered at the first forward),
        to see each rank's own gradient before the reduce-scatter.

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
            if self._sharded and self._world > 1:
                inner = distributed.unwrap(self.model)
                self._handles.append(_Handles(distributed.hook_unsharded(inner, self._raw, self._local_hook)))
        except BaseException:
            self._remove_hooks()
            raise
        self._fresh = False
        return self

    def detach(self) -> None:
        """Remove every hook the monitor added, then read a pending step (safe to call twice)."""
        self._remove_hooks()
        self.flush()

    def flush(self) -> StepStats | None:
        """Read the recorded step still on its way to the host (``non_blocking=True``); return its stats.

        Waits for that step's copy. Returns None when nothing is pending (always, without ``non_blocking``).
        """
        packet, self._pending = self._pending, None
        return self._finish(packet) if packet is not None else None

    def _remove_hooks(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> GradientMonitor:
        return self.attach()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.detach()
        else:  # leave the pending step for flush(): reading it now could raise over the real error
            self._remove_hooks()

    def _hook(self, index: int) -> Callable[[torch.Tensor], None]:
        ddp = self._world > 1 and not self._sharded

        def on_grad(param: torch.Tensor) -> None:
            self._fresh = True
            if ddp:
                self._keep_local(index, param)

        return on_grad

    def _local_hook(self, index: int) -> Callable[[torch.Tensor], None]:
        return lambda param: self._keep_local(index, param)

    def _keep_local(self, index: int, param: torch.Tensor) -> None:
        # this rank's own gradient, before DDP's all-reduce or FSDP2's reduce-scatter: one pass, no sync; min
        # and max are finite exactly when every entry is (a norm could overflow on large finite entries)
        grad = param.grad
        if self._calls % self.every == 0 and grad is not None and grad.numel():
            self._local[index] = torch.stack(torch.aminmax(grad.detach()))

    # -- the step --------------------------------------------------------------------------------------

    def step(self, scaler: torch.amp.GradScaler | None = None) -> StepStats | None:
        """Record this step's gradient norms (one step in ``every``); return them, or None if not recorded.

        With ``non_blocking=True`` the stats returned are those of the previous recorded step (read now,
        without waiting), or None; ``flush()`` reads the last one.

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
        ready = self.flush()
        if index % self.every:
            return ready
        packet = self._launch(index, scaler if scaler is not None and scaler.is_enabled() else None)
        if self.non_blocking:
            self._pending = packet
            return ready
        return self._finish(packet)

    def _launch(self, index: int, scaler: torch.amp.GradScaler | None) -> _Packet:
        """Start measuring step ``index``: the device work and the copy to the host, no wait."""
        grads = [p.grad for p in self._params]
        present = None  # None: every parameter has a gradient (the common case)
        if any(g is None for g in grads):
            present = [i for i, g in enumerate(grads) if g is not None]
            grads = [grads[i] for i in present]
        if not grads:
            raise MonitorStateError("no parameter has a gradient: call loss.backward() before monitor.step()")
        scale_t = getattr(scaler, "_scale", None) if scaler is not None else None
        values, event = self._measure(grads, present, scale_t)
        if self.writer is not None and self.histogram_every is not None:
            if self._launched % self.histogram_every == 0:  # now, while the gradients are this step's
                self._write_histograms(index, present)
        self._launched += 1
        local = list(self._local) if self._world > 1 else None
        still = scale_t is not None and _still_scaled(scaler)
        return _Packet(index, values, event, len(grads), present, scale_t is not None, still, local)

    def _measure(
        self, grads: list[torch.Tensor], present: list[int] | None, scale_t: torch.Tensor | None
    ) -> tuple[torch.Tensor | list[float], Any]:
        """Per-tensor norms of the full gradients (then the scale): on their way to the host."""
        local = distributed.local_tensors(grads) if self._sharded else grads
        fast = fast_norms(local)
        extra = [] if scale_t is None else [scale_t.detach().reshape(1).to(fast)]
        if fast.dtype == torch.float64:  # exact in the fused pass (CUDA)
            if self._sharded:
                fast = distributed.full_norms(fast, self._plan(grads, present))
            return _to_host(torch.cat([fast, *extra]) if extra else fast, self.non_blocking)
        # float32 accumulation (CPU): the extremes are rechecked now, while these are the gradients; reading
        # the values on the host costs no wait there
        host = (torch.cat([fast, *extra]) if extra else fast).cpu().tolist()
        norms = host[: len(grads)] if extra else host
        redo = needs_exact(norms)
        if redo:  # zero, tiny or overflowed: recompute those few in float64 (rare, one more pass)
            exact = exact_norms([local[i] for i in redo]).cpu().tolist()
            for i, value in zip(redo, exact, strict=True):
                norms[i] = value
        if self._sharded:
            shards = torch.tensor(norms, dtype=torch.float64, device=fast.device)
            norms = distributed.full_norms(shards, self._plan(grads, present)).tolist()
        return (norms + host[len(grads) :] if extra else norms), None

    def _plan(self, grads: list[torch.Tensor], present: list[int] | None) -> distributed.Plan:
        key = None if present is None else tuple(present)
        if key not in self._plans:
            self._plans[key] = distributed.shard_plan(grads)
        return self._plans[key]

    def _finish(self, packet: _Packet) -> StepStats:
        """Read a packet on the host and turn it into the step's stats, events and history."""
        host = packet.read()
        norms, scale = (host[: packet.count], host[packet.count]) if packet.has_scale else (host, None)
        if scale is not None and packet.still_scaled:
            norms = [v / scale for v in norms]
        names, layers, layer, total = self._combine(norms, packet.present)
        # a non-finite norm makes the sum of squares non-finite: the per-tensor scan runs only then
        bad = [] if math.isfinite(total) else [i for i, v in enumerate(norms) if not math.isfinite(v)]
        culprits = tuple(names[i] for i in bad)
        skipped = bool(culprits) and scale is not None
        events = self._detector.observe(packet.index, layers, layer)
        values = [norms[i] for i in bad]
        fault = self._detector.nonfinite(packet.index, culprits, values, skipped=skipped, scale=scale)
        events = self._limit(events + ((fault,) if fault is not None else ()))
        ranks = self._culprit_ranks(culprits, packet.local) if culprits and self._world > 1 else {}
        layer_norms = dict(zip(layers, layer, strict=True))
        stats = StepStats(
            packet.index, total, layer_norms, bool(culprits), culprits, skipped, scale, events, ranks
        )
        self.history.append(stats)
        self.events.extend(stats.events)
        if self.writer is not None:
            self._write_scalars(stats)
        return stats

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

    def _culprit_ranks(
        self, culprits: tuple[str, ...], local: list[torch.Tensor | None] | None
    ) -> dict[str, tuple[int, ...]]:
        mine = [
            self._names[i]
            for i, value in enumerate(local or [])
            if value is not None and not bool(torch.isfinite(value).all())
        ]
        every_rank = distributed.all_gather_objects(self.model, mine)
        return {name: tuple(r for r, bad in enumerate(every_rank) if name in bad) for name in culprits}

    def _write_scalars(self, stats: StepStats) -> None:
        for name, value in stats.layer_norms.items():
            self.writer.add_scalar(f"grad_norm/{name}", value, stats.step)
        self.writer.add_scalar("grad_norm/global", stats.global_norm, stats.step)

    def _write_histograms(self, index: int, present: list[int] | None) -> None:
        """One histogram per gradient (its local shard under FSDP2); inf/NaN ones are left out (rejected)."""
        for i in range(len(self._params)) if present is None else present:
            grad = distributed.local_tensors([self._params[i].grad])[0].detach().cpu()
            if bool(torch.isfinite(grad).all()):
                self.writer.add_histogram(f"grad/{self._names[i]}", grad, index)

    # -- localisation ----------------------------------------------------------------------------------

    def locate_nonfinite(
        self,
        inputs: Any,
        loss_fn: Callable[..., torch.Tensor],
        target: Any = None,
        *,
        scaler: torch.amp.GradScaler | None = None,
        forward: Callable[[Any], Any] | None = None,
        level: Level = "module",
    ) -> Culprit | None:
        """Replay ``inputs`` and name the module (or op) that produced the first inf/NaN (see
        :func:`numstab.monitor.locate_nonfinite`); attached or not, nothing the user owns changes.

        The replay runs the module inside the wrappers (DDP, FSDP2, ``torch.compile``) eagerly. Under DDP or
        FSDP2 every rank must call it (a collective) with its own batch; every rank gets the same answer,
        attributed to the lowest rank that saw a non-finite value (``Culprit.rank``). The culprit also says
        whether the named module's weights were already huge or non-finite (``Culprit.weights``): then the
        fault happened at an earlier step and this batch only reveals it.

        Args:
            forward: how to run the model on ``inputs`` when not ``model(inputs)`` (a Lightning
                ``training_step``, say); it must call the module whose name the monitor reports.
            level: "module", or "op" for the aten op, its source line and input ranges, and whether the
                fault reproduces (``Culprit.op``, ``source``, ``reproduced``).

        Returns:
            The :class:`Culprit`, or None when the batch is finite everywhere (forward, loss, gradients);
            with ``level="op"``, a culprit with ``reproduced=False`` instead of None.
        """
        with distributed.replay_context(self.model) as module:  # FSDP2: full weights, no collective inside
            found = locate_nonfinite(
                module, inputs, loss_fn, target, scaler=scaler, forward=forward, level=level
            )
            if found is not None:
                found = found.with_weights(module)
                found = replace(found, module=distributed.clean_name(found.module))
        if found is None:
            logger.info("locate_nonfinite: forward, loss and gradients are all finite on this batch")
        every_rank = distributed.all_gather_objects(self.model, found)
        for rank, culprit in enumerate(every_rank):
            if culprit is not None and culprit.module != NOT_REPRODUCED:
                return culprit.with_rank(rank)
        return every_rank[0]


class _Handles:
    """Remove a list of handles that grows after registration (FSDP2's lazily found parameters)."""

    def __init__(self, handles: list[torch.utils.hooks.RemovableHandle]) -> None:
        self.handles = handles

    def remove(self) -> None:
        while self.handles:
            self.handles.pop().remove()


def _to_host(packed: torch.Tensor, non_blocking: bool) -> tuple[torch.Tensor | list[float], Any]:
    """Copy to the host: blocking (host floats), or into pinned memory with an event to wait on later."""
    if not (non_blocking and packed.device.type == "cuda"):
        return packed.cpu().tolist(), None
    host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
    host.copy_(packed, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    return host, event


def _trainable(model: nn.Module) -> tuple[list[str], list[nn.Parameter]]:
    """Raw names (as the module inside the wrappers gives them) and trainable parameters, in model order."""
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
