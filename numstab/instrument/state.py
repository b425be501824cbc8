"""Leave a model as found: modes, parameters and buffers (values and objects), ``.grad``, the RNG.

A diagnostic pass may change more than it seems. A train-mode forward updates BatchNorm's running
statistics; ``nn.Embedding(max_norm=...)`` renormalizes rows of its weight in place inside forward; a
module may rebind a buffer (``self.count = self.count + 1`` puts a new tensor in ``_buffers``); dropout
draws from the global RNG. :class:`ModelState` snapshots all of it and :meth:`ModelState.restore` puts
it back bit for bit, in a ``finally``.

Parameter values are not copied up front (that would double the model's memory). Every parameter's
version counter (``Tensor._version``, bumped by each in-place write) is read at :meth:`ModelState.save`;
a pre-hook copies a module's own parameters just before its forward runs and its forward hook drops the
copy again unless the version moved, so what is kept is exactly the parameters forward wrote, and the
peak extra memory is one module's parameters. Modules of torch's own classes whose forward reads its
weights and never writes them (:data:`READ_ONLY_FORWARD`: Linear, convolutions, norms, an Embedding
without ``max_norm``, ...) are not copied unless a hook is registered on them (a user's hook may write):
on VGG-16 the copies cost as much as the forward pass itself, and these modules hold nearly all weights.
``parameters="all"`` copies every parameter up front
instead (for callers that themselves write weights and may have to undo it, such as ``init.lsuv_``).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> bn = nn.BatchNorm1d(3)
    >>> with preserved(bn):
    ...     _ = bn(torch.randn(8, 3, generator=torch.Generator().manual_seed(0)))
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0, 0.0], 0)
    >>> emb = nn.Embedding(4, 3, max_norm=0.5)
    >>> before = emb.weight.detach().clone()
    >>> with preserved(emb):
    ...     _ = emb(torch.tensor([0, 1]))
    >>> torch.equal(emb.weight, before)
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["ModelState", "preserved", "READ_ONLY_FORWARD"]

Parameters = Literal["written", "all", "none"]

#: Module classes whose ``forward`` never writes their parameters (exact classes, not subclasses: a
#: subclass may override forward). ``nn.Embedding`` is one only while ``max_norm`` is None.
READ_ONLY_FORWARD: frozenset[type[nn.Module]] = frozenset({
    nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
    nn.ConvTranspose3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.RMSNorm, nn.PReLU, nn.Embedding,
    nn.MultiheadAttention, nn.RNN, nn.LSTM, nn.GRU,
})


class ModelState:
    """A snapshot of everything a pass through ``model`` may change, and its restoration.

    Args:
        model: the module.
        parameters: "written" (copy each parameter just before a forward that may write it; the
            default), "all" (copy every parameter now) or "none" (values are not restored).
        rng: also save the CPU RNG and that of every CUDA device the model is on.

    Use :func:`preserved` (a context manager) unless the restoration must be conditional.
    """

    def __init__(self, model: nn.Module, *, parameters: Parameters = "written", rng: bool = True) -> None:
        modules = list(model.modules())
        self._training = [(m, m.training) for m in modules]
        self._buffers = [(m, dict(m._buffers), [(b, b.detach().clone()) for b in m._buffers.values()
                                                  if b is not None]) for m in modules if m._buffers]
        self._param_objects = [(m, dict(m._parameters)) for m in modules if m._parameters]
        params = list(model.parameters())
        self._params = [(p, p.requires_grad, p.grad, p._backward_hooks is None, p._version) for p in params]
        self._copies: dict[nn.Parameter, torch.Tensor] = {}
        if parameters == "all":
            self._copies = {p: p.detach().clone() for p in params}
        self._handles: list[Any] = []
        self._pending: dict[int, list[list[tuple[nn.Parameter, int, torch.Tensor]]]] = {}
        self._rng = _rng_state(params) if rng else None
        if parameters == "written":
            self._watch(m for m in modules if m._parameters and not _read_only(m))

    @classmethod
    def save(cls, model: nn.Module, *, parameters: Parameters = "written", rng: bool = True) -> ModelState:
        """Snapshot ``model`` (see the class)."""
        return cls(model, parameters=parameters, rng=rng)

    def restore(self, *, parameters: bool = True) -> None:
        """Put everything back; ``parameters=False`` keeps the parameter values as they are now."""
        while self._handles:
            self._handles.pop().remove()
        for module, training in self._training:
            module.training = training
        with torch.no_grad():
            self._restore_tensors(parameters)
        for p, requires_grad, grad, had_no_hooks, _ in self._params:
            if p.requires_grad != requires_grad:
                p.requires_grad_(requires_grad)
            if p.grad is not grad:
                p.grad = grad
            if had_no_hooks and p._backward_hooks is not None and not p._backward_hooks:
                p._backward_hooks = None  # as found: torch leaves {} where there was None
        if self._rng is not None:
            _set_rng_state(self._rng)

    def _restore_tensors(self, parameters: bool) -> None:
        for module, objects in self._param_objects:
            for name, p in objects.items():
                if module._parameters.get(name) is not p:
                    module._parameters[name] = p
        for module, objects, copies in self._buffers:
            for name, b in objects.items():
                if module._buffers.get(name) is not b:  # rebound (self.count = self.count + 1)
                    module._buffers[name] = b
            for b, copy in copies:
                b.copy_(copy)
        if parameters:
            for p, *_, version in self._params:
                if p._version != version and p in self._copies:
                    p.copy_(self._copies[p])
        self._copies.clear()
        self._pending.clear()

    # -- copies of the parameters a forward writes ---------------------------------------------------

    def _watch(self, modules: Iterator[nn.Module]) -> None:
        try:
            for m in modules:
                self._handles.append(m.register_forward_pre_hook(self._before, prepend=True))
                self._handles.append(m.register_forward_hook(self._after, always_call=True))
        except BaseException:
            self.restore()
            raise

    def _before(self, module: nn.Module, args: Any) -> None:
        todo = [(p, p._version, p.detach().clone()) for p in module._parameters.values()
                if p is not None and p not in self._copies]
        self._pending.setdefault(id(module), []).append(todo)

    def _after(self, module: nn.Module, args: Any, output: Any) -> None:
        stack = self._pending.get(id(module))
        for p, version, copy in stack.pop() if stack else ():
            if p._version != version and p not in self._copies:
                self._copies[p] = copy  # forward wrote it: keep the value from before


def _read_only(module: nn.Module) -> bool:
    """True when ``module``'s forward cannot write its parameters: a :data:`READ_ONLY_FORWARD` class with no
    hooks of its own and no global module hooks."""
    if type(module) not in READ_ONLY_FORWARD or getattr(module, "max_norm", None) is not None:
        return False
    if module._forward_pre_hooks or module._forward_hooks:
        return False
    from torch.nn.modules import module as torch_module

    return not (torch_module._global_forward_pre_hooks or torch_module._global_forward_hooks)


def _rng_state(params: list[nn.Parameter]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    devices = sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})
    return torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in devices}


def _set_rng_state(state: tuple[torch.Tensor, dict[int, torch.Tensor]]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    for device, value in cuda.items():
        torch.cuda.set_rng_state(value, device)


@contextmanager
def preserved(
    model: nn.Module, *, parameters: Parameters = "written", rng: bool = True
) -> Iterator[ModelState]:
    """Context manager: snapshot ``model`` on entry (:class:`ModelState`), restore it on exit, also after an
    exception."""
    state = ModelState(model, parameters=parameters, rng=rng)
    try:
        yield state
    finally:
        state.restore()
