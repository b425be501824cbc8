"""The wrappers training puts around a module (DDP, FSDP2, ``torch.compile``), and the monitor's collectives.

- **Names.** ``DistributedDataParallel`` adds ``module.``, ``torch.compile`` adds ``_orig_mod.``: the monitor
  reports the names of the module the user wrote (:func:`unwrap`, :func:`clean_name`).
- **DDP.** Each rank's gradients are all-reduced during backward, so a NaN on one rank is on every rank a
  moment later and nobody can say where it came from. The monitor reads each rank's *local* gradient in a
  post-accumulate hook, before DDP's reducer marks it ready (so before its bucket's all-reduce is launched),
  and exchanges who-was-bad only on the rare step that is non-finite.
- **FSDP2** (``fully_shard``, DTensor parameters). Each rank holds a shard of every gradient, so a norm read
  locally is wrong (too small by about the square root of the number of shards). The full norm comes from
  the shards' sums of squares, :math:`\\|g\\|^2 = \\sum_r \\|g^{(r)}\\|^2`, summed over ranks in **one**
  all-reduce per recorded step for all parameters together (:func:`full_norms`). A rank's own gradient exists
  only before FSDP2 reduce-scatters it, on the unsharded parameter FSDP2 puts on the module during forward and
  backward: :func:`hook_unsharded` watches it there. A replay (``locate_nonfinite``) first unshards every
  parameter (:func:`replay_context`) so that it issues no collective: each rank replays its own batch and may
  stop at a different point without leaving the others waiting.
- **torch.compile.** The replay runs the original module eagerly (``torch.compiler.set_stance("force_eager")``
  for modules compiled in place), so numstab's hooks never run inside a compiled region.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from numstab.errors import ModelError
from numstab.instrument.compiled import COMPILED, is_compiled

__all__ = [
    "unwrap",
    "clean_name",
    "is_sharded",
    "process_group",
    "rank_and_world",
    "all_gather_objects",
    "local_tensors",
    "shard_plan",
    "full_norms",
    "hook_unsharded",
    "replay_context",
]



def unwrap(model: nn.Module) -> nn.Module:
    """Return the module inside ``DistributedDataParallel`` and ``torch.compile`` wrappers (any nesting).

    Examples:
        >>> unwrap(nn.Linear(2, 2)).__class__.__name__
        'Linear'
    """
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif is_compiled(model):
            model = getattr(model, COMPILED)
        else:
            return model


def clean_name(name: str) -> str:
    """Drop the ``_orig_mod`` segments a compiled submodule adds to its parameters' names.

    Examples:
        >>> clean_name("block._orig_mod.fc.weight")
        'block.fc.weight'
    """
    return ".".join(part for part in name.split(".") if part != COMPILED) if COMPILED in name else name


def _dtensor() -> type | None:
    if not torch.distributed.is_available():
        return None
    from torch.distributed.tensor import DTensor

    return DTensor


def is_sharded(model: nn.Module) -> bool:
    """Whether any parameter of ``model`` is a DTensor (FSDP2 ``fully_shard``, tensor parallelism).

    Examples:
        >>> is_sharded(nn.Linear(2, 2))
        False
    """
    dtensor = _dtensor()
    return dtensor is not None and any(isinstance(p, dtensor) for p in model.parameters())


def process_group(model: nn.Module) -> Any:
    """Return the process group whose ranks train ``model`` together, or None for a single process.

    DDP: its ``process_group``. DTensor parameters: the group of their device mesh (a 1-D mesh, or a mesh
    spanning every rank).

    Raises:
        ModelError: a multi-dimensional mesh over a subset of the ranks (no single group spans it).
    """
    inner = model
    while True:
        if isinstance(inner, nn.parallel.DistributedDataParallel):
            return inner.process_group
        if not is_compiled(inner):
            break
        inner = getattr(inner, COMPILED)
    dtensor = _dtensor()
    mesh = next((p.device_mesh for p in model.parameters() if dtensor and isinstance(p, dtensor)), None)
    if mesh is None:
        return None
    if mesh.ndim == 1:
        return mesh.get_group()
    if mesh.size() == torch.distributed.get_world_size():
        return torch.distributed.group.WORLD
    raise ModelError(
        f"the model's parameters live on a {mesh.ndim}-D device mesh over {mesh.size()} of "
        f"{torch.distributed.get_world_size()} ranks: GradientMonitor needs a 1-D mesh or one spanning every "
        "rank; monitor each data-parallel replica's model separately"
    )


def rank_and_world(model: nn.Module) -> tuple[int, int]:
    """Return ``(rank, world_size)`` in :func:`process_group`; ``(0, 1)`` for a single process.

    Examples:
        >>> rank_and_world(nn.Linear(2, 2))
        (0, 1)
    """
    group = process_group(model)
    if group is None:
        return 0, 1
    return torch.distributed.get_rank(group), torch.distributed.get_world_size(group)


def all_gather_objects(model: nn.Module, obj: Any) -> list[Any]:
    """Return ``obj`` from every rank of ``model``'s process group (a collective: every rank must call it).

    Examples:
        >>> all_gather_objects(nn.Linear(2, 2), {"bad": []})
        [{'bad': []}]
    """
    group = process_group(model)
    world = 1 if group is None else torch.distributed.get_world_size(group)
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    torch.distributed.all_gather_object(out, obj, group=group)
    return out


# -- sharded gradients -----------------------------------------------------------------------------------


def local_tensors(grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Return each gradient's local shard (the tensor itself when it is not a DTensor); no communication.

    Examples:
        >>> [t.shape for t in local_tensors([torch.ones(3)])]
        [torch.Size([3])]
    """
    dtensor = _dtensor()
    if dtensor is None:
        return list(grads)
    with torch.no_grad():
        return [g.to_local() if isinstance(g, dtensor) else g for g in grads]


