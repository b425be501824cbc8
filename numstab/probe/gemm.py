"""GEMM-like layers and their three GEMM inputs: the input activation, the weight, the output gradient.

A low-precision recipe quantizes the operands of a layer's matrix products. For ``y = x W^T`` (forward),
``dx = g W`` (backward, "dgrad") and ``dW = g^T x`` ("wgrad"), the operands are the input ``x``, the
weight ``W`` and the output gradient ``g = dL/dy``. Block-scaled recipes (MX, NVFP4) put their blocks
along the **reduction dimension** of the product the operand enters; :class:`GemmSpec` says which
dimension that is, per tensor:

=====================  ==================  ========================  ===========================
layer                  input ``x``         weight                    output gradient ``g``
=====================  ==================  ========================  ===========================
``nn.Linear``          features (-1)       ``(out, in)``: in (1)     features (-1), in ``g W``
HF ``Conv1D``          features (-1)       ``(in, out)``: in (0)     features (-1), in ``g W^T``
``nn.ConvNd``          channels (-N-1)     ``(out, in, k..)``: 1     channels (-N-1)
``MultiheadAttention`` the query (-1)      ``in_proj_weight``: 1     not observable (fused)
=====================  ==================  ========================  ===========================

Convolutions are taken as a channels-last implicit GEMM, whose reduction index (kernel position,
channel) runs fastest over channels: blocks of 32 channels at one position. The wgrad product
``g^T x`` reduces over the batch and positions instead; its operands are the same tensors blocked the
other way, and are not simulated here. ``nn.MultiheadAttention`` applies its projections inside a fused
function, so only its query and its projection weights (``in_proj_weight``, and ``out_proj.weight``,
whose forward never runs) are seen.

:class:`GemmCapture` hooks those layers and hands each input and output gradient to a callback as it
is computed (a layer called twice: ``name`` and ``name#2``); every hook is removed on exit.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Conv1d(8, 2, 1))
    >>> {name: (s.kind, s.input_dim, s.weight_dim) for name, s in gemm_layers(net).items()}
    {'0': ('Linear', -1, 1), '2': ('Conv1d', -2, 1)}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from numstab.instrument import ModuleCalls, float_tensors
from numstab.layers import is_hf_conv1d

__all__ = ["GemmSpec", "gemm_spec", "gemm_layers", "GemmCapture", "GEMM_KINDS"]

#: What counts as GEMM-like, for messages.
GEMM_KINDS = "Linear, Conv1d/2d/3d, transformers' Conv1D, MultiheadAttention"


@dataclass(frozen=True)
class GemmSpec:
    """Where a GEMM-like module's operands are and along which dimension each is reduced.

    Attributes:
        kind: the module's class name.
        weight: the module's weight tensor (a parameter of the module).
        input_dim: reduction dimension of the input activation (negative: counted from the end).
        weight_dim: reduction dimension of the weight.
        grad_dim: reduction dimension of the output gradient in the dgrad product; None when the
            gradient is not observable (fused attention projections, or a weight used by its parent).
        called: the module's own forward runs (False for ``MultiheadAttention.out_proj``).
    """

    kind: str
    weight: torch.Tensor
    input_dim: int
    weight_dim: int
    grad_dim: int | None
    called: bool = True


def gemm_spec(module: nn.Module) -> GemmSpec | None:
    """The :class:`GemmSpec` of ``module``, or None when it is not GEMM-like (or has no float weight).

    Examples:
        >>> gemm_spec(nn.Conv2d(3, 8, 3)).input_dim, gemm_spec(nn.LayerNorm(4)) is None
        (-3, True)
    """
    kind = type(module).__name__
    if isinstance(module, nn.MultiheadAttention):
        weight = module.in_proj_weight if module.in_proj_weight is not None else module.q_proj_weight
        return _spec(kind, weight, -1, 1, None)
    if isinstance(module, nn.Linear):
        return _spec(kind, module.weight, -1, 1, -1)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        channel = -(module.weight.dim() - 1)  # (N, C, *spatial): C is spatial + 1 from the end
        return _spec(kind, module.weight, channel, 1, channel)
    if is_hf_conv1d(module):
        return _spec(kind, module.weight, -1, 0, -1)
    return None


def _spec(kind: str, weight: Any, input_dim: int, weight_dim: int, grad_dim: int | None) -> GemmSpec | None:
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        return None
    return GemmSpec(kind, weight, input_dim, weight_dim, grad_dim)


def gemm_layers(model: nn.Module) -> dict[str, GemmSpec]:
    """Every GEMM-like module of ``model`` by name, in ``named_modules()`` order.

    ``MultiheadAttention.out_proj`` is included with ``called=False``: its weight is a GEMM operand
    although its own forward never runs.

    Examples:
        >>> sorted(gemm_layers(nn.MultiheadAttention(8, 2)))
        ['', 'out_proj']
    """
    layers: dict[str, GemmSpec] = {}
    for name, module in model.named_modules():
        spec = gemm_spec(module)
        if spec is None:
            continue
        if name not in layers:
            layers[name] = spec
        if isinstance(module, nn.MultiheadAttention):
            out = gemm_spec(module.out_proj)
            if out is not None:
                layers[_join(name, "out_proj")] = GemmSpec(out.kind, out.weight, -1, 1, None, called=False)
    return layers


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


#: Callback of an operand: (call name, module name, tensor, reduction dim).
OperandHook = Callable[[str, str, torch.Tensor, int], None]


class GemmCapture(ModuleCalls):
    """Hooks on ``model``'s GEMM-like layers that hand each input and output gradient to a callback.

    The hooks are :class:`numstab.instrument.calls.ModuleCalls`'s: every module keeps :attr:`stack` (after
    an exception ``stack[-1]`` names where it failed). Output gradients come from a tensor hook registered on
    the output inside the forward hook: an in-place op after the layer (``ReLU(inplace=True)``) does not
    change which gradient it sees (torch's rule for hooks registered before an in-place op).

    Args:
        model: the model.
        layers: :func:`gemm_layers` of the model.
        on_input: called with each GEMM input activation, during the forward pass.
        on_grad: called with each output gradient, during the backward pass.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
        >>> seen = []
        >>> hook = lambda call, module, t, dim: seen.append((call, tuple(t.shape), dim))
        >>> with GemmCapture(net, gemm_layers(net), on_input=hook, on_grad=hook):
        ...     net(torch.ones(2, 3)).sum().backward()
        >>> seen
        [('0', (2, 3), -1), ('1', (2, 3), -1), ('1', (2, 1), -1), ('0', (2, 3), -1)]
    """

    def __init__(
        self, model: nn.Module, layers: dict[str, GemmSpec], *, on_input: OperandHook, on_grad: OperandHook
    ) -> None:
        super().__init__(model)
        self._layers = {model.get_submodule(n): (n, s) for n, s in layers.items() if s.called}
        self._on_input, self._on_grad = on_input, on_grad
        self._outputs: list[tuple[torch.Tensor, int, torch.Tensor | None, torch.Tensor]] = []

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._outputs.clear()

    def backward_targets(self) -> list[torch.Tensor]:
        """Tensors to differentiate the loss with respect to so that every hooked output gradient is computed,
        and no parameter gradient (the ``dW`` products) is.

        Each layer output, unless an in-place op changed it after the layer (its hook then sits below the
        tensor's current node); then the layer's input, or failing that its weight, which forces autograd
        through the layer.
        """
        targets: dict[int, torch.Tensor] = {}
        for output, version, x, weight in self._outputs:
            target = output if output._version == version else x if x is not None else weight
            if target.requires_grad:
                targets.setdefault(id(target), target)
        return list(targets.values())

    def enter(self, module: nn.Module, call: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module not in self._layers:
            return
        name, spec = self._layers[module]
        x = next(float_tensors((args, kwargs)), None)
        if x is not None:
            with torch.no_grad():
                self._on_input(_call_name(name, call), name, x.detach(), spec.input_dim)

    def leave(self, module: nn.Module, call: str, args: tuple[Any, ...], output: Any) -> None:
        if module not in self._layers:
            return
        name, spec = self._layers[module]
        if spec.grad_dim is None or not isinstance(output, torch.Tensor) or not output.requires_grad:
            return
        call, dim = _call_name(name, call), spec.grad_dim

        def hook(grad: torch.Tensor | None) -> None:
            if grad is not None:
                with torch.no_grad():
                    self._on_grad(call, name, grad.detach(), dim)

        self.on_grad(output, hook)
        x = next((t for t in float_tensors(args) if t.requires_grad), None)
        self._outputs.append((output, output._version, x, spec.weight))


def _call_name(layer: str, call: str) -> str:
    """The layer's name with the ``#k`` of the module call (the model itself is a layer named "")."""
    k = call.partition("#")[2]
    return f"{layer}#{k}" if k else layer
