"""The aten operation that produced a batch's first non-finite value: op-level replay, forward and backward.

:class:`OpTracer` is a ``TorchDispatchMode``: while it is active every aten op, forward and backward, runs
through it, and every floating output is checked (one ``aminmax`` per output: ``min*0 + max*0`` is 0 exactly
when both are finite). Only an op with a non-finite output looks further, at its inputs, and attributes the
value to its **root**:

- *producer*: an op whose inputs (tensors and scalar arguments) are all finite and whose output is not
  (``log(0)``, ``exp(100)`` in float32, ``x / 0``, a float16 matmul past 65504);
- *NaN from infinities*: an op whose inputs hold inf but no NaN and whose output holds NaN (``inf - inf``,
  ``0 * inf``, softmax of a row of -inf). If one of those infinities was itself produced by an op of the
  same phase (an overflow), that op stays the root; if they all entered deliberately (a ``-inf`` mask) or
  come from the forward into a backward op (``0 * inf`` where a masked branch overflowed), this op is it;
- *entry*: a non-finite value that no op of the replay produced: a scalar argument (``masked_fill(m, -inf)``),
  a parameter, a buffer, or a tensor made before the replay. Infinities entering this way are treated as
  deliberate; a NaN entering is a fault of its own (reported with ``via``);
- every other op that outputs non-finite values only passes its inputs' roots along and is never named.

The fault is then what training sees: the loss, or else the parameters' gradients; its root is reported
(:class:`OpFault`), not the first non-finite value in time, so a ``-inf`` mask that softmax absorbs is not a
fault. Each op is attributed to the innermost module call running it (forward pre/post hooks, ``name#2``
for a second call), and to the user's source line that called it (the first frame of the Python stack
outside torch and numstab). A backward op runs inside an autograd node; the node's sequence number is the
one the forward op that created it saw (``torch.autograd._get_sequence_nr() - 1`` at dispatch), which
maps the backward op to its forward module and line. A custom ``autograd.Function``'s backward is user
code: its own line is reported.

Nothing here runs on a healthy training step: the tracer exists only during a replay after a fault.

Examples:
    >>> net = torch.nn.Linear(2, 1)
    >>> with OpTracer(net) as tracer:
    ...     loss = torch.log(net(torch.zeros(1, 2)) * 0).sum()
    >>> fault = tracer.root_of(loss)
    >>> fault.op, fault.module, fault.value
    ('aten.log.default', 'loss_fn', 'inf')
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = ["OpFault", "OpTracer", "LOSS", "replay"]

Phase = Literal["forward", "backward"]
#: The name ops outside every module of the model are attributed to (the loss function, the scaler).
LOSS = "loss_fn"
_LIBRARIES = tuple(
    os.path.dirname(m.__file__) + os.sep
    for m in (torch, sys.modules[__name__.partition(".")[0]])
    if m.__file__
)


@dataclass(frozen=True)
class OpFault:
    """Where a non-finite value came from: an op that produced it, or an entry (scalar, parameter, buffer).

    Attributes:
        index: position of the op in the replay (forward and backward ops counted together).
        op: the aten overload, e.g. ``"aten.log.default"``.
        phase: "forward" or "backward" (an op run by autograd).
        module: the innermost module call running the op (its forward origin for a backward op),
            ``"(root)"`` for the model's own code, ``"loss_fn"`` outside the model.
        source: ``"file.py:LINE"`` of the user's code that called the op (for a backward op: the forward
            call that created its autograd node, or the line of a custom ``autograd.Function.backward``).
        dtype: dtype of the non-finite output.
        value: "nan" or "inf".
        inputs_max_abs: per input (tensors, then floating scalar arguments): largest ``|x|``, NaN left out.
        via: for an entry, what the value entered through (``"buffer 'scale'"``, ``"argument -inf"``,
            ``"parameter 'fc.weight'"``, ``"a tensor made before the replay"``); None for a producer.
    """

    index: int
    op: str
    phase: Phase
    module: str
    source: str
    dtype: torch.dtype
    value: Literal["nan", "inf"]
    inputs_max_abs: tuple[float, ...] = ()
    via: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What must match between two replays for the fault to count as reproduced."""
        return (self.op, self.phase, self.module, self.source)


@dataclass
class _Origin:
    """Forward attribution of the autograd node a forward op created."""

    module: str
    source: str


@dataclass
class _Tracked:
    """A non-finite tensor seen in the replay, held so its identity stays valid, and its root."""

    tensor: torch.Tensor
    has_nan: bool
    root: OpFault


