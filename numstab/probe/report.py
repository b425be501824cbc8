"""The result of :func:`numstab.diagnose`: per-layer numbers, findings, a verdict, and the fix re-checked.

Data only: the report is drawn by :mod:`numstab.render.check`, reached through :mod:`numstab.display`
when a report is printed, written as HTML or shown in a notebook (this module never imports it).

Examples:
    >>> f = Finding("dead", "warning", ("2",), "half of layer 2's units are 0", "use leaky_relu")
    >>> f.to_dict()["kind"]
    'dead'
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from numstab import display, jsonio
from numstab._repr import short_repr
from numstab.errors import InvalidArgumentError, UnknownNameError
from numstab.instrument import Culprit

__all__ = [
    "LayerReport", "Finding", "Culprit", "NonfiniteOrigin", "Report", "FixComparison", "SEVERITIES", "KINDS"
]

#: Severities from most to least severe.
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")

#: Finding kinds, most to least severe at equal severity (the verdict's tie-break).
KINDS: tuple[str, ...] = ("nonfinite", "exploding", "vanishing", "out_of_range", "dead", "symmetric", "init")


@dataclass(frozen=True, repr=False)
class LayerReport:
    """The statistics of one call of one module.

    Forward statistics cover every floating-point tensor of the module's output; gradient statistics the
    gradients of the seed (loss) with respect to those tensors. All are over every element, in float64.

    Attributes:
        name: the module's name in ``model.named_modules()``; ``name#k`` for its k-th call.
        kind: the module's class name ("Linear", "ReLU", ...).
        activation_mean: mean of the output.
        activation_std: standard deviation of the output.
        grad_std: standard deviation of the gradient with respect to the output (None: no gradient
            reached it).
        weight_std: standard deviation of the module's main weight (None: no weight of its own).
        weight_grad_norm: Euclidean norm of the gradient of the module's own parameters (None: frozen or
            no parameters).
        dead_fraction: fraction of output units that are exactly 0 for the whole batch.
        duplicate_units: output units whose values over the batch, or whose weight rows, equal another
            unit's (the larger of the two counts; dead units skipped).
        out_of_range: ``{format: fraction}`` of output values that would overflow or flush to zero in
            each :func:`numstab.precision.formats` format (float16, bfloat16, float32, float64, float8_e4m3fn,
            float8_e5m2): its keys are ``formats()``'s.
        nonfinite: number of NaN/inf values in the output plus in its gradient.
        activation_second_moment: mean of the squared output, E[x²].
        activation_max_abs: largest |output|.
        grad_second_moment: E[g²] of the gradient with respect to the output.
        grad_max_abs: largest |gradient|.
        forward_nonfinite: non-finite values in the output.
        grad_nonfinite: non-finite values in the gradient.
        grad_out_of_range: like ``out_of_range``, for the gradient (float16 underflow is AMP's problem).
        headroom_log2: ``{format: log2(max / max |output|)}``: powers of two before overflow.
        grad_headroom_log2: the same for the gradient.
        units: number of output units (features, or channels for convolutions).
        numel: elements of the main (first floating-point) output tensor; layers with the first layer's
            numel form the network's trunk, over which the vanishing/exploding rules compare.
        fan_in, fan_out: fans of the main weight (None without one).
        bias_std: standard deviation of the module's bias (None without one).
        kaiming_ratio: weight_std / sqrt(2 / fan_in) (He et al. 2015).
        xavier_ratio: weight_std / sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010).
        weight_grad_ratio: weight_grad_norm / norm of the module's own parameters.
        theory_second_moment: mean-field prediction of E[x²] for a dense/conv layer fed by a registered
            activation of the previous dense/conv layer's output (None where the stack does not match).
        theory_grad_factor: predicted E[g_in²]/E[g_out²] across this layer and the activation before it.
        measured_grad_factor: the measured value of that ratio.
        weight_rms: root mean square of the main weight, sqrt(E[w²]) (0 for a zero-initialized weight;
            the gate's value for a layer-scale vector; γ's scale for a normalization layer).
        relative_grad: ||∇W|| / ||W|| of the main weight alone (None: no gradient, or W = 0): the
            relative change an SGD step of learning rate 1 makes to it.
        shared_with: the module that owns this layer's main weight when it is tied to an earlier
            module's (GPT-2's ``lm_head`` is ``transformer.wte``); such a layer is judged and fixed once,
            under that owner. None when the weight is its own.
        duplicate_weight_rows: rows of the main weight (one per output unit) equal to another row (zero
            rows skipped): the chapter's symmetry, in the weights themselves.
        lookup: the main weight is a lookup table (``nn.Embedding``): rows are read, never summed over.
        input_second_moment: E[x²] of the first floating-point input of a dense/conv or normalization call
            (what the layer really receives: in a residual network, the stream), None for other modules.
        feeds_norm: a dense/conv call whose output a normalization reads as it is, next (not added to a
            residual stream first): its scale is normalized away.
        running_stats: a BatchNorm in eval mode: it divides by its running statistics, a fixed affine map
            that does not reset the scale (with freshly initialized statistics, the identity).
    """

    name: str
    kind: str
    activation_mean: float
    activation_std: float
    grad_std: float | None
    weight_std: float | None
    weight_grad_norm: float | None
    dead_fraction: float
    duplicate_units: int
    out_of_range: dict[str, float]
    nonfinite: int
    activation_second_moment: float = 0.0
    activation_max_abs: float = 0.0
    grad_second_moment: float | None = None
    grad_max_abs: float | None = None
    forward_nonfinite: int = 0
    grad_nonfinite: int = 0
    grad_out_of_range: dict[str, float] = field(default_factory=dict)
    headroom_log2: dict[str, float] = field(default_factory=dict)
    grad_headroom_log2: dict[str, float] = field(default_factory=dict)
    units: int = 0
    numel: int = 0
    fan_in: int | None = None
    fan_out: int | None = None
    bias_std: float | None = None
    kaiming_ratio: float | None = None
    xavier_ratio: float | None = None
    weight_grad_ratio: float | None = None
    theory_second_moment: float | None = None
    theory_grad_factor: float | None = None
    measured_grad_factor: float | None = None
    weight_rms: float | None = None
    relative_grad: float | None = None
    shared_with: str | None = None
    duplicate_weight_rows: int = 0
    lookup: bool = False
    input_second_moment: float | None = None
    running_stats: bool = False
    feeds_norm: bool = False

    def __repr__(self) -> str:
        return (
            f"LayerReport(name={self.name!r}, kind={self.kind!r}, activation_std={self.activation_std:.4g}, "
            f"grad_std={'None' if self.grad_std is None else format(self.grad_std, '.4g')}, "
            f"nonfinite={self.nonfinite})"
        )

    @property
    def module_name(self) -> str:
        """The name without the ``#k`` call suffix."""
        return self.name.split("#", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain Python values."""
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    """One problem the rules found, with its evidence and the fix.

    Attributes:
        kind: "nonfinite", "exploding", "vanishing", "out_of_range", "dead", "symmetric" or "init".
        severity: "error", "warning" or "info".
        layers: the names of the layers concerned, in forward order.
        message: the evidence and the cause, in the chapter's terms.
        fix: a concrete change, e.g. ``report.with_fix('rescale', factor=0.5)``.
        scheme: the fix as ``Report.with_fix(scheme, **options)`` takes it, when one applies (None: the
            fix is not an initialization, or none was found that the re-check calls healthy). Every
            scheme :func:`numstab.diagnose` offers has been applied to a copy and re-checked healthy.
        options: the keyword arguments of that ``with_fix`` call.
    """

    kind: str
    severity: str
    layers: tuple[str, ...]
    message: str
    fix: str
    scheme: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain Python values."""
        return {**asdict(self), "layers": list(self.layers), "options": dict(self.options)}


#: The old name of :class:`numstab.instrument.Culprit`, the one result type of "where the first NaN/inf
#: appeared" (``Report.first_nonfinite`` and ``locate_nonfinite`` both return it).
NonfiniteOrigin = Culprit


@dataclass(frozen=True, repr=False)
class Report(display.Displayed):
    """Per-layer statistics of one forward and backward pass, the findings and the verdict.

    Printing it in a rich console shows a table; in a notebook it shows as HTML.

    Attributes:
        layers: one :class:`LayerReport` per module call, in the order the calls finished.
        findings: the problems found, most severe first.
        verdict: the most severe warning or error's kind; "healthy" when every finding is info (or none).
        input_second_moment: E[x²] over the floating-point inputs.
        loss: the value of the backward seed (None when there was no backward pass).
        first_nonfinite: where the first NaN/inf appeared (the :class:`numstab.instrument.Culprit` that
            :func:`numstab.monitor.locate_nonfinite` would name for the same batch), or None.
        backward: whether a backward pass ran (False when no parameter requires grad).
        seed: seed of the random unit-variance backward vector used when ``loss_fn`` is None.
        never_called: modules owning parameters whose forward never ran (weights used directly).
        forward_gain_log2: log2 E[x_L²] / E[x_0²], the trunk's last output against the inputs
            (:func:`numstab.probe.rules.forward_gain_log2`; None where undefined).
        backward_gain_log2: log2 E[g_first²] / E[g_last²], the gradient at the first layer against the
            last (:func:`numstab.probe.rules.backward_gain_log2`; None where undefined).
        compiled: the model was a ``torch.compile``'d module; its original module was measured eagerly.

    Examples:
        >>> import json, torch
        >>> from numstab.probe import diagnose
        >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU())
        >>> torch.nn.init.normal_(net[0].weight, std=3.0, generator=torch.Generator().manual_seed(0))
        ... # doctest: +ELLIPSIS
        Parameter containing:...
        >>> report = diagnose(net, torch.ones(16, 8))
        >>> json.loads(report.to_json())["verdict"] == report.verdict
        True
        >>> comparison = report.with_fix("kaiming_normal", generator=torch.Generator().manual_seed(1))
        >>> comparison.after.verdict
        'healthy'
    """

    layers: list[LayerReport]
    findings: list[Finding]
    verdict: str
    input_second_moment: float
    loss: float | None = None
    first_nonfinite: Culprit | None = None
    backward: bool = True
    seed: int = 0
    never_called: list[str] = field(default_factory=list)
    forward_gain_log2: float | None = None
    backward_gain_log2: float | None = None
    compiled: bool = False
    _recheck: Any = field(default=None, repr=False, compare=False)

    def layer(self, name: str) -> LayerReport:
        """The layer report called ``name``.

        Raises:
            UnknownNameError: no such layer (the message lists the names).
        """
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownNameError("layer", name, [la.name for la in self.layers])

    @property
    def worst_severity(self) -> str | None:
        """The most severe finding's severity ("error", "warning", "info"), None without findings."""
        return next((s for s in SEVERITIES if any(f.severity == s for f in self.findings)), None)

    def flags(self) -> dict[str, str]:
        """``{layer name: kind}`` of the most severe finding naming each layer (layers with none left out).

        Examples:
            >>> f = Finding("dead", "warning", ("2",), "half of layer 2's units are 0", "use leaky_relu")
            >>> Report([], [f], "dead", 1.0).flags()
            {'2': 'dead'}
        """
        flags: dict[str, str] = {}
        for finding in self.findings:  # most severe first: the first flag a layer gets stays
            for name in finding.layers:
                flags.setdefault(name, finding.kind)
        return flags

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain Python values (``verdict`` first)."""
        out: dict[str, Any] = {"verdict": self.verdict}
        for f in fields(self):
            if not f.name.startswith("_") and f.name != "verdict":
                value = getattr(self, f.name)
                out[f.name] = _plain(value)
        return out

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Return the JSON document (schema ``numstab.report/1``, kind "check"); also write it to ``path``.

        Non-finite numbers are written as the strings "inf", "-inf", "nan" (see :mod:`numstab.jsonio`).
        """
        if path is not None:
            jsonio.dump("check", self.to_dict(), path)
        return jsonio.dumps("check", self.to_dict())

    def to_html(self, path: str | os.PathLike) -> pathlib.Path:
        """Write a self-contained HTML page of the report and return its path."""
        return display.write_html(self, path)

    def with_fix(self, scheme: str, **init_options: Any) -> FixComparison:
        """Apply a fix to a deep copy of the model and re-check it with the same inputs, loss and seed.

        ``scheme`` is an initialization scheme of :func:`numstab.init.apply_` ("kaiming_normal", ...),
        applied by ``apply_(copy, scheme, **init_options)`` (``layers=`` restricts it to those modules),
        or ``"rescale"``: every weight of two or more dimensions (tied ones once) multiplied by
        ``factor=``, which keeps every deliberate ratio between layers (GPT-2's residual projections,
        T5's query scale, a zero head) and corrects a model whose weights are all out of scale by one
        factor; ``layers=`` restricts it too. The fix each finding offers is its ``scheme`` and ``options``.

        The model is not changed. The report does not hold the model: this works while the model is alive
        (and not on a report unpickled or read from JSON). The copy is diagnosed with the same inputs, loss
        and seed, and its new
        weights are drawn from a ``torch.Generator`` seeded with the report's seed (the global RNG is not
        used), so the same report gives the same fix every time. ``apply_`` decides what the fix touches:
        every Linear, Conv, ConvTranspose and HF ``Conv1D`` along its own fan layout, each tied parameter
        once under its first owner (GPT-2's ``lm_head`` stays the token embedding, which is left alone).

        Args:
            scheme: an :func:`numstab.init.apply_` scheme or ``"rescale"``.
            **init_options: passed on to ``apply_`` (``activation=``, ``generator=``, ...); ``factor=``
                for ``"rescale"``; ``layers=`` for either.

        Returns:
            A :class:`FixComparison` with the report before and after, and the fixed copy.

        Raises:
            ModelError: the scheme applies to no layer of the model (the message names it); everything
                ``apply_`` raises for a bad option.
            InvalidArgumentError: ``"rescale"`` without a positive finite ``factor=``.

        Examples:
            >>> import torch
            >>> from numstab.probe import diagnose
            >>> net = torch.nn.Sequential(*[torch.nn.Linear(16, 16) for _ in range(12)])
            >>> for layer in net:
            ...     _ = torch.nn.init.normal_(layer.weight, generator=torch.Generator().manual_seed(0))
            >>> report = diagnose(net, torch.randn(8, 16, generator=torch.Generator().manual_seed(0)))
            >>> finding = report.findings[0]
            >>> finding.kind, finding.scheme
            ('exploding', 'rescale')
            >>> report.with_fix(finding.scheme, **finding.options).after.verdict
            'healthy'
        """
        if self._recheck is None:
            raise InvalidArgumentError(
                "with_fix needs the model this report came from: call it on a report returned by "
                "numstab.diagnose, not on one read back from JSON or unpickled"
            )
        fixed, after = self._recheck(scheme, init_options)
        return FixComparison(scheme, self, after, model=fixed, options=dict(init_options))

    __repr__ = short_repr

    def __rich__(self) -> Any:
        return display.rich(self)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the data only: the link back to the model (for :meth:`with_fix`) stays behind."""
        return {**self.__dict__, "_recheck": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


@dataclass(frozen=True, repr=False)
class FixComparison(display.Displayed):
    """A report before and after an initialization fix applied to a copy of the model.

    Attributes:
        scheme: the scheme applied with :func:`numstab.init.apply_`.
        before: the report of the model as given.
        after: the report of the fixed copy.
        model: the fixed copy itself (None for a comparison built by hand); not part of ``to_dict``.
        options: the keyword arguments given with the scheme (``factor=``, ``layers=``, ...).
    """

    scheme: str
    before: Report
    after: Report
    model: Any = field(default=None, repr=False, compare=False)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def call(self) -> str:
        """The fix as code: ``report.with_fix('rescale', factor=0.5)``."""
        args = "".join(f", {k}={v!r}" for k, v in self.options.items() if k not in ("generator", "seed"))
        return f"report.with_fix({self.scheme!r}{args})"

    @property
    def improved(self) -> bool:
        """True when the fixed copy has fewer errors and warnings than the original."""
        return _weight(self.after) < _weight(self.before)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as plain Python values."""
        options = {k: v for k, v in self.options.items() if k != "generator"}
        return {"scheme": self.scheme, "options": options, "before": self.before.to_dict(),
                "after": self.after.to_dict()}

    __repr__ = short_repr

    def __rich__(self) -> Any:
        return display.rich(self)


def _weight(report: Report) -> tuple[int, int]:
    errors = sum(f.severity == "error" for f in report.findings)
    return errors, sum(f.severity == "warning" for f in report.findings)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value
