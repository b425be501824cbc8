"""``numstab.precision.audit``: which layers of a model lose their signal under fp8 or block-scaled recipes.

One forward and one backward pass, with hooks on every GEMM-like layer (:mod:`numstab.probe.gemm`).
Each of a layer's three GEMM operands (input activation, weight, output gradient) is quantized under
every recipe exactly as the recipe does it (:func:`numstab.precision.measure`, blocks along the operand's
reduction dimension) as soon as it exists, and reduced to a few numbers: overflow, underflow and
subnormal fractions, relative MSE, headroom. :mod:`numstab.probe.precision_rules` then says which
operands are outside a recipe's limits, which recipes each layer tolerates, and which layers to keep in
high precision.

Gradients under ``float16`` get a loss scale first, as ``torch.amp.GradScaler`` applies one: by default
the largest power of two :math:`S` with :math:`S \\max|g| < 65520` over every audited output gradient,
where dynamic loss scaling settles (it halves the scale on an overflow and doubles it after 2000 clean
steps); those gradients are held until the backward pass ends to know :math:`S` (pass ``loss_scale=``
to measure them as they come). ``bfloat16`` needs no loss scale, and the scaled fp8 recipes absorb it.
The delayed-scaling recipes (``e4m3_delayed``, ``e5m2_delayed``) scale by the current amax here: one
batch has no history (TE's delayed scaling with a one-step history), so they equal ``*_tensor``.

Without ``loss_fn`` the output gradient is a unit-variance random vector (as in
:func:`numstab.diagnose`): the shape of every gradient is real, its absolute scale is not, which only
the unscaled casts (``e4m3_cast``, ``e5m2_cast``) are sensitive to; pass your loss to judge those.

Layering: this module runs hooks over a model, so it sits with :mod:`numstab.probe` (it imports the
ground layer :mod:`numstab.precision`, never the reverse). ``numstab.precision.audit`` is a lazy
re-export resolved on first access (see :mod:`numstab.precision`).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 8))
    >>> result = audit(net, torch.randn(32, 64, generator=torch.Generator().manual_seed(0)))
    >>> result.keep_high_precision, "mxfp8_e4m3" in result.layer("0").tolerated
    ([], True)
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from numstab import display, jsonio
from numstab._repr import short_repr
from numstab.errors import InvalidArgumentError, ModelError, UnknownNameError, check_positive
from numstab.instrument import preserved
from numstab.instrument.inputs import as_call, check_inputs
from numstab.precision import RECIPE_NAMES, Measurement, formats, measure
from numstab.probe import precision_rules as rules
from numstab.probe.diagnose import (
    DEFAULT_SEED,
    _check_model,
    _forward,
    _seed_loss,
)
from numstab.probe.gemm import GEMM_KINDS, GemmCapture, GemmSpec, gemm_layers

__all__ = ["audit", "PrecisionAudit", "PrecisionRecord", "LayerPrecision", "DEFAULT_RECIPES", "TENSORS"]

#: The recipes audited by default: every recipe but the delayed ones (equal to ``*_tensor`` on one batch).
DEFAULT_RECIPES: tuple[str, ...] = tuple(r for r in RECIPE_NAMES if not r.endswith("_delayed"))

#: A GEMM layer's three operands, in the order they are reported.
TENSORS: tuple[str, ...] = ("input", "weight", "grad_output")


@dataclass(frozen=True)
class PrecisionRecord:
    """What one recipe does to one operand of one layer call.

    Attributes:
        layer: the module's name, ``name#k`` for the input and output gradient of its k-th call (the
            weight is recorded once, under the module's name).
        module: the module's name.
        kind: the module's class name.
        tensor: ``"input"``, ``"weight"`` or ``"grad_output"``.
        recipe: the recipe's name.
        dim: the reduction dimension the recipe's blocks run along (index into ``shape``).
        shape: the operand's shape.
        overflow: fraction of the non-zero values that left the element's range (saturated or ±inf).
        underflow: fraction of the non-zero values that became zero.
        subnormal: fraction of the non-zero values that landed on a subnormal of the element format.
        rel_mse: :math:`\\sum (q - x)^2 / \\sum x^2`.
        sqnr_db: :math:`-10 \\log_{10}` rel_mse.
        headroom_bits: :math:`\\log_2(\\text{max}_{elem} / \\max|x s|)`: negative when values saturate.
        scale: the loss scale the operand was multiplied by first (float16 output gradients), else 1.
        problem: why the operand is outside the recipe's limits (:mod:`numstab.probe.precision_rules`),
            or None.
    """

    layer: str
    module: str
    kind: str
    tensor: str
    recipe: str
    dim: int
    shape: tuple[int, ...]
    overflow: float
    underflow: float
    subnormal: float
    rel_mse: float
    sqnr_db: float
    headroom_bits: float
    scale: float
    problem: str | None

    def to_dict(self) -> dict[str, Any]:
        """The fields, JSON-ready (``shape`` as a list)."""
        return {**asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class LayerPrecision:
    """The recommendation for one GEMM-like module (over all its calls).

    Attributes:
        name: the module's name.
        kind: the module's class name.
        tolerated: the audited recipes under which every operand of every call stays within the limits.
        keep_high_precision: the module tolerates none of the audited recipes narrower than 16 bits (or,
            when only 16-bit recipes are audited, none at all).
        problems: one line per recipe it does not tolerate, for its worst operand:
            ``"recipe: tensor of layer: problem"``.
        shortfall_db: ``{recipe: dB}``: the worst operand's SQNR below a Gaussian tensor's in that recipe
            (the heat map's cells; 6 dB is the limit).
    """

    name: str
    kind: str
    tolerated: tuple[str, ...]
    keep_high_precision: bool
    problems: tuple[str, ...]
    shortfall_db: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return asdict(self)


@dataclass(frozen=True, repr=False)
class PrecisionAudit(display.Displayed):
    """The result of :func:`audit`.

    Attributes:
        records: one :class:`PrecisionRecord` per (layer call, operand, recipe).
        layers: one :class:`LayerPrecision` per audited module, in ``named_modules()`` order.
        recipes: the audited recipes.
        loss_scale: the loss scale of the float16 output gradients (1.0 when float16 is not audited).
        backward: whether a backward pass ran (no output gradients otherwise).
        never_called: GEMM-like modules whose forward did not run (not audited).
    """

    records: tuple[PrecisionRecord, ...]
    layers: tuple[LayerPrecision, ...]
    recipes: tuple[str, ...]
    loss_scale: float
    backward: bool
    never_called: tuple[str, ...] = field(default=())

    @property
    def keep_high_precision(self) -> list[str]:
        """Names of the modules to keep in high precision (bf16 or fp32)."""
        return [la.name for la in self.layers if la.keep_high_precision]

    def layer(self, name: str) -> LayerPrecision:
        """The :class:`LayerPrecision` of module ``name``."""
        for la in self.layers:
            if la.name == name:
                return la
        raise UnknownNameError("audited layer", name, [la.name for la in self.layers])

    def record(self, layer: str, tensor: str, recipe: str) -> PrecisionRecord:
        """The record of ``layer``'s ``tensor`` under ``recipe`` (a weight is under the module's name)."""
        for r in self.records:
            if (r.layer, r.tensor, r.recipe) == (layer, tensor, recipe):
                return r
        raise UnknownNameError("record", (layer, tensor, recipe), sorted({r.layer for r in self.records}))

    def to_dict(self) -> dict[str, Any]:
        """The audit as JSON-ready data (the payload of the JSON kind ``"precision-audit"``)."""
        return {
            "recipes": list(self.recipes),
            "loss_scale": self.loss_scale,
            "backward": self.backward,
            "keep_high_precision": self.keep_high_precision,
            "layers": [la.to_dict() for la in self.layers],
            "records": [r.to_dict() for r in self.records],
            "never_called": list(self.never_called),
            "limits": {name: asdict(rules.limits(name)) for name in self.recipes},
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Return the JSON document (kind ``"precision-audit"``, see ``docs/report-schema.md``); also write
        it to ``path``."""
        if path is not None:
            jsonio.dump("precision-audit", self.to_dict(), path)
        return jsonio.dumps("precision-audit", self.to_dict())

    def to_html(self, path: str | os.PathLike) -> pathlib.Path:
        """Write a self-contained HTML page (table, heat map, every record) and return its path."""
        return display.write_html(self, path)

    __repr__ = short_repr

    def __rich__(self) -> Any:
        return display.rich(self)


