"""Find the module that produced the first non-finite value of a batch, forward or backward.

Replays one batch with hooks on every module (:func:`locate_nonfinite`). Forward: the first module, in
completion order, whose inputs are finite and whose output is not. Backward (only if the forward and the
loss are finite): the first module, in backward order, whose output gradient is finite but whose input
gradient or own parameter gradient is not: the producer, not the modules that passed the bad value on.
When a container and one of its children both qualify, the innermost one is named.

``torch.autograd.detect_anomaly`` answers a narrower question (the autograd node whose backward returned
NaN, not inf, and not in forward) at 2-3x the cost of every step; this runs once, on the failing batch.
Each module sees its inputs through an alias (``view_as``), so a gradient is attributed to the consumer that
produced it even when several modules read the same tensor, and tensor hooks are registered before any
in-place change, so they see the gradient of the value the module actually used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from numstab.errors import BadInputError, NumstabTypeError, UnknownNameError
from numstab.monitor import distributed, ops

__all__ = ["Culprit", "locate_nonfinite"]

Phase = Literal["forward", "backward"]
Level = Literal["module", "op"]
LEVELS = ("module", "op")
#: ``Culprit.module`` when neither op-level replay found a non-finite value (``reproduced`` is False).
NOT_REPRODUCED = "(not reproduced)"
WeightState = Literal["finite", "huge", "nonfinite", "none", "unknown"]
LOSS = "loss_fn"
#: A weight this large means an earlier step already went wrong: standard inits give |w| of order 1 or less
#: (Kaiming/Xavier: std sqrt(2/fan_in), under 0.5 for fan_in >= 8), so 1e4 is four orders of magnitude
#: beyond them; a matmul of fan-in 1000 with O(1) inputs then reaches 1e7, past float16's 65504 at once.
HUGE_WEIGHT = 1e4


@dataclass(frozen=True)
class Culprit:
    """The module that produced the first non-finite value.

    Attributes:
        module: qualified module name (``"3"``, ``"encoder.layers.1.linear2"``; ``"name#2"`` for a second call
            of the same module; ``"(root)"`` for the model's own code; ``"loss_fn"`` for the loss).
        phase: "forward" (its output) or "backward" (the gradient it passed back or its parameters' gradient).
        dtype: dtype of the non-finite tensor (``torch.bfloat16`` under CPU autocast, say).
        max_abs_before: largest |value| the module received just before: its inputs (forward) or its output
            gradient (backward, in the scaler's units when a GradScaler is given).
        rank: the distributed rank where it happened (0 outside DDP and FSDP2).
        value: "nan" or "inf": what the first non-finite element was.
        weights: the state of the named module's own parameters (its children's included): "nonfinite" or
            "huge" (some ``|w| >= HUGE_WEIGHT``) mean the fault happened at an earlier step (an update already
            broke the weights) and this batch only reveals it; "finite"; "none" (no parameters, or the loss);
            "unknown" (not measured: see :meth:`with_weights`).
        max_abs_weight: the largest finite ``|w|`` over those parameters (NaN when not measured or none).
        op: with ``level="op"``, the aten op that produced the value (``"aten.log.default"``); None otherwise.
        source: with ``level="op"``, ``"file.py:LINE"`` of the user's code that called the op (for a backward
            op, the forward call that created its autograd node); None otherwise.
        reproduced: with ``level="op"``, whether both replays found this same op (False: the fault is
            intermittent, or, with ``module == NOT_REPRODUCED``, neither replay found one).
        inputs_max_abs: with ``level="op"``, the largest finite ``|x|`` of each input of the op.
        via: with ``level="op"``, what a non-finite value no op produced entered through (``"buffer 'm'"``,
            ``"parameter 'fc.weight'"``); None when an op produced it.

    Examples:
        >>> Culprit("2", "forward", torch.float32, 3.5).to_dict()["dtype"]
        'float32'
    """

    module: str
    phase: Phase
    dtype: torch.dtype
    max_abs_before: float
    rank: int = 0
    value: Literal["nan", "inf"] = "inf"
    weights: WeightState = "unknown"
    max_abs_weight: float = math.nan
    op: str | None = None
    source: str | None = None
    reproduced: bool = True
    inputs_max_abs: tuple[float, ...] = ()
    via: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the culprit as JSON-ready plain data (the op-level fields only from an op-level replay)."""
        op_level = {} if self.op is None and self.reproduced else {
            "op": self.op,
            "source": self.source,
            "reproduced": self.reproduced,
            "inputs_max_abs": list(self.inputs_max_abs),
            "via": self.via,
        }  # fmt: skip
        return {
            "module": self.module,
            "phase": self.phase,
            "dtype": str(self.dtype).removeprefix("torch."),
            "max_abs_before": self.max_abs_before,
            "rank": self.rank,
            "value": self.value,
            "weights": self.weights,
            "max_abs_weight": self.max_abs_weight,
            **op_level,
        }

    def with_rank(self, rank: int) -> Culprit:
        """Return a copy attributed to ``rank``."""
        return replace(self, rank=rank)

    def with_weights(self, model: nn.Module) -> Culprit:
        """Return a copy that says whether the named module's weights in ``model`` are finite, huge or not.

        Examples:
            >>> net = nn.Sequential(nn.Linear(2, 2))
            >>> with torch.no_grad():
            ...     _ = net[0].weight.fill_(float("nan"))
            >>> Culprit("0", "forward", torch.float32, 1.0).with_weights(net).weights
            'nonfinite'
        """
        owner = self.module.partition("#")[0]
        names = dict(model.named_modules(remove_duplicate=False))
        module = model if owner == "(root)" else names.get(owner)
        params = [] if module is None else list(module.parameters(recurse=owner != "(root)"))
        if not params:
            return replace(self, weights="none", max_abs_weight=math.nan)
        with torch.no_grad():
            finite = all(_finite(p) for p in params)
            top = max(_max_abs([p]) for p in params)
        state = "nonfinite" if not finite else ("huge" if top >= HUGE_WEIGHT else "finite")
        return replace(self, weights=state, max_abs_weight=top)


@dataclass
class _Call:
    """What one module call saw, filled by the hooks (forward first, then backward)."""

    name: str
    module: str
    inputs_finite: bool = True
    max_abs_in: float = 0.0
    bad_output: torch.Tensor | None = None
    grad_out_finite: bool = True
    max_abs_grad_out: float = 0.0
    bad_grad: torch.Tensor | None = None
    children: list[str] = field(default_factory=list)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def _max_abs(tensors: list[torch.Tensor]) -> float:
    finite = [t.detach().abs().nan_to_num(0.0, 0.0, 0.0).amax().item() for t in tensors if t.numel()]
    return float(max(finite, default=0.0))


def _kind(t: torch.Tensor) -> Literal["nan", "inf"]:
    return "nan" if bool(torch.isnan(t).any()) else "inf"


class _Recorder:
    """Hooks every module; keeps one :class:`_Call` per call, in start and completion order."""

    def __init__(self, model: nn.Module) -> None:
        self.names = {id(m): (n or "(root)") for n, m in model.named_modules()}
        self.calls: list[_Call] = []
        self.done: list[_Call] = []
        self.grad_inputs: list[torch.Tensor] = []
        self._open: dict[int, list[_Call]] = {}
        self._seen: dict[str, int] = {}

    def install(self, model: nn.Module, stack: ExitStack) -> None:
        for module in model.modules():
            stack.enter_context(module.register_forward_pre_hook(self._pre, prepend=True))
            stack.enter_context(module.register_forward_hook(self._post))

    def _pre(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        base = self.names[id(module)]
        self._seen[base] = self._seen.get(base, 0) + 1
        call = _Call(base if self._seen[base] == 1 else f"{base}#{self._seen[base]}", base)
        self.calls.append(call)
        self._open.setdefault(id(module), []).append(call)
        tensors = list(_tensors(args))
        call.inputs_finite = all(_finite(t) for t in tensors)
        call.max_abs_in = _max_abs(tensors)
        return tuple(self._alias(a, call) for a in args)

    def _alias(self, arg: Any, call: _Call) -> Any:
        if not (isinstance(arg, torch.Tensor) and arg.is_floating_point() and arg.requires_grad):
            return arg
        alias = arg.view_as(arg)  # this module's own edge: its gradient is what *this* module sends back
        alias.register_hook(lambda g: self._grad_in(call, g))
        self.grad_inputs.append(alias)
        return alias

    def _post(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        call = self._open[id(module)].pop()
        self.done.append(call)
        for t in _tensors(output):
            if call.bad_output is None and not _finite(t):
                call.bad_output = t
            if t.requires_grad:
                t.register_hook(lambda g, call=call: self._grad_out(call, g))
                self.grad_inputs.append(t)

    def _grad_out(self, call: _Call, grad: torch.Tensor | None) -> None:
        if grad is None:  # an output the loss does not use (fused kernels such as cuDNN's LSTM pass None)
            return
        call.max_abs_grad_out = max(call.max_abs_grad_out, _max_abs([grad]))
        call.grad_out_finite = call.grad_out_finite and _finite(grad)

    def _grad_in(self, call: _Call, grad: torch.Tensor | None) -> None:
        if grad is not None and call.bad_grad is None and not _finite(grad):
            call.bad_grad = grad

    def forward_culprit(self) -> Culprit | None:
        for call in self.done:
            if call.bad_output is not None and call.inputs_finite:
                out = call.bad_output
                return Culprit(call.name, "forward", out.dtype, call.max_abs_in, value=_kind(out))
        return None

    def backward_culprit(self) -> Culprit | None:
        producers = [c for c in reversed(self.done) if c.grad_out_finite and c.bad_grad is not None]
        if not producers:
            return None
        chosen = producers[0]
        inner = [c for c in producers if _inside(c.module, chosen.module)]
        while inner:
            chosen = inner[0]
            inner = [c for c in producers if _inside(c.module, chosen.module)]
        bad = chosen.bad_grad
        return Culprit(chosen.name, "backward", bad.dtype, chosen.max_abs_grad_out, value=_kind(bad))

    def blame_parameters(self, model: nn.Module, params: list[tuple[str, torch.Tensor]], grads: Any) -> None:
        by_module: dict[str, list[_Call]] = {}
        for call in self.done:
            by_module.setdefault(call.module, []).append(call)
        for (name, _), grad in zip(params, grads, strict=True):
            owner = name.rpartition(".")[0] or "(root)"
            if grad is None or _finite(grad):
                continue
            for call in by_module.get(owner, [])[-1:]:  # a shared module's last call runs first in backward
                call.bad_grad = call.bad_grad if call.bad_grad is not None else grad


def _inside(name: str, container: str) -> bool:
    if container == "(root)":
        return name != "(root)"
    return name.startswith(container + ".")


def _call_model(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _check_inputs(inputs: Any) -> None:
    tensors = list(_tensors(inputs))
    if not tensors and not isinstance(inputs, (torch.Tensor, tuple, list, dict)):
        raise NumstabTypeError(
            f"inputs must be a tensor, a tuple/list of positional arguments or a dict of keyword arguments, "
            f"got {type(inputs).__name__}"
        )
    if not all(_finite(t) for t in tensors):
        raise BadInputError(
            "inputs already contain inf or NaN: the fault is upstream of the model; check the data loader "
            "(torch.isfinite(batch).all()) before looking for a culprit module"
        )


@contextmanager
def _state_preserved(model: nn.Module) -> Iterator[None]:
    """Restore buffers (BatchNorm statistics) and RNG state (dropout) whatever happens inside."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


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
        BadInputError: ``inputs`` already contain inf or NaN (not the model's doing).

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
    _check_inputs(inputs)
    if level == "op":
        return _locate_op(model, inputs, loss_fn, target, scaler, forward)
    recorder = _Recorder(model)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with _state_preserved(model), ExitStack() as hooks:
        recorder.install(model, hooks)
        output = _call_model(model, inputs) if forward is None else forward(inputs)
        culprit = recorder.forward_culprit()
        if culprit is not None:
            return culprit
        loss = loss_fn(output) if target is None else loss_fn(output, target)
        if not _finite(loss):
            return Culprit(LOSS, "forward", loss.dtype, _max_abs(list(_tensors(output))), value=_kind(loss))
        if not loss.requires_grad:
            return None
        return _backward(recorder, model, params, scaler.scale(loss) if _active(scaler) else loss)


def _active(scaler: torch.amp.GradScaler | None) -> bool:
    return scaler is not None and scaler.is_enabled()


def _backward(
    recorder: _Recorder, model: nn.Module, params: list[tuple[str, torch.Tensor]], loss: torch.Tensor
) -> Culprit | None:
    unique = {id(t): t for t in recorder.grad_inputs}  # a parent and its last child share an output
    wanted = [p for _, p in params] + list(unique.values())
    grads = torch.autograd.grad(loss, wanted, allow_unused=True)
    recorder.blame_parameters(model, params, grads[: len(params)])
    culprit = recorder.backward_culprit()
    if culprit is None and any(g is not None and not _finite(g) for g in grads):
        bad = next(g for g in grads if g is not None and not _finite(g))
        return Culprit(LOSS, "backward", bad.dtype, math.nan, value=_kind(bad))
    return culprit


def _locate_op(
    model: nn.Module,
    inputs: Any,
    loss_fn: Callable[..., torch.Tensor],
    target: Any,
    scaler: torch.amp.GradScaler | None,
    forward: Callable[[Any], Any] | None,
) -> Culprit:
    """Replay twice at op level (:func:`numstab.monitor.ops.replay`); the culprit says if both agree."""
    with distributed.replay_context(model) as inner:

        def step() -> torch.Tensor:
            output = _call_model(inner, inputs) if forward is None else forward(inputs)
            loss = loss_fn(output) if target is None else loss_fn(output, target)
            return scaler.scale(loss) if _active(scaler) and loss.requires_grad else loss

        params = list(inner.parameters())
        found = []
        for _ in range(2):
            with _state_preserved(inner):
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
