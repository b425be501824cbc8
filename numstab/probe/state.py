"""Save and restore what a diagnostic pass could change in a model: modes, buffers, requires_grad, .grad.

:func:`numstab.diagnose` runs the model in the mode it is in (train mode is how it will be trained).
A train-mode forward updates BatchNorm's running statistics, so every buffer is copied before the pass
and copied back after it, in a ``finally``; the pass never calls ``backward()`` into ``.grad`` (it uses
``torch.autograd.grad``), and ``.grad``, ``requires_grad`` and each module's ``training`` flag are put
back as they were regardless.

Examples:
    >>> import torch
    >>> bn = torch.nn.BatchNorm1d(3)
    >>> with preserved(bn):
    ...     _ = bn(torch.randn(8, 3, generator=torch.Generator().manual_seed(0)))
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0, 0.0], 0)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ModelState", "preserved"]


@dataclass(frozen=True)
class ModelState:
    """A snapshot of a model's mutable state other than parameter values.

    Attributes:
        training: each module's ``training`` flag.
        buffers: ``(module, name, tensor, copy)`` for every buffer: the tensor object and its values.
        params: ``(parameter, requires_grad, grad, hooks)`` for every parameter: the flag, the ``.grad``
            object and whether it had a tensor-hook dict (torch leaves an empty dict after a removal).
    """

    training: tuple[tuple[nn.Module, bool], ...]
    buffers: tuple[tuple[nn.Module, str, torch.Tensor, torch.Tensor], ...]
    params: tuple[tuple[nn.Parameter, bool, torch.Tensor | None, bool], ...]

    @classmethod
    def save(cls, model: nn.Module) -> ModelState:
        """Snapshot ``model`` (buffers are copied; parameters are not, the pass does not write them)."""
        modules = list(model.modules())
        buffers = tuple(
            (m, name, b, b.detach().clone())
            for m in modules
            for name, b in m.named_buffers(recurse=False)
            if b is not None
        )
        params = tuple((p, p.requires_grad, p.grad, p._backward_hooks is None) for p in model.parameters())
        return cls(tuple((m, m.training) for m in modules), buffers, params)

    def restore(self) -> None:
        """Put everything back: modes, buffer objects and values, requires_grad and .grad."""
        for module, training in self.training:
            module.training = training
        with torch.no_grad():
            for module, name, tensor, copy in self.buffers:
                if getattr(module, name, None) is not tensor:
                    setattr(module, name, tensor)
                tensor.copy_(copy)
        for p, requires_grad, grad, had_no_hooks in self.params:
            if p.requires_grad != requires_grad:
                p.requires_grad_(requires_grad)
            if p.grad is not grad:
                p.grad = grad
            if had_no_hooks and p._backward_hooks is not None and not p._backward_hooks:
                p._backward_hooks = None  # as found: torch leaves {} where there was None


@contextmanager
def preserved(model: nn.Module) -> Iterator[ModelState]:
    """Context manager: snapshot ``model`` on entry and restore it on exit, also after an exception."""
    state = ModelState.save(model)
    try:
        yield state
    finally:
        state.restore()