@dataclass
class _Modules:
    """The stack of module calls running now, fed by forward pre/post hooks."""

    names: dict[int, str]
    stack: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    def push(self, module: nn.Module, args: Any) -> None:
        base = self.names.get(id(module), type(module).__name__)
        self.calls[base] = self.calls.get(base, 0) + 1
        count = self.calls[base]
        self.stack.append(base if count == 1 else f"{base}#{count}")

    def pop(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.stack:
            self.stack.pop()

    @property
    def current(self) -> str:
        return self.stack[-1] if self.stack else LOSS


class OpTracer(TorchDispatchMode):
    """Check every aten op's outputs and keep, for each non-finite tensor, the op that is its root.

    Use as a context manager around the forward, the loss and the backward of one batch; it installs
    forward pre/post hooks on ``model``'s modules (to name them) and removes them on exit.

    Args:
        model: the module whose calls name the ops (its ``named_modules`` names).
        names: optional replacement for a module's name (``torch.compile``'s ``_orig_mod`` removed, say).

    Examples:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Softmax(-1))
        >>> with OpTracer(net) as tracer:
        ...     out = net(torch.ones(1, 2)).masked_fill(torch.tensor([True, True]), -math.inf)
        ...     loss = torch.softmax(out, -1).sum()
        >>> tracer.root_of(loss).op  # the -inf entered as an argument: softmax made the NaN
        'aten._softmax.default'
    """

    def __init__(self, model: nn.Module, names: dict[int, str] | None = None) -> None:
        super().__init__()
        named = {id(m): (n or "(root)") for n, m in model.named_modules(remove_duplicate=False)}
        self._modules = _Modules({**named, **(names or {})})
        self._model = model
        self._state = {
            **{_ptr(b): f"buffer {n!r}" for n, b in model.named_buffers()},
            **{_ptr(p): f"parameter {n!r}" for n, p in model.named_parameters()},
        }
        self._tracked: dict[int, _Tracked] = {}
        self._by_storage: dict[int, _Tracked] = {}
        self._origins: dict[int, _Origin] = {}
        self._count = 0
        self._last_seq = -1
        self._hooks = ExitStack()

    def __enter__(self) -> OpTracer:
        try:
            for module in self._model.modules():
                self._hooks.enter_context(module.register_forward_pre_hook(self._modules.push, prepend=True))
                self._hooks.enter_context(module.register_forward_hook(self._modules.pop, always_call=True))
        except BaseException:
            self._hooks.close()
            raise
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._hooks.close()

    # -- what a caller asks -----------------------------------------------------------------------------

    def root_of(self, tensor: torch.Tensor) -> OpFault | None:
        """The root of ``tensor``'s non-finite values, or None when it is finite or was not seen."""
        tracked = self._lookup(tensor)
        return tracked.root if tracked is not None else None

    def first_root(self, tensors: Sequence[torch.Tensor | None]) -> OpFault | None:
        """The earliest root among the non-finite ``tensors`` (producers before entries)."""
        roots = [self._state_of(t).root for t in tensors if t is not None and not _finite(t)]
        return min(roots, key=_precedence, default=None)

    # -- the mode --------------------------------------------------------------------------------------

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        node = torch._C._current_autograd_node()
        if node is None:
            self._note_origin(func)
        # an in-place op's inputs are read after it ran: which of them were finite before it wrote them
        clean = {id(t) for t in _written(func, args, kwargs) if _finite(t)}
        out = func(*args, **kwargs)
        self._count += 1
        bad = [t for t in _floats(out) if not _finite(t)]
        if bad:
            self._attribute(func, node, (args, kwargs), bad, clean)
        else:
            for t in _floats(out):
                self._forget(t)
        return out

    def _note_origin(self, func: Any) -> None:
        """Remember the module and line of the forward op that created autograd node ``seq - 1``."""
        seq = torch.autograd._get_sequence_nr()
        if seq != self._last_seq:
            self._last_seq = seq
            self._origins.setdefault(seq - 1, _Origin(self._modules.current, _user_line()))

    def _attribute(self, func: Any, node: Any, inputs: Any, bad: list[torch.Tensor], clean: set[int]) -> None:
        ins = list(_floats(inputs))
        bad_in = [t for t in ins if id(t) not in clean and not _finite(t)]
        scalars = [x for x in tree_leaves(inputs) if isinstance(x, float)]
        odd = [x for x in scalars if not math.isfinite(x)]
        ranges = tuple(_max_abs(t) for t in ins) + tuple(abs(x) for x in scalars)
        for out in bad:
            has_nan = bool(torch.isnan(out).any())
            states = [self._state_of(t, func, node, ranges) for t in bad_in]
            roots = [s.root for s in states] + [
                self._entry(func, node, out, f"argument {x}", ranges) for x in odd
            ]
            nan_in = any(s.has_nan for s in states)
            phase = "forward" if node is None else "backward"
            # an overflow of this phase stays the root; a forward inf that only backward turns into NaN
            # (0 * inf in the backward of a masked branch) was harmless until this op
            producers = [r for r in roots if r.via is None and r.phase == phase]
            if not roots or (has_nan and not nan_in and not producers):
                root = self._event(func, node, out, "nan" if has_nan else "inf", ranges)
            elif has_nan and not nan_in:  # NaN from infinities that an earlier op produced: that op
                root = min(producers, key=_precedence)
            else:
                wanted = [s.root for s in states if s.has_nan] if has_nan else roots
                root = min(wanted, key=_precedence)
            self._track(out, has_nan, root)

    def _event(
        self,
        func: Any,
        node: Any,
        out: torch.Tensor,
        value: str,
        ranges: tuple[float, ...],
        via: str | None = None,
    ) -> OpFault:
        phase, module, source = self._where(node)
        return OpFault(self._count, str(func), phase, module, source, out.dtype, value, ranges, via)  # type: ignore[arg-type]

    def _entry(self, func: Any, node: Any, t: torch.Tensor, via: str, ranges: tuple[float, ...]) -> OpFault:
        value = "nan" if bool(torch.isnan(t).any()) else "inf"
        return self._event(func, node, t, value, ranges, via)

    def _where(self, node: Any) -> tuple[Phase, str, str]:
        if node is None:
            return "forward", self._modules.current, _user_line()
        origin = self._origins.get(node._sequence_nr(), _Origin(LOSS, "?"))
        custom = isinstance(node, torch.autograd.function.BackwardCFunction)
        return "backward", origin.module, _user_line() if custom else origin.source

    def _state_of(
        self, t: torch.Tensor, func: Any = "(none)", node: Any = None, ranges: tuple[float, ...] = ()
    ) -> _Tracked:
        """A non-finite input's record; one that no op of the replay produced enters here."""
        tracked = self._lookup(t)
        if tracked is not None:
            return tracked
        root = self._entry(func, node, t, self._state.get(_ptr(t), "a tensor made before the replay"), ranges)
        return self._track(t, root.value == "nan", root)

    # -- bookkeeping -----------------------------------------------------------------------------------

    def _track(self, t: torch.Tensor, has_nan: bool, root: OpFault) -> _Tracked:
        entry = _Tracked(t, has_nan, root)
        self._tracked[id(t)] = entry
        self._by_storage[_ptr(t)] = entry
        return entry

    def _forget(self, t: torch.Tensor) -> None:
        """A finite output: an in-place op may have repaired a tracked tensor (``nan_to_num_``)."""
        self._tracked.pop(id(t), None)

    def _lookup(self, t: torch.Tensor) -> _Tracked | None:
        entry = self._tracked.get(id(t))
        if entry is not None and entry.tensor is t:
            return entry
        return self._by_storage.get(_ptr(t))  # a view of a tracked tensor, or its in-place result


_WRITES: dict[Any, tuple[tuple[int, str], ...]] = {}


def _written(func: Any, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The floating tensors ``func`` writes in place (``self`` of ``log_``, ``out=``): usually none."""
    if func not in _WRITES:
        schema = func._schema.arguments
        _WRITES[func] = tuple(
            (i, a.name) for i, a in enumerate(schema) if a.alias_info is not None and a.alias_info.is_write
        )
    found = [args[i] if i < len(args) else kwargs.get(name) for i, name in _WRITES[func]]
    return list(_floats(found)) if found else []


def _precedence(root: OpFault) -> tuple[bool, bool, int]:
    """Producers first, then NaN entries, then inf entries; earliest first within each."""
    return (root.via is not None, root.value != "nan", root.index)


def _floats(obj: Any) -> Iterator[torch.Tensor]:
    for leaf in tree_leaves(obj):
        if isinstance(leaf, torch.Tensor) and leaf.is_floating_point() and leaf.numel():
            yield leaf


def _finite(t: torch.Tensor) -> bool:
    """Whether every entry is finite: one reduction, no tensor the size of ``t`` (``min*0 + max*0 == 0``)."""
    low, high = torch.aminmax(t.detach())
    return bool((low * 0 + high * 0).eq(0))


def _max_abs(t: torch.Tensor) -> float:
    """Largest ``|x|``, inf included, NaN left out."""
    return float(t.detach().abs().nan_to_num(0.0, math.inf).amax())


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _user_line() -> str:
    """``file.py:LINE`` of the innermost frame outside torch and numstab ("?" when there is none)."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_LIBRARIES) and not name.startswith("<"):
            return f"{os.path.basename(name)}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def replay(
    model: nn.Module,
    step: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    names: dict[int, str] | None = None,
) -> OpFault | None:
    """Run ``step()`` (forward and loss) and the backward to ``params`` under an :class:`OpTracer`.

    Returns the root of the non-finite loss, or else of the earliest-rooted non-finite gradient; None when
    the loss and every gradient are finite. Gradients come from ``torch.autograd.grad`` (``.grad`` is not
    touched); the caller restores buffers and the RNG.
    """
    with OpTracer(model, names) as tracer:
        loss = step()
        if not _finite(loss):
            return tracer.first_root([loss])
        if not loss.requires_grad:
            return None
        wanted = [p for p in params if p.requires_grad]
        return tracer.first_root(torch.autograd.grad(loss, wanted, allow_unused=True))
