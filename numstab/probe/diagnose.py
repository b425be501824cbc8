"""``numstab.diagnose``: one forward and one backward pass of a model with hooks, then verdicts and fixes.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(32, 32), nn.Sigmoid())])
    >>> report = diagnose(net, torch.randn(64, 32, generator=g))
    >>> report.verdict
    'vanishing'
    >>> report.findings[0].fix.startswith("replace the saturating activation by tanh")
    True
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from numstab import layers as layers_of
from numstab.errors import BadInputError, InvalidArgumentError, ModelError, NumstabError, NumstabTypeError
from numstab.instrument import ROOT, Culprit, find_origin, float_tensors, preserved, unwrap_compiled
from numstab.instrument.inputs import as_call, check_inputs, check_loss
from numstab.instrument.origin import LOSS
from numstab.probe import analytic, rules
from numstab.probe.hooks import CallRecord, Capture, measured_modules
from numstab.probe.inputs import InputMoments
from numstab.probe.report import Finding, LayerReport, Report
from numstab.probe.stats import TensorStats, duplicate_rows, merge, norm, summarize

__all__ = ["diagnose", "DEFAULT_SEED"]

#: Seed of the unit-variance backward vector used when no ``loss_fn`` is given.
DEFAULT_SEED = 0


def diagnose(
    model: nn.Module,
    inputs: Any,
    *,
    loss_fn: Callable[..., torch.Tensor] | None = None,
    target: Any = None,
    seed: int = DEFAULT_SEED,
) -> Report:
    """Run one forward and backward pass of ``model`` with hooks; return per-layer statistics and verdicts.

    Every module that owns parameters and every activation module is measured; a module called twice is
    reported twice (``name`` and ``name#2``). Statistics are over all elements, accumulated in float64
    so that a gradient of 1e-30 reads 1e-30 and a finite 1e25 is never called non-finite. Then the
    rules of :mod:`numstab.probe.rules` (documented thresholds) turn the numbers into findings with a fix.

    The backward seed is ``loss_fn(output)`` (``loss_fn(output, target)`` when ``target`` is given).
    Without ``loss_fn`` it is :math:`\\sum_i r_i \\cdot y_i` over every floating-point output tensor
    ``y`` with :math:`r \\sim N(0, 1)` drawn from a ``torch.Generator`` seeded with ``seed``, so the
    gradient at the output is a unit-variance random vector (as in Schoenholz et al. 2017's backward
    analysis) and the global RNG is not touched.

    The model is left exactly as found (:func:`numstab.instrument.preserved`): it runs in its current
    train/eval mode, and the global RNG (dropout draws), buffers (BatchNorm running statistics, buffers a
    module rebinds) and parameters that forward writes (``nn.Embedding(max_norm=...)``) are restored bit for
    bit; gradients are taken with ``torch.autograd.grad``, so ``.grad`` is untouched; every hook is
    removed in a ``finally``, also when the model raises.

    When the pass saw a NaN/inf anywhere, the batch is replayed once by
    :func:`numstab.instrument.find_origin`, the rule :func:`numstab.monitor.locate_nonfinite` uses, and
    ``Report.first_nonfinite`` is its :class:`numstab.instrument.Culprit`.

    A ``torch.compile``'d module is measured through its original module, eagerly (hooks do not run in a
    compiled graph); ``Report.compiled`` says so and the names carry no ``_orig_mod.``.

    Args:
        model: the network, as initialized or trained.
        inputs: a tensor (``model(inputs)``), a tuple or list (``model(*inputs)``) or a dict
            (``model(**inputs)``).
        loss_fn: the loss; None for the random unit-variance seed.
        target: second argument of ``loss_fn``.
        seed: seed of the random backward vector.

    Returns:
        A :class:`numstab.probe.report.Report`.

    Raises:
        NumstabTypeError: ``model`` is not an ``nn.Module``.
        ModelError: the model has no parameters, or its output holds no floating-point tensor and no
            ``loss_fn`` was given.
        BadInputError: NaN/inf already in ``inputs`` (bad data, not instability), an empty batch, or the
            forward pass failed (the message names the module where it failed).
        InvalidArgumentError: ``target`` without ``loss_fn``; ``inputs`` that do not fit the model's
            ``forward`` (pass a dict for keyword arguments); a loss that is not a scalar float tensor.
        ModelError: no measured module ran (a report that measured no layer is no verdict).

    Examples:
        >>> net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
        >>> r = diagnose(net, torch.randn(16, 8, generator=torch.Generator().manual_seed(0)))
        >>> [layer.name for layer in r.layers], r.verdict
        (['0', '1', '2'], 'healthy')
    """
    return _diagnose(model, inputs, loss_fn=loss_fn, target=target, seed=seed, verify=True)


def _diagnose(
    model: nn.Module,
    inputs: Any,
    *,
    loss_fn: Callable[..., torch.Tensor] | None,
    target: Any,
    seed: int,
    verify: bool,
) -> Report:
    model, compiled = unwrap_compiled(model)
    _check_model(model)
    args, kwargs = as_call(inputs)
    check_inputs(model, args, kwargs)
    if target is not None and loss_fn is None:
        raise InvalidArgumentError(
            "target= was given without loss_fn=: diagnose calls loss_fn(output, target); pass the loss "
            "(e.g. loss_fn=torch.nn.functional.cross_entropy) or drop target"
        )
    with preserved(model):
        capture = Capture(model)
        with capture, InputMoments(model) as moments:
            output = _forward(model, capture, args, kwargs)
            loss = _seed_loss(output, loss_fn, target, seed)
            grad_norms = _backward(model, loss)
    if not capture.records:
        raise ModelError(
            f"diagnose measured no layer of {type(model).__name__}: none of its modules that own parameters "
            "ran a forward (weights used directly?); call it on the module whose forward runs its layers"
        )
    origin = None
    if _saw_nonfinite(capture, grad_norms, loss):
        with preserved(model):  # same RNG state as the pass above: the replay sees the same dropout masks
            origin = find_origin(
                model, lambda: model(*args, **kwargs), lambda out: _seed_loss(out, loss_fn, target, seed)
            ) or _unreproduced_origin(capture, loss)
    given = loss_fn is not None
    report = _build(
        model, capture, grad_norms, loss, origin, inputs=(args, kwargs), loss_given=given,
        input_moments=moments,
    )
    report = replace(report, compiled=compiled)
    return _with_recheck(report, model, inputs, loss_fn, target, seed, verify=verify)


def _unreproduced_origin(capture: Capture, loss: torch.Tensor) -> Culprit:
    """Where the pass itself first saw a NaN/inf when the replay did not see it again (a non-deterministic
    model): the first output, else the loss, else the last gradient in forward order (first in backward)."""
    for r in capture.records:
        if r.forward and r.forward.nonfinite:
            return Culprit(r.name, "forward")
    if not math.isfinite(float(loss.detach())):
        return Culprit(LOSS, "forward")
    bad = [r.name for r in capture.records if r.grad and r.grad.nonfinite]
    return Culprit(bad[-1] if bad else LOSS, "backward")


def _saw_nonfinite(
    capture: Capture, grad_norms: dict[nn.Parameter, float] | None, loss: torch.Tensor
) -> bool:
    """True when any output, output gradient, parameter gradient or the loss was NaN/inf."""
    if not math.isfinite(float(loss.detach())):
        return True
    if any(not math.isfinite(n) for n in (grad_norms or {}).values()):
        return True
    return any(r.forward and r.forward.nonfinite or r.grad and r.grad.nonfinite for r in capture.records)


# -- input checks ------------------------------------------------------------------------------------


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        got = type(model).__name__
        raise NumstabTypeError(f"model must be a torch.nn.Module, got {got}: pass the network itself")
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        raise ModelError(
            f"model {type(model).__name__} has parameters on the meta device (shapes, no values): there is "
            "nothing to measure; materialize it first (model.to_empty(device='cpu') and initialize, or build "
            "it outside torch.device('meta'))"
        )
    if next(model.parameters(), None) is None:
        raise ModelError(
            f"model {type(model).__name__} has no parameters: there is no initialization to diagnose; "
            "pass the network that owns the weights"
        )
    if torch.distributed.is_available():  # FSDP2 / tensor parallel: each rank holds shards, not the model
        from torch.distributed.tensor import DTensor

        if any(isinstance(p, DTensor) for p in model.parameters()):
            raise ModelError(
                f"model {type(model).__name__} is sharded (DTensor parameters, e.g. FSDP2 fully_shard): "
                "diagnose measures one whole model in one process; run it on the model before sharding it "
                "(same init, one rank), and use GradientMonitor during sharded training"
            )


# -- the pass ----------------------------------------------------------------------------------------


def _forward(model: nn.Module, capture: Capture, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return model(*args, **kwargs)
    except Exception as err:
        where = capture.stack[-1].partition("#")[0] if capture.stack else ROOT
        module = model if where == ROOT else model.get_submodule(where)
        shapes = [tuple(t.shape) for t in float_tensors((args, kwargs))] or "no floating-point tensors"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        shown = where if where != ROOT else "(the model itself)"
        raise BadInputError(
            f"the forward pass failed in module '{shown}' ({type(module).__name__}): "
            f"{type(err).__name__}: {first}; check that the inputs (shapes {shapes}) match what the model "
            "expects"
        ) from err


def _seed_loss(output: Any, loss_fn: Callable[..., Any] | None, target: Any, seed: int) -> torch.Tensor:
    if loss_fn is not None:
        return _user_loss(output, loss_fn, target)
    outs = list(float_tensors(output))
    if not outs:
        raise ModelError(
            f"the model's output ({type(output).__name__}) holds no floating-point tensor: pass loss_fn= "
            "that turns it into a scalar loss"
        )
    total = outs[0].new_zeros(())
    for t in outs:
        gen = torch.Generator(device=t.device).manual_seed(seed)
        r = torch.randn(t.shape, generator=gen, device=t.device, dtype=t.dtype)
        total = total + (t * r).sum()
    return total


def _user_loss(output: Any, loss_fn: Callable[..., Any], target: Any) -> torch.Tensor:
    return check_loss(loss_fn(output) if target is None else loss_fn(output, target))


def _backward(model: nn.Module, loss: torch.Tensor) -> dict[nn.Parameter, float] | None:
    """Gradient norms of every trainable parameter; None: no backward pass.

    ``torch.autograd.grad`` runs the pass, so ``.grad`` is untouched. A hook on each parameter reduces
    its (total, over all uses) gradient to a float64 norm as soon as it is computed and hands autograd a
    stride-0 zero instead, so no parameter-sized gradient outlives its hook.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None
    if not loss.requires_grad:
        raise ModelError(
            f"the loss does not depend on any of the model's {len(params)} trainable parameter(s) through "
            "autograd (an output detached or computed under torch.no_grad, frozen layers only, or a loss_fn "
            "that leaves the graph with .item()/.detach()), so there is no gradient to measure: keep the "
            "forward and loss_fn differentiable, or freeze every parameter (requires_grad_(False)) for a "
            "forward-only check"
        )
    norms: dict[nn.Parameter, float] = {}
    handles = [p.register_hook(_reduce_to_norm(norms, p)) for p in params]
    try:
        torch.autograd.grad(loss, params, allow_unused=True)
    except RuntimeError as err:
        raise ModelError(f"the backward pass failed: {str(err).splitlines()[0]}") from err
    finally:
        for handle in handles:
            handle.remove()
    return norms


