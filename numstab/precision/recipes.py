"""Low-precision recipes, simulated exactly: how a GEMM input is scaled, rounded, and read back.

A recipe turns a float32 tensor ``x`` into low-precision values and reads them back (quantize, then
dequantize). Every step is the recipe's own arithmetic in float32, so
:func:`numstab.precision.quantize` returns, bit for bit, what the recipe would feed the GEMM:

==================  ==============================================================================
recipe              what happens to ``x``
==================  ==============================================================================
``bfloat16``        ``x.to(bfloat16)`` (torch.autocast's bf16; no loss scale needed)
``float16``         ``x.to(float16)``; beyond 65504 -> inf (gradients get a loss scale first, see
                    :func:`numstab.precision.audit`)
``e4m3_cast``       unscaled ``x.to(float8_e4m3fn)``, saturating at ±448 (torch >= 2.13's cast)
``e5m2_cast``       unscaled ``x.to(float8_e5m2)``; beyond 61440 -> inf (torch's cast)
``e4m3_tensor``     per-tensor current scaling (torchao float8, TE ``Float8CurrentScaling``):
``e5m2_tensor``     :math:`s = \\text{max}_{fp8} / \\max(a, 10^{-12})` in float64 then float32, with
                    :math:`a = \\max|x|` (or the ``amax`` given: delayed scaling); ``q = sat(x s)``
                    rounded, read back as ``q / s``
``e4m3_delayed``    the same with :math:`a` the amax history's maximum (TE ``DelayedScaling``,
``e5m2_delayed``    ``amax_compute_algo="max"``, margin 0); without a history, the current amax
``mxfp8_e4m3``      OCP MX v1.0 (section 6.3): blocks of 32 along ``dim``; one E8M0 scale per block,
``mxfp8_e5m2``      :math:`X = 2^{\\lfloor\\log_2 \\max|V_i|\\rfloor - e_{\\max}}` clamped to
                    :math:`[2^{-127}, 2^{127}]` (:math:`e_{\\max}` = 8 for E4M3, 15 for E5M2);
                    elements ``sat(V_i / X)`` rounded, read back as ``P_i X``
``nvfp4``           E2M1 elements in blocks of 16 along ``dim`` (NVIDIA NVFP4, as torchao 0.18
                    ``nvfp4_quantize``): tensor scale :math:`t = \\max|x| / (448 \\cdot 6)`; block
                    scale :math:`b = \\text{e4m3}(\\text{clamp}(\\max_{block}|x| / 6 / t, 2^{-6}, 448))`;
                    elements ``sat(x ((1/t) / b))`` rounded to E2M1, read back as ``P (t b)``
==================  ==============================================================================

Edge rules (each recipe maps 0 to 0): a block whose length along ``dim`` is not a multiple of the
block size is padded with zeros (they change no block's maximum), and the padding is dropped again.
An MX block whose maximum is NaN or ±inf gets the NaN scale (E8M0 0xFF), so all its values read back
NaN (spec section 5.3: a NaN scale makes the whole block NaN). A tensor recipe or NVFP4 facing a NaN
or ±inf anywhere has no usable tensor scale, and every value reads back NaN (torchao's arithmetic
gives the same). An all-zero tensor reads back as zeros under every recipe.

Sources: OCP Microscaling Formats (MX) v1.0 specification (2023); OCP 8-bit Floating Point (OFP8)
v1.0 (Micikevicius et al. 2022, "FP8 Formats for Deep Learning"); NVIDIA, "Pretraining LLMs with
NVFP4" (2025); torchao ``float8`` and ``prototype/mx_formats`` (0.18).

Examples:
    >>> RECIPES["mxfp8_e4m3"].block, RECIPES["nvfp4"].element.name
    (32, 'float4_e2m1fn')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.precision.elements import ELEMENTS, Element
from numstab.precision.ranges import formats

__all__ = ["Recipe", "RECIPES", "RECIPE_NAMES", "get_recipe", "Layout", "LAYOUT_BLOCK", "CHUNK_ROWS"]

#: Every tensor is laid out in rows of 32 values along ``dim`` (padded with zeros); MX blocks are those
#: rows, NVFP4 blocks their halves, and the other recipes do not care about the layout.
LAYOUT_BLOCK = 32

#: Rows processed at a time (1 Mi values): temporaries stay in cache and memory stays bounded.
CHUNK_ROWS = 1 << 15

@dataclass(frozen=True)
class Recipe:
    """One way of feeding a GEMM low-precision inputs.

    Attributes:
        name: the recipe's name, a key of :data:`RECIPES`.
        element: the element format each value is rounded to.
        scaling: ``"none"`` (a plain cast), ``"tensor"`` (one scale from the current amax), ``"delayed"``
            (one scale from an amax history), ``"mx"`` (an E8M0 power of two per block) or ``"nvfp4"``
            (an E4M3 scale per block times a float32 tensor scale).
        block: values sharing one scale along the GEMM's reduction dimension; 0 for a single scale.
        summary: one line on what the recipe is and who uses it.
    """

    name: str
    element: Element
    scaling: str
    block: int
    summary: str


def _recipes() -> dict[str, Recipe]:
    e4m3, e5m2 = ELEMENTS["float8_e4m3fn"], ELEMENTS["float8_e5m2"]
    plain_e5m2 = Element(formats()["float8_e5m2"], saturates=False)  # torch's cast: overflow -> inf
    rows = [
        ("bfloat16", ELEMENTS["bfloat16"], "none", 0, "bfloat16 cast (torch.autocast bf16)"),
        ("float16", ELEMENTS["float16"], "none", 0, "float16 cast (gradients times a loss scale)"),
        ("e4m3_cast", e4m3, "none", 0, "unscaled float8_e4m3fn cast, saturating"),
        ("e5m2_cast", plain_e5m2, "none", 0, "unscaled float8_e5m2 cast, overflow to inf"),
        ("e4m3_tensor", e4m3, "tensor", 0, "E4M3, per-tensor current scaling (torchao, TE)"),
        ("e5m2_tensor", e5m2, "tensor", 0, "E5M2, per-tensor current scaling (torchao, TE)"),
        ("e4m3_delayed", e4m3, "delayed", 0, "E4M3, per-tensor delayed scaling (TE DelayedScaling)"),
        ("e5m2_delayed", e5m2, "delayed", 0, "E5M2, per-tensor delayed scaling (TE DelayedScaling)"),
        ("mxfp8_e4m3", e4m3, "mx", 32, "MXFP8 E4M3: 32-value blocks, E8M0 scales (OCP MX v1.0)"),
        ("mxfp8_e5m2", e5m2, "mx", 32, "MXFP8 E5M2: 32-value blocks, E8M0 scales (OCP MX v1.0)"),
        ("nvfp4", ELEMENTS["float4_e2m1fn"], "nvfp4", 16, "NVFP4: E2M1, 16-value blocks, E4M3 scales"),
    ]
    return {row[0]: Recipe(*row) for row in rows}


#: Every recipe :func:`quantize` simulates, by name.
RECIPES: dict[str, Recipe] = _recipes()

#: The recipe names, in the order of :data:`RECIPES` (16-bit casts, fp8 casts, per-tensor, MX, NVFP4).
RECIPE_NAMES: tuple[str, ...] = tuple(RECIPES)


def get_recipe(recipe: str | Recipe) -> Recipe:
    """Resolve a recipe name (or a :class:`Recipe`) to the :class:`Recipe`.

    Raises:
        UnknownNameError: the name is not one of :data:`RECIPE_NAMES` (the message lists them).

    Examples:
        >>> get_recipe("mxfp8_e4m3").block
        32
    """
    if isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise UnknownNameError("recipe", recipe, RECIPE_NAMES)
    return RECIPES[recipe]


# -- layout: values along `dim` in rows of 32 -----------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """``x`` in float32 with ``dim`` moved last, padded with zeros to a multiple of 32, as rows of 32.

    Attributes:
        rows: the ``(n_rows, 32)`` float32 tensor.
        shape: ``x``'s shape with ``dim`` moved last (before padding; ``(1,)`` for a 0-dim ``x``).
        dim: the dimension the blocks run along (non-negative).
        original: ``x``'s shape.
    """

    rows: torch.Tensor
    shape: tuple[int, ...]
    dim: int
    original: tuple[int, ...]

    @classmethod
    def of(cls, x: torch.Tensor, dim: int) -> Layout:
        """Lay ``x`` out (a copy: ``x`` is never written)."""
        _check_tensor(x)
        x32 = x.detach().to(torch.float32).reshape(x.shape if x.dim() else (1,))
        dim = _check_dim(dim, x32.dim())
        moved = x32.movedim(dim, -1)
        pad = -moved.shape[-1] % LAYOUT_BLOCK
        padded = torch.nn.functional.pad(moved, (0, pad)) if pad else moved
        rows = padded.reshape(-1, LAYOUT_BLOCK).contiguous()
        return cls(rows, tuple(moved.shape), dim, tuple(x.shape))

    def chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """``(first_row, rows)`` in chunks of :data:`CHUNK_ROWS` rows."""
        for start in range(0, self.rows.shape[0], CHUNK_ROWS):
            yield start, self.rows[start : start + CHUNK_ROWS]

    def restore(self, rows: torch.Tensor) -> torch.Tensor:
        """Undo the layout on a tensor of the shape of :attr:`rows`."""
        length = self.shape[-1]
        padded = rows.reshape(*self.shape[:-1], -1)[..., :length]
        return padded.movedim(-1, self.dim).reshape(self.original).contiguous()


def _check_tensor(x: object) -> None:
    if not isinstance(x, torch.Tensor):
        raise NumstabTypeError(f"x must be a torch.Tensor, got {type(x).__name__}: pass the tensor itself")
    if not x.is_floating_point():
        raise NumstabTypeError(
            f"x must be a real floating-point tensor, got dtype {x.dtype}: convert it with x.float()"
        )
    if x.device.type == "meta":
        raise InvalidArgumentError("x is on the meta device and holds no values: materialize it first")


def _check_dim(dim: int, ndim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -ndim <= dim < ndim:
        raise InvalidArgumentError(
            f"dim must be an integer in [{-ndim}, {ndim - 1}] for a {ndim}-D tensor, got {dim!r}: pass the "
            "GEMM's reduction dimension (-1 for an activation or a Linear weight)"
        )
    return dim % ndim
