"""The few torch.distributed calls the monitor needs, in one place.

Under ``DistributedDataParallel`` each rank's gradients are all-reduced during backward, so a NaN on one
rank is on every rank a moment later and nobody can say where it came from. The monitor reads each
rank's *local* gradient in a post-accumulate hook, before DDP's reducer marks it ready (so before its
bucket's all-reduce is launched), and exchanges who-was-bad only on the rare step that is non-finite.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["unwrap", "rank_and_world", "all_gather_objects"]


def unwrap(model: nn.Module) -> nn.Module:
    """Return the module inside ``DistributedDataParallel`` (or ``model`` itself), for clean names.

    Examples:
        >>> unwrap(nn.Linear(2, 2)).__class__.__name__
        'Linear'
    """
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.module
    return model


def rank_and_world(model: nn.Module) -> tuple[int, int]:
    """Return ``(rank, world_size)``: ``(0, 1)`` unless ``model`` is DDP-wrapped in an initialized group.

    Examples:
        >>> rank_and_world(nn.Linear(2, 2))
        (0, 1)
    """
    if not isinstance(model, nn.parallel.DistributedDataParallel):
        return 0, 1
    group = model.process_group
    return torch.distributed.get_rank(group), torch.distributed.get_world_size(group)


def all_gather_objects(model: nn.Module, obj: Any) -> list[Any]:
    """Return ``obj`` from every rank of ``model``'s process group (a collective: every rank must call it).

    Examples:
        >>> all_gather_objects(nn.Linear(2, 2), {"bad": []})
        [{'bad': []}]
    """
    _, world = rank_and_world(model)
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    torch.distributed.all_gather_object(out, obj, group=model.process_group)
    return out