def _reduce_to_norm(norms: dict[nn.Parameter, float], p: nn.Parameter) -> Callable[..., torch.Tensor]:
    def hook(grad: torch.Tensor) -> torch.Tensor:
        norms[p] = norm(grad)
        return torch.zeros((), dtype=grad.dtype, device=grad.device).expand_as(grad)

    return hook


# -- assembling the report ---------------------------------------------------------------------------


def _build(
    model: nn.Module,
    capture: Capture,
    grad_norms: dict[nn.Parameter, float] | None,
    loss: torch.Tensor,
    origin: Culprit | None,
    *,
    inputs: tuple[tuple[Any, ...], dict[str, Any]],
    loss_given: bool,
    input_moments: InputMoments,
) -> Report:
    modules = {n: m for m, n in measured_modules(model).items()}
    owners = layers_of.owners(model)
    layers = [_layer_report(r, modules[r.module_name], grad_norms, owners) for r in capture.records]
    layers = [replace(la, input_second_moment=input_moments.values.get(la.name),
                      feeds_norm=la.name in input_moments.feeds_norm) for la in layers]
    acts = {r.name: act for r in capture.records if (act := analytic.activation_of(modules[r.module_name]))}
    layers = analytic.annotate(layers, acts)
    q0 = _input_second_moment(inputs, layers)
    loss_value = float(loss.detach()) if grad_norms is not None or loss_given else None
    findings = rules.evaluate(layers, input_second_moment=q0, first_nonfinite=origin)
    return Report(
        layers=layers,
        findings=findings,
        verdict=rules.verdict(findings),
        input_second_moment=q0,
        loss=loss_value,
        first_nonfinite=origin,
        backward=grad_norms is not None,
        never_called=capture.never_called,
        forward_gain_log2=rules.forward_gain_log2(layers, q0),
        backward_gain_log2=rules.backward_gain_log2(layers),
    )


