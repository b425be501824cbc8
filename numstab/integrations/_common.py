"""What the framework callbacks share: their keyword arguments, the checks at train start, what they log.

Framework-free: the callbacks in :mod:`numstab.integrations.huggingface` and
:mod:`numstab.integrations.lightning` translate between these and their framework.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from typing import Any, get_args

import torch

from numstab.errors import InvalidArgumentError, ModelError
from numstab.monitor import Culprit, GradientMonitor, StepStats
from numstab.monitor.events import EventKind

__all__ = ["monitor_kwargs", "check_every", "check_optimizer", "metrics", "is_fault", "announce"]

logger = logging.getLogger("numstab.integrations")

PREFIX = "numstab"
#: set by the callback from the framework: the model it trains, and its step count
_OWNED = ("model", "first_step")


def monitor_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check the keyword arguments a callback passes on to :class:`GradientMonitor`; return them.

    Raises:
        InvalidArgumentError: a name GradientMonitor does not take, or one the callback sets itself.

    Examples:
        >>> monitor_kwargs({"every": 5})
        {'every': 5}
    """
    valid = [n for n in inspect.signature(GradientMonitor).parameters if n not in _OWNED]
    for name in kwargs:
        if name in _OWNED:
            raise InvalidArgumentError(
                f"NumstabCallback sets {name}= itself (from the trainer's model and step): leave it out"
            )
        if name not in valid:
            raise InvalidArgumentError(
                f"NumstabCallback got an unknown keyword {name!r}: it takes GradientMonitor's, "
                f"one of {', '.join(valid)}"
            )
    return dict(kwargs)


def check_every(every: int, interval: int, what: str) -> None:
    """Require the monitor's ``every`` to divide the framework's logging interval.

    Otherwise the logged steps would not be recorded ones: the log would show no norm, or an older step's.

    Raises:
        InvalidArgumentError: ``interval % every != 0``.

    Examples:
        >>> check_every(5, 10, "logging_steps")
    """
    if interval % every:
        raise InvalidArgumentError(
            f"every={every} does not divide {what}={interval}: the steps the trainer logs would not be the "
            f"steps the monitor records; use every=1 or a divisor of {interval}"
        )


def check_optimizer(monitor: GradientMonitor, optimizers: list[Any], framework: str) -> None:
    """Require an optimizer that updates some of the monitored parameters.

    Raises:
        ModelError: no optimizer, or none that updates any of the parameters the monitor watches (it would
            report a model that is not the one trained).
    """
    if not optimizers:
        raise ModelError(
            f"NumstabCallback found no optimizer in the {framework} trainer: it watches the gradients an "
            "optimizer step consumes; give the trainer an optimizer (or use GradientMonitor in your own loop)"
        )
    stepped = {id(p) for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]}
    if not any(id(p) in stepped for p in monitor.parameters):
        raise ModelError(
            f"the {framework} trainer's optimizer updates none of the parameters of the model the callback "
            "watches: the monitor would report a model that is not the one trained; build the optimizer from "
            "the trainer's model's parameters"
        )


def metrics(stats: StepStats, layers: list[str]) -> dict[str, float]:
    """Return a recorded step as flat scalar metrics under ``numstab/`` (what the loggers receive).

    Every key is present at every step: a logger that repeats a key's last value when it is missing
    (Lightning) must not show an older step's norm. A layer without a gradient this step logs 0 (no update
    reaches it); an event kind that did not occur logs 0.

    Examples:
        >>> s = StepStats(3, 5.0, {"fc": 3.0, "out": 4.0}, False, ())
        >>> m = metrics(s, ["fc", "out", "frozen"])
        >>> m["numstab/grad_norm/out"], m["numstab/grad_norm/frozen"], m["numstab/events/nonfinite"]
        (4.0, 0.0, 0.0)
    """
    out = {f"{PREFIX}/grad_norm": stats.global_norm}
    out.update({f"{PREFIX}/grad_norm/{name}": stats.layer_norms.get(name, 0.0) for name in layers})
    out[f"{PREFIX}/nonfinite"] = float(stats.nonfinite)
    kinds = Counter(e.kind for e in stats.events)
    out.update({f"{PREFIX}/events/{kind}": float(kinds[kind]) for kind in get_args(EventKind)})
    return out


def is_fault(stats: StepStats) -> bool:
    """Whether a step reports a non-finite fault worth a replay (reported: not a GradScaler overflow it
    handles, not a repeat held back by the rate limit)."""
    return any(e.kind == "nonfinite" for e in stats.events)


def announce(stats: StepStats, culprit: Culprit | None, why: str = "") -> None:
    """Log the step's events, and the replay's answer, on the ``numstab.integrations`` logger."""
    for event in stats.events:
        logger.warning("step %d: %s", stats.step, event.message)
    if culprit is not None:
        earlier = culprit.weights in ("nonfinite", "huge")
        note = f"; its weights are already {culprit.weights}: the fault happened at an earlier step"
        logger.warning(
            "step %d: the first %s was produced by %s in the %s pass (rank %d)%s",
            stats.step, culprit.value, culprit.module, culprit.phase, culprit.rank, note if earlier else "",
        )
    elif why:
        logger.warning("step %d: %s", stats.step, why)


def loss_of(output: Any) -> torch.Tensor:
    """The loss in a training step's output: the tensor itself, or the ``"loss"`` entry (HF, Lightning).

    Raises:
        ModelError: no loss in the output.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict) and output.get("loss") is not None:
        return output["loss"]
    raise ModelError(
        f"the replayed step returned {type(output).__name__} without a 'loss': the batch cannot be replayed "
        "(the model computes its loss only when the batch has labels)"
    )
