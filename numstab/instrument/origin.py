"""Where the first NaN/inf of a pass came from: one module, one phase, one result type (:class:`Culprit`).

:func:`find_origin` replays one batch with :class:`numstab.instrument.calls.ModuleCalls` hooks on every
module. It is the one place that decides the origin: :func:`numstab.diagnose` (when its pass saw a
non-finite value) and :func:`numstab.monitor.locate_nonfinite` both call it, so they name the same module
and phase for the same fault.

The rule:

- **forward**: the first call, in completion order, whose inputs were finite and whose output is not
  (a child completes before its parent, so the innermost module that did it is named); else the loss,
  if it is non-finite;
- **backward** (only when the forward and the loss are finite): a *producer* is a call whose output
  gradient was finite but that sent a non-finite gradient back to one of its inputs, or whose own
  parameters got a non-finite gradient. Input gradients are per consumer (each module reads its inputs
  through an alias), so a tensor read by several modules is blamed on the one that broke it. A
  parameter is blamed on its first owner in ``named_parameters()`` (tied weights are one parameter: a
  tied ``lm_head`` is not blamed for its embedding's gradient). The last producer in forward order ran
  first in backward; a container yields to a producer inside it.

``torch.autograd.detect_anomaly`` answers a narrower question (the autograd node whose backward returned
NaN, not inf, and not in forward) at 2-3x the cost of every step; this runs once, on the failing batch.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    >>> _ = net[1].register_forward_hook(lambda m, a, out: out * float("inf"))
    >>> c = find_origin(net, lambda: net(torch.ones(3, 2)), lambda out: out.sum())
    >>> c.module, c.phase, c.value
    ('1', 'forward', 'inf')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from numstab.instrument.calls import ROOT, ModuleCalls
from numstab.instrument.tensors import all_finite, float_tensors, max_abs, nan_or_inf

__all__ = ["Culprit", "find_origin", "HUGE_WEIGHT", "LOSS"]

Phase = Literal["forward", "backward"]
WeightState = Literal["finite", "huge", "nonfinite", "none", "unknown"]
#: The culprit's name when the loss function produced the first non-finite value.
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
    dtype: torch.dtype | None = None
    max_abs_before: float = math.nan
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
            "dtype": None if self.dtype is None else str(self.dtype).removeprefix("torch."),
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
        module = model if owner == ROOT else names.get(owner)
        params = [] if module is None else list(module.parameters(recurse=owner != ROOT))
        if not params:
            return replace(self, weights="none", max_abs_weight=math.nan)
        with torch.no_grad():
            finite = all(all_finite(p) for p in params)
            top = max(max_abs([p]) for p in params)
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


class _Recorder(ModuleCalls):
    """Keeps one :class:`_Call` per module call, in completion order, and the tensors to differentiate."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.done: list[_Call] = []
        self.grad_inputs: list[torch.Tensor] = []
        self._open: list[_Call] = []

    def enter(self, module: nn.Module, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _Call(name, self.names[module])
        self._open.append(call)
        tensors = list(float_tensors((args, kwargs)))
        call.inputs_finite = all(all_finite(t) for t in tensors)
        call.max_abs_in = max_abs(tensors)

        def edge(value: Any) -> Any:
            alias = self.alias(value, lambda g: self._grad_in(call, g))
            if alias is not value:
                self.grad_inputs.append(alias)
            return alias

        return tuple(edge(a) for a in args), {k: edge(v) for k, v in kwargs.items()}

    def leave(self, module: nn.Module, name: str, args: tuple[Any, ...], output: Any) -> None:
        call = self._open.pop()
        self.done.append(call)
        for t in float_tensors(output):
            if call.bad_output is None and not all_finite(t):
                call.bad_output = t
            if t.requires_grad:
                self.on_grad(t, lambda g, call=call: self._grad_out(call, g))
                self.grad_inputs.append(t)

    def _grad_out(self, call: _Call, grad: torch.Tensor | None) -> None:
        if grad is None:  # an output the loss does not use (fused kernels such as cuDNN's LSTM pass None)
            return
        call.max_abs_grad_out = max(call.max_abs_grad_out, max_abs([grad]))
        call.grad_out_finite = call.grad_out_finite and all_finite(grad)

    def _grad_in(self, call: _Call, grad: torch.Tensor | None) -> None:
        if grad is not None and call.bad_grad is None and not all_finite(grad):
            call.bad_grad = grad

    def forward_culprit(self) -> Culprit | None:
        for call in self.done:
            if call.bad_output is not None and call.inputs_finite:
                out = call.bad_output
                return Culprit(call.name, "forward", out.dtype, call.max_abs_in, value=nan_or_inf(out))
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
        assert bad is not None
        return Culprit(chosen.name, "backward", bad.dtype, chosen.max_abs_grad_out, value=nan_or_inf(bad))

    def blame_parameters(self, params: list[tuple[str, torch.Tensor]], grads: Any) -> None:
        """A non-finite parameter gradient counts against the last call of its first owner."""
        by_module: dict[str, list[_Call]] = {}
        for call in self.done:
            by_module.setdefault(call.module, []).append(call)
        for (name, _), grad in zip(params, grads, strict=True):
            owner = name.rpartition(".")[0] or ROOT
            if grad is None or all_finite(grad):
                continue
            for call in by_module.get(owner, [])[-1:]:  # a shared module's last call runs first in backward
                call.bad_grad = call.bad_grad if call.bad_grad is not None else grad


def _inside(name: str, container: str) -> bool:
    if container == ROOT:
        return name != ROOT
    return name.startswith(container + ".")


def find_origin(
    model: nn.Module,
    run: Callable[[], Any],
    loss_fn: Callable[[Any], torch.Tensor],
    *,
    scale: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Culprit | None:
    """Run ``run()`` (a forward pass through ``model``) with hooks; name the first non-finite value's origin.

    The caller preserves the model's state (:func:`numstab.instrument.state.preserved`); gradients are
    taken with ``torch.autograd.grad``, so ``.grad`` is untouched, and every hook is removed on return.

    Args:
        model: the module whose submodules are hooked.
        run: runs the forward pass and returns the output.
        loss_fn: turns the output into a scalar loss.
        scale: applied to the loss before the backward pass (a GradScaler's ``scale``), or None.

    Returns:
        The :class:`Culprit` (see the module docstring for the rule), or None when the forward, the loss
        and every gradient are finite.
    """
    recorder = _Recorder(model)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with recorder:
        output = run()
        culprit = recorder.forward_culprit()
        if culprit is not None:
            return culprit
        loss = loss_fn(output)
        if not all_finite(loss):
            before = max_abs(float_tensors(output))
            return Culprit(LOSS, "forward", loss.dtype, before, value=nan_or_inf(loss))
        if not loss.requires_grad:
            return None
        return _backward(recorder, params, loss if scale is None else scale(loss))


def _backward(
    recorder: _Recorder, params: list[tuple[str, torch.Tensor]], loss: torch.Tensor
) -> Culprit | None:
    unique = {id(t): t for t in recorder.grad_inputs}  # a parent and its last child share an output
    wanted = [p for _, p in params] + list(unique.values())
    grads = torch.autograd.grad(loss, wanted, allow_unused=True)
    recorder.blame_parameters(params, grads[: len(params)])
    culprit = recorder.backward_culprit()
    bad = next((g for g in grads if g is not None and not all_finite(g)), None)
    if culprit is None and bad is not None:
        return Culprit(LOSS, "backward", bad.dtype, math.nan, value=nan_or_inf(bad))
    return culprit