def _input_second_moment(inputs: Any, layers: Sequence[LayerReport]) -> float:
    """E[x²] over the floating-point inputs; for integer inputs (token ids), the first layer's output."""
    stats: TensorStats | None = None
    for t in float_tensors(inputs):
        s = summarize(t)
        stats = merge(stats, s)
    if stats is not None:
        return stats.second_moment
    return layers[0].activation_second_moment if layers else math.nan


def _layer_report(
    record: CallRecord,
    module: nn.Module,
    grad_norms: dict[nn.Parameter, float] | None,
    owners: dict[int, str],
) -> LayerReport:
    fwd = record.forward or summarize(torch.zeros(0))
    grad = record.grad
    weight = _main_weight(module)
    wstats = _weight_fields(module, weight)
    dup_w = _duplicate_weight_rows(module, weight)
    grad_norm = _own_grad_norm(module, grad_norms)
    weight_norm = norm(weight) if weight is not None else None
    owner = owners.get(id(weight), record.module_name) if weight is not None else record.module_name
    return LayerReport(
        name=record.name,
        kind=record.kind,
        activation_mean=fwd.mean,
        activation_std=fwd.std,
        grad_std=None if grad is None else grad.std,
        weight_std=wstats.get("weight_std"),
        weight_grad_norm=grad_norm,
        dead_fraction=record.dead_fraction,
        duplicate_units=max(record.duplicate_units, dup_w),
        out_of_range=fwd.out_of_range,
        nonfinite=fwd.nonfinite + (grad.nonfinite if grad else 0),
        activation_second_moment=fwd.second_moment,
        activation_max_abs=fwd.max_abs,
        grad_second_moment=None if grad is None else grad.second_moment,
        grad_max_abs=None if grad is None else grad.max_abs,
        forward_nonfinite=fwd.nonfinite,
        grad_nonfinite=grad.nonfinite if grad else 0,
        grad_out_of_range=grad.out_of_range if grad else {},
        headroom_log2=fwd.headroom_log2,
        grad_headroom_log2=grad.headroom_log2 if grad else {},
        units=record.units,
        numel=record.numel,
        weight_grad_ratio=_ratio(grad_norm, _own_norm(module)),
        weight_rms=_ratio(weight_norm, math.sqrt(weight.numel())) if weight is not None else None,
        relative_grad=_ratio((grad_norms or {}).get(weight) if weight is not None else None, weight_norm),
        shared_with=owner if owner != record.module_name else None,
        duplicate_weight_rows=dup_w,
        lookup=isinstance(module, (nn.Embedding, nn.EmbeddingBag)),
        running_stats=_uses_running_stats(module),
        **{k: v for k, v in wstats.items() if k != "weight_std"},
    )


