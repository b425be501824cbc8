"""What numstab knows about a layer's weight: how its fans are laid out, and who owns a shared one.

torch stores a Linear or convolution weight as ``(out, in, *kernel)`` and computes ``y = x W^T``;
HF transformers' ``Conv1D`` (GPT-2's every projection) stores it ``(in, out)`` and computes
``y = x W``. The fans follow from the layout:

.. math::
    \\text{fan\\_in} = \\text{in} \\cdot \\prod \\text{kernel}, \\qquad
    \\text{fan\\_out} = \\text{out} \\cdot \\prod \\text{kernel}.

A parameter can belong to several modules (GPT-2's ``lm_head.weight`` *is* ``transformer.wte.weight``):
it is one parameter, owned by the first module that holds it in ``model.named_modules()`` order, and
whatever initializes or judges it does so once, there.

``transformers`` is never imported here: a ``Conv1D`` can only exist once its module is loaded, so it is
recognized through ``sys.modules``.

Examples:
    >>> from torch import nn
    >>> fans(nn.Conv2d(3, 16, 5).weight)
    (75, 400)
    >>> tied = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    >>> tied[1].weight = tied[0].weight
    >>> found, unknown = scan(tied)
    >>> [(layer.name, layer.weights, layer.biases) for layer in found], unknown
    ([('1', (), ())], [])
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import torch
from torch import nn

from numstab.errors import BadInputError

__all__ = [
    "TORCH_LAYER_TYPES",
    "LOOKUP_TYPES",
    "WeightLayer",
    "expert_weights",
    "fans",
    "is_hf_conv1d",
    "owners",
    "own_weight",
    "scan",
]

#: Layers whose weight torch stores ``(out, in, *kernel)`` (subclasses included). A ConvTranspose
#: weight is stored ``(in, out, *kernel)``; torch.nn.init counts its fans as if it were not, and so do we.
TORCH_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

#: Lookup tables: a 2-D weight that is not a fan-in map (each row is read, never summed over).
LOOKUP_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)


def fans(tensor: torch.Tensor, *, transposed: bool = False) -> tuple[int, int]:
    """Return (fan_in, fan_out) of a weight stored ``(out, in, *kernel)``, or ``(in, out)`` if ``transposed``.

    The default is torch.nn.init's convention (``y = x W^T``); ``transposed=True`` is HF ``Conv1D``'s.

    Raises:
        BadInputError: the tensor has fewer than 2 dimensions; the message names its shape.

    Examples:
        >>> fans(torch.empty(16, 3, 5, 5)), fans(torch.empty(768, 2304), transposed=True)
        ((75, 400), (768, 2304))
    """
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise BadInputError(
            f"a weight needs at least 2 dimensions (out, in, *kernel) to have fans, got shape {shape}: "
            "pass a Linear or convolution weight, not a bias or a scalar"
        )
    if transposed:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def is_hf_conv1d(module: nn.Module) -> bool:
    """True for ``transformers.pytorch_utils.Conv1D`` (and subclasses), without importing transformers.

    A Conv1D can only exist once its module is loaded, so the class is looked up in ``sys.modules``.

    Examples:
        >>> is_hf_conv1d(nn.Conv1d(2, 2, 1))
        False
    """
    conv1d = getattr(sys.modules.get("transformers.pytorch_utils"), "Conv1D", None)
    return isinstance(conv1d, type) and isinstance(module, conv1d)


@dataclass(frozen=True)
class WeightLayer:
    """A module whose weights' fan convention numstab knows, with the parameters it owns.

    Attributes:
        name: the module's name in ``model.named_modules()`` ("" for the model itself).
        module: the module.
        weights: attribute names of its >= 2-D weights that it owns (a weight shared with a module met
            earlier is that module's): ``("weight",)``, MultiheadAttention's ``("in_proj_weight",)`` or
            ``("q_proj_weight", "k_proj_weight", "v_proj_weight")``, or ``()``.
        biases: attribute names of the biases it owns (``("bias",)``, ``("in_proj_bias",)`` or ``()``).
        transposed: True when the weights are stored ``(in, out)`` (HF ``Conv1D``).
        blocks: each weight stacks this many maps of equal shape along dim 0 (3 for MultiheadAttention's
            packed ``in_proj_weight``: the query, key and value projections, each ``(E, E)``).
    """

    name: str
    module: nn.Module
    weights: tuple[str, ...]
    biases: tuple[str, ...]
    transposed: bool = False
    blocks: int = 1


def _convention(module: nn.Module) -> tuple[tuple[str, ...], tuple[str, ...], bool, int] | None:
    """(weight names, bias names, transposed, blocks) of a layer type numstab knows, else None."""
    if is_hf_conv1d(module):
        return ("weight",), ("bias",), True, 1
    if isinstance(module, TORCH_LAYER_TYPES):
        return ("weight",), ("bias",), False, 1
    if isinstance(module, nn.MultiheadAttention):  # its out_proj is a Linear of its own
        if module.in_proj_weight is not None:
            return ("in_proj_weight",), ("in_proj_bias",), False, 3
        return ("q_proj_weight", "k_proj_weight", "v_proj_weight"), ("in_proj_bias",), False, 1
    return None


def own_weight(module: nn.Module) -> torch.Tensor | None:
    """The module's own ``weight`` parameter with >= 2 dims, or None (a lazy one counts: no shape yet).

    Examples:
        >>> own_weight(nn.LayerNorm(4)) is None, tuple(own_weight(nn.Linear(2, 3)).shape)
        (True, (3, 2))
    """
    weight = dict(module.named_parameters(recurse=False)).get("weight")
    if isinstance(weight, nn.parameter.UninitializedParameter):
        return weight
    return weight if isinstance(weight, torch.Tensor) and weight.dim() >= 2 else None


def expert_weights(module: nn.Module) -> list[torch.Tensor]:
    """The fused per-expert matrices of a mixture-of-experts module, or [] for any other module.

    transformers 5 stores a block's experts as one module with 3-D parameters of shape (experts, out, in)
    (Mixtral's ``gate_up_proj`` and ``down_proj``), applied as ``F.linear(x, w[e])``; such a module has no
    ``weight``. Recognized: no 2-D ``weight`` of its own, and at least two 3-D parameters sharing a
    leading dimension above 1 (a ViT's (1, N, D) position table is not one).

    Examples:
        >>> class Experts(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.gate_up_proj = nn.Parameter(torch.zeros(4, 32, 8))
        ...         self.down_proj = nn.Parameter(torch.zeros(4, 8, 16))
        >>> [tuple(w.shape) for w in expert_weights(Experts())], expert_weights(nn.Linear(2, 3))
        ([(4, 32, 8), (4, 8, 16)], [])
    """
    if own_weight(module) is not None:
        return []
    stacked = [p for p in module.parameters(recurse=False) if p.dim() == 3]
    if len(stacked) >= 2 and len({p.shape[0] for p in stacked}) == 1 and stacked[0].shape[0] > 1:
        return stacked
    return []


def owners(model: nn.Module) -> dict[int, str]:
    """``{id(parameter): name of its first owner}``: the first module holding it in ``named_modules()`` order.

    Examples:
        >>> tied = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
        >>> tied[1].weight = tied[0].weight
        >>> owners(tied)[id(tied[1].weight)]
        '0'
    """
    owner: dict[int, str] = {}
    for name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            owner.setdefault(id(param), name)
    return owner


def scan(model: nn.Module) -> tuple[list[WeightLayer], list[tuple[str, str]]]:
    """Sort the modules of ``model`` with weights by what is known of their fan convention.

    Returns:
        ``(layers, unknown)``: every Linear, Conv, ConvTranspose, HF Conv1D and MultiheadAttention as
        a :class:`WeightLayer` (with the weights and biases it owns), and ``(name, type name)`` of every
        other module with a >= 2-D ``weight`` parameter, whose convention is unknown. Lookup tables
        (:data:`LOOKUP_TYPES`) are in neither: they have no fans. Both in ``named_modules()`` order.

    Examples:
        >>> found, unknown = scan(nn.Sequential(nn.Linear(2, 3), nn.Bilinear(3, 3, 2)))
        >>> [(layer.name, layer.weights) for layer in found], unknown
        ([('0', ('weight',))], [('1', 'Bilinear')])
    """
    owner = owners(model)
    layers, unknown = [], []
    for name, module in model.named_modules():
        convention = _convention(module)
        if convention is None:
            if own_weight(module) is not None and not isinstance(module, LOOKUP_TYPES):
                unknown.append((name, type(module).__name__))
            continue
        weights, biases, transposed, blocks = convention
        params = {n: p for n, p in module.named_parameters(recurse=False) if owner[id(p)] == name}
        owned_weights = tuple(n for n in weights if n in params)
        layers.append(WeightLayer(name, module, owned_weights, tuple(n for n in biases if n in params),
                                  transposed, blocks))
    return layers, unknown
