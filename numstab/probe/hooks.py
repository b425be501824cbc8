"""Capture per-call statistics of a model's forward and backward pass with hooks that are always removed.

The hooks are :class:`numstab.instrument.calls.ModuleCalls`'s (one per module call, removed on exit);
gradients with respect to a module's output come from tensor hooks registered inside its forward hook,
which survive in-place ops (see that module).

Every tensor is reduced inside its hook (:func:`numstab.probe.stats.summarize`) and released; a
:class:`CallRecord` holds a few numbers per module call. A module called twice gets two records,
``name`` and ``name#2``.

Examples:
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    >>> with Capture(net) as cap:
    ...     _ = net(torch.ones(2, 4))
    >>> [r.name for r in cap.records], len(net[0]._forward_hooks)
    (['0', '1'], 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from numstab.instrument import ROOT, ModuleCalls, float_tensors
from numstab.probe.stats import RANGE_FORMATS, TensorStats, merge, summarize, unit_census

__all__ = ["CallRecord", "Capture", "is_activation", "owns_parameters", "measured_modules"]

#: Module classes whose values are laid out (batch, channels, ...): units are channels (dim 1).
_CHANNEL_FIRST = ("Conv", "BatchNorm", "InstanceNorm", "GroupNorm", "Pool", "Dropout2d", "Dropout3d")


@dataclass
class CallRecord:
    """What the hooks learned about one call of one module (mutable while the pass runs).

    Attributes:
        name: the module's name in ``named_modules()``, with ``#k`` for its k-th call (k >= 2).
        module_name: the module's name without the call suffix.
        kind: the module's class name.
        call: 1 for the first call, 2 for the second, ...
        unit_dim: the dimension of the output that indexes units (1 for channels, -1 for features).
        forward: summary of every floating-point tensor in the output.
        grad: summary of the gradients with respect to those tensors (None when none reached them).
        dead_fraction: fraction of units that are exactly 0 for the whole batch.
        duplicate_units: units whose values over the batch equal another unit's (dead units skipped).
        units: number of units.
        numel: number of elements of the main (first floating-point) output tensor.
    """

    name: str
    module_name: str
    kind: str
    call: int
    unit_dim: int
    forward: TensorStats | None = None
    grad: TensorStats | None = None
    dead_fraction: float = 0.0
    duplicate_units: int = 0
    units: int = 0
    numel: int = 0


def owns_parameters(module: nn.Module) -> bool:
    """True when the module has parameters of its own (not only through children).

    Examples:
        >>> owns_parameters(nn.Linear(2, 2)), owns_parameters(nn.Sequential(nn.Linear(2, 2)))
        (True, False)
    """
    return next(module.parameters(recurse=False), None) is not None


def is_activation(module: nn.Module) -> bool:
    """True for torch's activation modules (``torch.nn.modules.activation``), e.g. ReLU, Tanh, GELU.

    Examples:
        >>> is_activation(nn.ReLU(inplace=True)), is_activation(nn.Linear(2, 2))
        (True, False)
    """
    return type(module).__module__ == "torch.nn.modules.activation" and not isinstance(
        module, nn.MultiheadAttention
    )


def measured_modules(model: nn.Module) -> dict[nn.Module, str]:
    """The modules diagnose measures, ``{module: name}``: every module that owns parameters, every activation
    (the model itself is called ``"(root)"``).

    Examples:
        >>> sorted(measured_modules(nn.Sequential(nn.Linear(2, 2), nn.Tanh())).values())
        ['0', '1']
    """
    return {m: n or ROOT for n, m in model.named_modules() if owns_parameters(m) or is_activation(m)}


class Capture(ModuleCalls):
    """Hooks on every module of ``model``, measuring the measured ones; a context manager that removes them.

    While attached, each call of a measured module adds a :class:`CallRecord` to :attr:`records` (in the
    order calls finish). :attr:`stack` holds the call names of the modules whose forward is running, so
    after an exception ``stack[-1]`` is the innermost module that failed.

    Args:
        model: the model.
        formats: number formats whose range to check (names of :func:`numstab.precision.formats`).

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
        >>> with Capture(net) as cap:
        ...     net(torch.ones(4, 3)).sum().backward()
        >>> cap.records[0].grad.count, cap.records[1].forward.count
        (12, 4)
    """

    def __init__(self, model: nn.Module, *, formats: tuple[str, ...] = RANGE_FORMATS) -> None:
        super().__init__(model)
        self.formats = formats
        self.records: list[CallRecord] = []
        self._measured = measured_modules(model)
        self._channel_first = False

    @property
    def never_called(self) -> list[str]:
        """Measured modules that owned parameters but whose forward never ran (their weights were used
        directly, as MultiheadAttention does with ``out_proj``)."""
        called = {r.module_name for r in self.records}
        return [n for n in self._measured.values() if n not in called]

    def leave(self, module: nn.Module, name: str, args: tuple[Any, ...], output: Any) -> None:
        if module not in self._measured:
            return
        record = self._new_record(module, name, output)
        self.records.append(record)
        for t in float_tensors(output):
            record.forward = merge(record.forward, summarize(t, formats=self.formats))
            if t.requires_grad:
                self.on_grad(t, self._grad_hook(record))

    def _new_record(self, module: nn.Module, name: str, output: Any) -> CallRecord:
        base, _, call = name.partition("#")
        kind = type(module).__name__
        main = next(float_tensors(output), None)
        unit_dim = self._unit_dim(kind, main)
        record = CallRecord(name, self._measured[module], kind, int(call or 1), unit_dim)
        if main is not None and main.dim() > 0 and main.numel() > 0:
            record.units = main.shape[unit_dim]
            record.numel = main.numel()
            record.dead_fraction, record.duplicate_units = unit_census(main, unit_dim)
        return record

    def _unit_dim(self, kind: str, main: torch.Tensor | None) -> int:
        """Channels (dim 1) after convolutions and 2-D norms, features (last dim) otherwise."""
        if any(kind.startswith(p) for p in _CHANNEL_FIRST):
            self._channel_first = True
        elif not is_activation_kind(kind):
            self._channel_first = False
        ndim = 0 if main is None else main.dim()
        if ndim >= 4 or (ndim == 3 and self._channel_first):
            return 1
        return -1 if ndim >= 1 else 0

    def _grad_hook(self, record: CallRecord) -> Any:
        def hook(grad: torch.Tensor | None) -> None:
            if grad is None:  # an output the loss does not use (fused kernels such as cuDNN's LSTM pass None)
                return
            record.grad = merge(record.grad, summarize(grad, formats=self.formats))

        return hook


def is_activation_kind(kind: str) -> bool:
    """True when ``kind`` names a class of ``torch.nn.modules.activation``.

    Examples:
        >>> is_activation_kind("ReLU"), is_activation_kind("Linear")
        (True, False)
    """
    cls = getattr(nn, kind, None)
    return isinstance(cls, type) and cls.__module__ == "torch.nn.modules.activation"