def audit(
    model: nn.Module,
    inputs: Any,
    *,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    recipes: Sequence[str] | None = None,
    loss_scale: float | None = None,
    seed: int = DEFAULT_SEED,
) -> PrecisionAudit:
    """Simulate low-precision recipes on every GEMM operand of ``model`` in one forward and backward pass.

    Args:
        model: the network, left exactly as found (mode, buffers, ``.grad``, RNG; hooks removed in a
            ``finally``).
        inputs: a tensor (``model(inputs)``), a tuple or list (``model(*inputs)``) or a dict
            (``model(**inputs)``).
        loss_fn: ``loss_fn(output) -> scalar`` (close over your targets); None for a unit-variance random
            output gradient drawn from ``seed``.
        recipes: recipe names (:data:`numstab.precision.RECIPE_NAMES`); default :data:`DEFAULT_RECIPES`.
        loss_scale: the loss scale of float16 output gradients; default the dynamic one (module docstring).
        seed: seed of the random output gradient.

    Returns:
        A :class:`PrecisionAudit`.

    Raises:
        NumstabTypeError: ``model`` is not an ``nn.Module``.
        ModelError: the model has no parameters or no GEMM-like layer, or an operand already holds NaN/inf
            before any rounding (the model is unstable in its own precision: run :func:`numstab.diagnose`).
        UnknownNameError: an unknown recipe (the message lists the valid ones).
        BadInputError: NaN/inf in ``inputs``, or the forward pass failed.
    """
    _check_model(model)
    names = _recipe_names(recipes)
    layers = gemm_layers(model)
    if not layers:
        raise ModelError(
            f"model {type(model).__name__} has no GEMM-like layer ({GEMM_KINDS}): nothing in it would run in "
            "low precision; audit a model with one"
        )
    scale = None if loss_scale is None else check_positive("loss_scale", loss_scale)
    args, kwargs = as_call(inputs)
    check_inputs(model, args, kwargs)
    collector = _Collector(names, layers, scale)
    with preserved(model):
        with GemmCapture(model, layers, on_input=collector.on_input, on_grad=collector.on_grad) as capture:
            output = _forward(model, capture, args, kwargs)
            backward = _backward_to(_seed_loss(output, loss_fn, None, seed), capture.backward_targets())
        collector.measure_weights()
        collector.measure_held_grads()
    collector.check_finite()
    return collector.audit(backward=backward)