Plan = list[tuple[Any, list[int]]]


def shard_plan(grads: Sequence[torch.Tensor]) -> Plan:
    """Return, for each process group some gradients are sharded over, the indices of those gradients.

    A gradient sharded over mesh dimensions ``d1, d2`` appears under both groups: summing the sums of squares
    over one group, then the other, sums them over every shard. Replicated dimensions are not summed (every
    rank already holds the whole). FSDP2 gives one group holding every index: one all-reduce.

    Raises:
        ModelError: a gradient with a ``Partial`` placement (pending reduction: its local values are partial
            sums, whose squares do not add up to the norm).

    Examples:
        >>> shard_plan([torch.ones(2)])
        []
    """
    dtensor = _dtensor()
    plan: dict[Any, list[int]] = {}
    for i, grad in enumerate(grads):
        if dtensor is None or not isinstance(grad, dtensor):
            continue
        for dim, placement in enumerate(grad.placements):
            if placement.is_partial():
                raise ModelError(
                    f"gradient {i} is a DTensor with a Partial placement {grad.placements}: its local values "
                    "are partial sums, not shards; call monitor.step() after the gradients are reduced"
                )
            if placement.is_shard():
                plan.setdefault(grad.device_mesh.get_group(dim), []).append(i)
    return list(plan.items())


def full_norms(norms: torch.Tensor, plan: Plan) -> torch.Tensor:
    """Return the full (unsharded) norms from per-shard norms: one all-reduce of squares per group.

    .. math::

        \\|g_i\\| = \\Big(\\sum_{r} \\|g_i^{(r)}\\|^2\\Big)^{1/2}

    ``norms`` are float64 (squares of float32-range norms stay inside float64's range). A non-finite shard
    makes the sum non-finite on every rank, so every rank sees the fault.

    Args:
        norms: float64 per-tensor norms of this rank's shards, shape ``(P,)``.
        plan: from :func:`shard_plan`.
    """
    squares = norms * norms
    for group, indices in plan:
        if len(indices) == squares.numel():
            torch.distributed.all_reduce(squares, group=group)
            continue
        index = torch.tensor(indices, device=squares.device)
        part = squares.index_select(0, index)
        torch.distributed.all_reduce(part, group=group)
        squares.index_copy_(0, index, part)
    return squares.sqrt()


def _fsdp_module_type() -> type | None:
    if not torch.distributed.is_available():
        return None
    from torch.distributed.fsdp import FSDPModule

    return FSDPModule


def _managing(model: nn.Module, owner: str) -> nn.Module | None:
    """The FSDP module whose all-gather unshards the parameters of submodule ``owner``: its nearest FSDP
    ancestor (itself included)."""
    fsdp = _fsdp_module_type()
    parts = owner.split(".") if owner else []
    for depth in range(len(parts), -1, -1):
        module = model.get_submodule(".".join(parts[:depth]))
        if fsdp is not None and isinstance(module, fsdp):
            return module
    return None