def _uses_running_stats(module: nn.Module) -> bool:
    """A BatchNorm (torch's, or any module with running_mean/running_var buffers) in eval mode."""
    stats = (getattr(module, "running_mean", None), getattr(module, "running_var", None))
    return all(isinstance(t, torch.Tensor) for t in stats) and not module.training


def _duplicate_weight_rows(module: nn.Module, weight: torch.Tensor | None) -> int:
    """Output units whose weight row equals another's; HF ``Conv1D`` stores its weight (in, out)."""
    if weight is None or weight.dim() < 2 or weight is not getattr(module, "weight", None):
        return 0
    w = weight.detach()
    return duplicate_rows(w.t() if layers_of.is_hf_conv1d(module) else w.flatten(1))


def _main_weight(module: nn.Module) -> torch.Tensor | None:
    """``module.weight`` if it is a parameter, else its first parameter of >= 2 dims, else its first one."""
    own = list(module.parameters(recurse=False))
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and any(weight is p for p in own):
        return weight
    return next((p for p in own if p.dim() >= 2), own[0] if own else None)


def _weight_fields(module: nn.Module, weight: torch.Tensor | None) -> dict[str, Any]:
    if weight is None:
        return {}
    fields: dict[str, Any] = {"weight_std": _std(weight)}
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor) and bias.is_floating_point():
        fields["bias_std"] = _std(bias)
    experts = layers_of.expert_weights(module)
    if experts or _is_matrix(weight) and weight is getattr(module, "weight", None):  # not ViT's cls_token
        matrix = experts[0][0] if experts else weight  # one expert's (out, in) matrix
        fan_in, fan_out = layers_of.fans(matrix, transposed=layers_of.is_hf_conv1d(module))
        fields.update(
            fan_in=fan_in,
            fan_out=fan_out,
            kaiming_ratio=fields["weight_std"] / math.sqrt(2.0 / fan_in),
            xavier_ratio=fields["weight_std"] / math.sqrt(2.0 / (fan_in + fan_out)),
        )
    return fields