def _backward_to(loss: torch.Tensor, targets: list[torch.Tensor]) -> bool:
    """Run the backward pass down to ``targets`` (hooks see the output gradients); False when there is none.

    ``torch.autograd.grad`` computes only what the targets need: no parameter gradient, no ``.grad``
    written, and the returned gradients are dropped at once.
    """
    if not targets or not loss.requires_grad:
        return False
    try:
        torch.autograd.grad(loss, targets, allow_unused=True)
    except RuntimeError as err:
        raise ModelError(f"the backward pass failed: {str(err).splitlines()[0]}") from err
    return True


def _recipe_names(recipes: Sequence[str] | None) -> tuple[str, ...]:
    if recipes is None:
        return DEFAULT_RECIPES
    names = (recipes,) if isinstance(recipes, str) else tuple(recipes)
    if not names:
        raise InvalidArgumentError(
            f"recipes must name at least one recipe: use some of {', '.join(RECIPE_NAMES)}"
        )
    for name in names:
        if name not in RECIPE_NAMES:
            raise UnknownNameError("recipe", name, RECIPE_NAMES)
    return tuple(dict.fromkeys(names))


def dynamic_loss_scale(grad_amax: float) -> float:
    """The largest power of two :math:`S` with :math:`S \\cdot` ``grad_amax`` below float16's overflow.

    Examples:
        >>> dynamic_loss_scale(1.0), dynamic_loss_scale(65520.0 / 8)
        (32768.0, 4.0)
    """
    if grad_amax == 0 or not math.isfinite(grad_amax):
        return 1.0
    threshold = formats()["float16"].overflow_threshold
    k = math.floor(math.log2(threshold / grad_amax))
    while math.ldexp(grad_amax, k) >= threshold:
        k -= 1
    return math.ldexp(1.0, k)


@dataclass(frozen=True)
class _Operand:
    layer: str
    module: str
    tensor: str
    dim: int
    shape: tuple[int, ...]
    scale: float = 1.0


