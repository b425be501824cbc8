"""Find the module that produced the first non-finite value of a batch, forward or backward.

:func:`locate_nonfinite` replays one batch and names the culprit with
:func:`numstab.instrument.origin.find_origin`, the rule :func:`numstab.diagnose` uses too (so both name the
same module and phase for the same fault): forward, the first module in completion order whose inputs are
finite and whose output is not; backward (only if the forward and the loss are finite), the module whose
output gradient is finite but whose input gradient or own parameter gradient is not: the producer, not the
modules that passed the bad value on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from numstab.errors import NumstabTypeError, UnknownNameError
from numstab.instrument import Culprit, find_origin, preserved, unwrap_compiled
from numstab.instrument.inputs import as_call, check_inputs, check_loss
from numstab.instrument.origin import HUGE_WEIGHT, LOSS
from numstab.monitor import distributed, ops

__all__ = ["Culprit", "locate_nonfinite", "HUGE_WEIGHT", "LOSS", "NOT_REPRODUCED", "Level", "LEVELS"]

logger = logging.getLogger(__name__)

Level = Literal["module", "op"]
LEVELS = ("module", "op")
#: ``Culprit.module`` when neither op-level replay found a non-finite value (``reproduced`` is False).
NOT_REPRODUCED = "(not reproduced)"


def locate_nonfinite(
    model: nn.Module,
    inputs: Any,
    loss_fn: Callable[..., torch.Tensor],
    target: Any = None,
    *,
    scaler: torch.amp.GradScaler | None = None,
    forward: Callable[[Any], Any] | None = None,
    level: Level = "module",
) -> Culprit | None:
    """Replay one batch with hooks and name the module (or aten op) that produced its first non-finite value.

    The forward pass is searched first, in execution order; if the output and the loss are finite, the
    backward pass, in backward order (gradients by ``torch.autograd.grad``, so ``.grad`` is untouched).
    Parameters, ``.grad``, buffers (BatchNorm running statistics) and the RNG state (dropout) are as
    before the call; the model's train/eval mode is not changed, so the replay sees what training saw. Call
    it inside the same ``torch.autocast`` context as the training step to replay mixed precision; pass the
    ``GradScaler`` to replay the scaled backward (fp16 overflow happens only there).

    Reference: the idea of ``torch.autograd.detect_anomaly`` (Paszke et al., 2019, "PyTorch"), extended to
    the forward pass and to inf, and attributed to modules rather than autograd nodes.

    Args:
        model: the module (unwrap DDP first, or use :meth:`GradientMonitor.locate_nonfinite`).
        inputs: the batch: a tensor, a tuple/list of positional arguments, or a dict of keyword arguments.
        loss_fn: called as ``loss_fn(output)``, or ``loss_fn(output, target)`` when ``target`` is given.
        target: optional second argument of ``loss_fn``.
        scaler: the ``torch.amp.GradScaler`` of the training loop, to scale the loss as training does.
        forward: called as ``forward(inputs)`` instead of ``model(inputs)`` (a Lightning ``training_step``,
            say); it must run ``model``'s modules, whose hooks do the search.
        level: "module" (the module), or "op": replay twice under :class:`numstab.monitor.ops.OpTracer`
            and name the aten op at the root of the non-finite loss or gradient, with its module, phase,
            source line and input ranges (``torch.compile`` wrappers are replayed eagerly).

    Returns:
        The :class:`Culprit`, or None when the forward, the loss and every gradient are finite. With
        ``level="op"`` never None: a batch on which neither replay finds a fault gives a culprit with
        ``reproduced=False`` and ``module == NOT_REPRODUCED``.

    Raises:
        BadInputError: ``inputs`` already contain inf or NaN (not the model's doing), or an empty batch.
        InvalidArgumentError: ``inputs`` do not fit ``model.forward``; the loss is not a scalar float tensor.
        NumstabTypeError: ``model`` is not a module, ``loss_fn`` is not callable.
        UnknownNameError: ``level`` is neither "module" nor "op".

    Examples:
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
        >>> _ = net[1].register_forward_hook(lambda m, a, out: out * float("inf"))
        >>> c = locate_nonfinite(net, torch.ones(3, 2), lambda out: out.sum())
        >>> c.module, c.phase
        ('1', 'forward')
    """
    if not isinstance(model, nn.Module):
        raise NumstabTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if level not in LEVELS:
        raise UnknownNameError("level", level, LEVELS, "'op' also names the aten op and the source line")
    model, compiled = unwrap_compiled(model)
    if compiled:
        logger.info("locate_nonfinite: the model is torch.compile'd; replaying its original module eagerly")
    args, kwargs = as_call(inputs)
    check_inputs(model if forward is None else None, args, kwargs)
    if not callable(loss_fn):
        given = " (target= was given: loss_fn(output, target) is called)" if target is not None else ""
        raise NumstabTypeError(
            f"loss_fn must be callable, got {type(loss_fn).__name__}{given}: pass the training loss, e.g. "
            "torch.nn.functional.cross_entropy"
        )

    def run() -> Any:
        return model(*args, **kwargs) if forward is None else forward(inputs)

    def loss(output: Any) -> torch.Tensor:
        return check_loss(loss_fn(output) if target is None else loss_fn(output, target))

    scale = scaler.scale if scaler is not None and scaler.is_enabled() else None
    if level == "op":
        return _locate_op(model, run, loss, scale)
    with preserved(model):
        return find_origin(model, run, loss, scale=scale)


def _locate_op(
    model: nn.Module,
    run: Callable[[], Any],
    loss_fn: Callable[[Any], torch.Tensor],
    scale: Callable[[torch.Tensor], torch.Tensor] | None,
) -> Culprit:
    """Replay twice at op level (:func:`numstab.monitor.ops.replay`); the culprit says if both agree."""
    with distributed.replay_context(model) as inner:

        def step() -> torch.Tensor:
            loss = loss_fn(run())
            return scale(loss) if scale is not None and loss.requires_grad else loss

        params = list(inner.parameters())
        found = []
        for _ in range(2):
            with preserved(inner):
                found.append(ops.replay(inner, step, params))
    first, second = found
    fault = first or second
    if fault is None:
        return Culprit(NOT_REPRODUCED, "forward", torch.float32, math.nan, reproduced=False)
    return Culprit(
        distributed.clean_name(fault.module), fault.phase, fault.dtype,
        max(fault.inputs_max_abs, default=math.nan), value=fault.value, op=fault.op, source=fault.source,
        reproduced=first is not None and second is not None and first.key == second.key,
        inputs_max_abs=fault.inputs_max_abs, via=fault.via,
    )  # fmt: skip