def _is_matrix(weight: torch.Tensor) -> bool:
    """A dense/conv weight: >= 2 dimensions, and not a vector stored as (1, 1, ..., C) (ConvNeXt-V2's GRN
    γ and β), which scales channels and has no fan."""
    return weight.dim() >= 2 and not (weight.dim() > 2 and weight.shape[0] == weight.shape[1] == 1)


def _own_grad_norm(module: nn.Module, grad_norms: dict[nn.Parameter, float] | None) -> float | None:
    if grad_norms is None:
        return None
    own = [grad_norms[p] for p in module.parameters(recurse=False) if p in grad_norms]
    return math.sqrt(sum(n * n for n in own)) if own else None


def _own_norm(module: nn.Module) -> float | None:
    own = list(module.parameters(recurse=False))
    return _norm(own) if own else None


def _std(t: torch.Tensor) -> float:
    """Population std of a parameter, accumulated in float64 without a float64 copy (:func:`summarize`)."""
    return summarize(t).std


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    """Euclidean norm of all entries of several tensors, exact at the extremes (:func:`stats.norm`)."""
    return math.sqrt(sum(norm(t) ** 2 for t in tensors))


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return num / den


# -- re-checking with a fix --------------------------------------------------------------------------


def _with_recheck(
    report: Report,
    model: nn.Module,
    inputs: Any,
    loss_fn: Callable[..., Any] | None,
    target: Any,
    seed: int,
    *,
    verify: bool,
) -> Report:
    """Attach the re-check ``with_fix`` runs; with ``verify``, keep only the fixes it calls healthy.

    Every finding's ``scheme`` is applied to a copy and the copy diagnosed; a fix whose after-report
    still has a warning or an error is withdrawn (:func:`numstab.probe.rules.withdrawn`): a fix that
    does not change the verdict is not offered. This costs one pass per offered fix, and only on a model
    with findings.
    """
    recheck = _Recheck(model, (inputs, loss_fn, target), seed)
    report = replace(report, _recheck=recheck, seed=seed)
    if not verify or not any(f.scheme for f in report.findings):
        return report
    checked: dict[str, dict[str, Any] | None] = {}  # the options that heal, per offered fix
    findings = []
    for f in report.findings:
        key = repr((f.scheme, sorted(f.options.items())))
        if f.scheme and key not in checked:
            checked[key] = _verified(recheck, f.scheme, f.options)
        if not f.scheme:
            findings.append(f)
        else:
            healed = checked[key]
            findings.append(rules.withdrawn(f) if healed is None else _with_options(f, healed))
    return replace(report, findings=findings)


#: Re-checks a whole-model rescale may take to find its factor (each one a diagnose pass of a copy).
_RESCALE_TRIES = 3


def _verified(
    recheck: Callable[..., tuple[nn.Module, Report]], scheme: str, offered: dict[str, Any]
) -> dict[str, Any] | None:
    """The options of ``scheme`` that make the copy healthy, or None (also when the fix cannot apply).

    A whole-model ``rescale`` whose copy still shows the same kind is refined from that copy's own
    finding, the factors multiplied, up to :data:`_RESCALE_TRIES` passes: the first factor assumes the
    k layers of a segment are in series, and in a parallel block (Phi's attention beside its MLP) they
    are not, so it undershoots.
    """
    options = dict(offered)
    for _ in range(_RESCALE_TRIES if scheme == "rescale" and "layers" not in options else 1):
        try:
            after = recheck(scheme, options)[1]
        except NumstabError:  # e.g. the scheme has no layer it can initialize here
            return None
        if after.verdict == "healthy":
            return options
        again = next((f for f in after.findings if f.severity != "info"), None)
        if again is None or again.scheme != "rescale" or "layers" in again.options:
            return None
        options = {"factor": float(f"{options['factor'] * again.options['factor']:.3g}")}
    return None