class _Collector:
    """Measures operands as the hooks hand them over, and assembles the audit."""

    def __init__(
        self, recipes: tuple[str, ...], layers: dict[str, GemmSpec], loss_scale: float | None
    ) -> None:
        self.recipes = recipes
        self.layers = layers
        self.loss_scale = loss_scale
        self.hold = "float16" in recipes and loss_scale is None  # float16 gradients wait for the scale
        self.measured: list[tuple[_Operand, dict[str, Measurement]]] = []
        self.held: list[tuple[_Operand, torch.Tensor]] = []
        self.called: set[str] = set()
        self.nonfinite: _Operand | None = None

    def on_input(self, call: str, module: str, x: torch.Tensor, dim: int) -> None:
        self.called.add(module)
        self._measure(_Operand(call, module, "input", dim % max(x.dim(), 1), tuple(x.shape)), x, self.recipes)

    def on_grad(self, call: str, module: str, g: torch.Tensor, dim: int) -> None:
        operand = _Operand(call, module, "grad_output", dim % max(g.dim(), 1), tuple(g.shape))
        if self.hold:  # measured once the loss scale is known (held: their memory is the forward's)
            self.held.append((operand, g))
        elif "float16" in self.recipes:
            scaled = _Operand(**{**asdict(operand), "scale": self.loss_scale})
            self._measure(scaled, g, self.recipes, prescale={"float16": self.loss_scale})
        else:
            self._measure(operand, g, self.recipes)

    def measure_weights(self) -> None:
        """Each called module's weight once (``MultiheadAttention.out_proj`` with its parent)."""
        for name, spec in self.layers.items():
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            if name in self.called or (not spec.called and parent in self.called):
                w = spec.weight.detach()
                operand = _Operand(name, name, "weight", spec.weight_dim, tuple(w.shape))
                self._measure(operand, w, self.recipes)

    def measure_held_grads(self) -> None:
        """The held output gradients (float16 under the dynamic loss scale), once every gradient is known."""
        if not self.held:
            self.loss_scale = self.loss_scale or 1.0
            return
        amax = max((float(g.abs().max()) for _, g in self.held if g.numel()), default=0.0)
        self.loss_scale = dynamic_loss_scale(amax)
        while self.held:
            operand, g = self.held.pop(0)
            scaled = _Operand(**{**asdict(operand), "scale": self.loss_scale})
            self._measure(scaled, g, self.recipes, prescale={"float16": self.loss_scale})

    def _measure(
        self,
        operand: _Operand,
        t: torch.Tensor,
        recipes: Sequence[str],
        prescale: dict[str, float] | None = None,
    ) -> None:
        if not recipes:
            return
        result = measure(t, recipes, dim=operand.dim, prescale=prescale)
        if math.isfinite(next(iter(result.values())).energy):
            self.measured.append((operand, result))
        elif self.nonfinite is None:
            self.nonfinite = operand  # raised after the pass: raised in a hook it would read as the model's

    def check_finite(self) -> None:
        """Raise when an operand held NaN/inf before any rounding (there is no rounding error to measure)."""
        if self.nonfinite is not None:
            raise ModelError(
                f"the {self.nonfinite.tensor} of layer '{self.nonfinite.layer}' holds NaN or inf before any "
                "rounding: the model is unstable in its own precision; run numstab.diagnose (numstab check) "
                "to find where"
            )

    def audit(self, *, backward: bool) -> PrecisionAudit:
        records = [self._record(op, m) for op, ms in self.measured for m in ms.values()]
        records.sort(key=self._order)
        modules = [n for n in self.layers if any(r.module == n for r in records)]
        return PrecisionAudit(
            records=tuple(records),
            layers=tuple(_judge(n, [r for r in records if r.module == n], self.recipes) for n in modules),
            recipes=self.recipes,
            loss_scale=float(self.loss_scale or 1.0),
            backward=backward,
            never_called=tuple(n for n in self.layers if n not in modules),
        )

    def _record(self, op: _Operand, m: Measurement) -> PrecisionRecord:
        overflow, underflow = m.fraction(m.overflow), m.fraction(m.underflow)
        return PrecisionRecord(
            layer=op.layer, module=op.module, kind=self.layers[op.module].kind, tensor=op.tensor,
            recipe=m.recipe, dim=op.dim, shape=op.shape, overflow=overflow, underflow=underflow,
            subnormal=m.fraction(m.subnormal), rel_mse=m.rel_mse, sqnr_db=m.sqnr_db,
            headroom_bits=m.headroom_bits, scale=op.scale if m.recipe == "float16" else 1.0,
            problem=rules.problem(m.recipe, overflow=overflow, underflow=underflow, rel_mse=m.rel_mse),
        )

    def _order(self, r: PrecisionRecord) -> tuple[int, str, int, int]:
        module = list(self.layers).index(r.module)
        return (module, r.layer, TENSORS.index(r.tensor), self.recipes.index(r.recipe))


def _judge(module: str, records: list[PrecisionRecord], recipes: tuple[str, ...]) -> LayerPrecision:
    """Which recipes every operand of ``module`` tolerates; keep it in high precision when no narrow one."""
    tolerated, problems, shortfall = [], [], {}
    for recipe in recipes:
        mine = [r for r in records if r.recipe == recipe]
        failing = [r for r in mine if r.problem is not None]
        shortfall[recipe] = max(rules.shortfall_db(recipe, r.rel_mse) for r in mine)
        if failing:
            worst = max(failing, key=lambda r: rules.severity(
                recipe, overflow=r.overflow, underflow=r.underflow, rel_mse=r.rel_mse))
            problems.append(f"{recipe}: {worst.tensor} of {worst.layer}: {worst.problem}")
        else:
            tolerated.append(recipe)
    narrow = [r for r in recipes if rules.is_low_precision(r)]
    keep = not any(r in tolerated for r in (narrow or recipes))
    return LayerPrecision(module, records[0].kind, tuple(tolerated), keep, tuple(problems), shortfall)