def hook_unsharded(
    model: nn.Module, names: Sequence[str], hook: Callable[[int], Callable[[torch.Tensor], None]]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Watch each rank's own gradients under FSDP2: post-accumulate hooks on the unsharded parameters.

    FSDP2 reduce-scatters a gradient right after autograd accumulates it into the unsharded parameter that
    FSDP2 set on the module for the forward and backward (the same object at every step after the first
    all-gather). A one-shot forward pre-hook on each FSDP module, running after FSDP2's own pre-forward (which
    unshards), finds that parameter on its owner module and registers ``hook(index)`` on it.

    Args:
        model: the unwrapped model.
        names: raw parameter names of ``model`` (as ``named_parameters`` gives them), in monitor order.
        hook: ``hook(index)`` returns the post-accumulate hook for parameter ``index``.

    Returns:
        The handles: the one-shot pre-hooks now, and the parameter hooks as they are registered (the list
        grows in place; remove them all to detach).
    """
    handles: list[torch.utils.hooks.RemovableHandle] = []
    by_fsdp: dict[int, tuple[nn.Module, list[tuple[int, nn.Module, str]]]] = {}
    for index, name in enumerate(names):
        owner_name, _, attr = name.rpartition(".")
        fsdp = _managing(model, owner_name)
        if fsdp is not None:
            entry = by_fsdp.setdefault(id(fsdp), (fsdp, []))
            entry[1].append((index, model.get_submodule(owner_name), attr))

    for fsdp, owned in by_fsdp.values():
        pre: list[torch.utils.hooks.RemovableHandle] = []

        def register(module: nn.Module, args: Any, owned: list = owned, pre: list = pre) -> None:
            pre.pop().remove()  # one shot: the unsharded parameters keep their identity after this
            for index, owner, attr in owned:
                unsharded = getattr(owner, attr)
                if isinstance(unsharded, nn.Parameter) and not isinstance(unsharded, _dtensor()):
                    handles.append(unsharded.register_post_accumulate_grad_hook(hook(index)))

        pre.append(fsdp.register_forward_pre_hook(register))
        handles.append(pre[0])
    return handles


# -- replay ------------------------------------------------------------------------------------------------


def _fsdp_groups(module: nn.Module) -> list[Any]:
    state = module._get_fsdp_state()
    groups = getattr(state, "_fsdp_param_groups", None)  # torch >= 2.12; one group before
    return list(groups) if groups is not None else [g for g in [state._fsdp_param_group] if g is not None]


@contextmanager
def _unsharded(modules: list[nn.Module]) -> Iterator[None]:
    """Every FSDP module unsharded and kept so through a forward and a backward; sharded again after.

    The reshard flags are FSDP2 state the public setters change but cannot read back: they are saved and
    restored field by field.
    """
    flags = [[(g, g.post_forward_mesh_info, g.reshard_after_backward) for g in _fsdp_groups(m)]
             for m in modules]
    saved = [(m._get_fsdp_state(), groups) for m, groups in zip(modules, flags, strict=True)]
    autos = [state._auto_reshard_after_forward for state, _ in saved]
    try:
        for module in modules:
            module.set_reshard_after_forward(False, recurse=False)
            module.set_reshard_after_backward(False, recurse=False)
        for module in modules:  # the same collectives in the same order on every rank
            module.unshard()
        yield
    finally:
        for (state, groups), auto in zip(saved, autos, strict=True):
            state._auto_reshard_after_forward = auto
            for group, post_forward, after_backward in groups:
                group.post_forward_mesh_info = post_forward
                group.reshard_after_backward = after_backward
        for module in modules:
            module.reshard()


def _compiled_inside(model: nn.Module) -> bool:
    return any(is_compiled(m) or getattr(m, "_compiled_call_impl", None) for m in model.modules())


@contextmanager
def replay_context(model: nn.Module) -> Iterator[nn.Module]:
    """Yield the module to replay: the original one, run eagerly, with FSDP2 parameters unsharded.

    Inside, the replay issues no collective and runs no compiled region, so numstab's hooks see every module
    and each rank may stop wherever its own batch goes non-finite. A collective itself when the model is
    sharded (every rank must enter it).

    Examples:
        >>> with replay_context(nn.Linear(2, 2)) as module:
        ...     type(module).__name__
        'Linear'
    """
    inner = unwrap(model)
    fsdp = _fsdp_module_type()
    with ExitStack() as stack:
        if _compiled_inside(inner):
            stack.enter_context(torch.compiler.set_stance("force_eager"))
        modules = [m for m in inner.modules() if fsdp is not None and isinstance(m, fsdp)]
        if modules:
            stack.enter_context(_unsharded(modules))
        yield inner