def _with_options(finding: Finding, options: dict[str, Any]) -> Finding:
    """``finding`` offering ``options``, its fix text quoting the refined factor."""
    if options == finding.options:
        return finding
    old, new = f"factor={finding.options['factor']:.3g}", f"factor={options['factor']:.3g}"
    return replace(finding, fix=finding.fix.replace(old, new), options=options)


#: What a re-check needs besides the model (inputs, loss_fn, target), per model and per report. Neither the
#: report nor this table holds the model: an entry lives while its model (a weak key) and its report (whose
#: :class:`_Recheck` removes it when collected) both do.
_SOURCES: weakref.WeakKeyDictionary[nn.Module, dict[int, tuple[Any, Any, Any]]] = weakref.WeakKeyDictionary()


class _Recheck:
    """``Report._recheck``: applies a fix to a copy of the report's model and diagnoses the copy.

    It holds a weak reference to the model and a key into :data:`_SOURCES` for the inputs, so a report
    does not keep the model (or its batch) alive, and a report pickles (its ``_recheck`` is dropped).
    """

    def __init__(self, model: nn.Module, source: tuple[Any, Any, Any], seed: int) -> None:
        self._model = weakref.ref(model)
        self._seed = seed
        _SOURCES.setdefault(model, {})[id(self)] = source
        weakref.finalize(self, _forget, weakref.ref(model), id(self))

    def __call__(self, scheme: str, options: dict[str, Any]) -> tuple[nn.Module, Report]:
        model = self._model()
        source = None if model is None else _SOURCES.get(model, {}).get(id(self))
        if model is None or source is None:
            raise InvalidArgumentError(
                "with_fix needs the model this report came from, and it has been garbage-collected (a report "
                "holds only a weak reference to it): keep the model in a variable (model = build(); report = "
                "numstab.diagnose(model, inputs)) and call with_fix while it lives"
            )
        inputs, loss_fn, target = source
        fixed = _fixed_copy(model, scheme, options, self._seed)
        return fixed, _diagnose(fixed, inputs, loss_fn=loss_fn, target=target, seed=self._seed, verify=False)


def _forget(model_ref: weakref.ref[nn.Module], key: int) -> None:
    model = model_ref()
    if model is not None:
        sources = _SOURCES.get(model, {})
        sources.pop(key, None)
        if not sources:
            _SOURCES.pop(model, None)


def _fixed_copy(model: nn.Module, scheme: str, options: dict[str, Any], seed: int) -> nn.Module:
    """A deep copy of ``model`` with the fix applied (``layers=`` restricts it to those modules)."""
    import copy

    from numstab.init import apply_

    options = dict(options)
    fixed = copy.deepcopy(model)
    if scheme == "rescale":
        names = options.pop("layers", None)
        _rescale([fixed] if names is None else [_submodule(fixed, name) for name in names], options)
        return fixed
    # the new weights come from a generator seeded like the report: the same fix every time, and the
    # global RNG untouched (unless the caller passes generator= or seed=); apply_ knows HF Conv1D and
    # initializes a tied parameter once, under its first owner, so the copy's ties hold
    if "seed" not in options:
        options = {"generator": torch.Generator().manual_seed(seed), **options}
    return apply_(fixed, scheme, **options)


def _submodule(model: nn.Module, name: str) -> nn.Module:
    from numstab.errors import UnknownNameError

    module_name = name.split("#", 1)[0]
    if module_name == ROOT:  # the model itself is the layer
        return model
    try:
        return model.get_submodule(module_name)
    except AttributeError:
        raise UnknownNameError("layer", name, [n for n, _ in model.named_modules() if n]) from None


def _rescale(targets: Sequence[nn.Module], options: dict[str, Any]) -> None:
    """Multiply every weight of >= 2 dimensions under ``targets`` by ``factor`` (a tied one once)."""
    factor = options.pop("factor", None)
    if options or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
        raise InvalidArgumentError(
            "scheme='rescale' takes factor= (a positive finite number) and layers= only, got "
            f"factor={factor!r}"
            f"{' and ' + ', '.join(sorted(options)) if options else ''}: e.g. with_fix('rescale', factor=0.5)"
        )
    seen: set[int] = set()
    with torch.no_grad():
        for target in targets:
            for module in target.modules():
                weight = getattr(module, "weight", None)
                matrices = [weight] if isinstance(weight, torch.Tensor) and _is_matrix(weight) else []
                for w in matrices + layers_of.expert_weights(module):
                    if id(w) not in seen:
                        seen.add(id(w))
                        w.mul_(factor)
