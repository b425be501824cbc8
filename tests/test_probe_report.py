"""numstab.probe.report and numstab.render.check: the dataclasses, JSON, the rich table, the HTML page."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from numstab import jsonio
from numstab.errors import InvalidArgumentError, ModelError, UnknownNameError
from numstab.probe import Finding, LayerReport, Report, diagnose
from numstab.render.terminal import make_console


def _report() -> Report:
    linear = LayerReport("0", "Linear", 0.0, 1.0, 0.5, 0.25, 2.0, 0.0, 0, {"float16": 0.0}, 0,
                         activation_second_moment=1.0, grad_second_moment=0.25, kaiming_ratio=1.0, units=4)
    relu = LayerReport("1", "ReLU", 0.4, 0.6, 0.5, None, None, 0.5, 0, {"float16": 0.0}, 3,
                       activation_second_moment=0.52, grad_second_moment=math.inf, units=4)
    finding = Finding("dead", "warning", ("1",), "half the units are 0", "use leaky_relu")
    return Report([linear, relu], [finding], "dead", 1.0)


GOLDEN = """\
verdict: dead
layers
 layer   kind      ⟨x²⟩    ⟨g²⟩   w std   w/kaiming    dead   nonfinite   flag
───────────────────────────────────────────────────────────────────────────────
 0       Linear    1.00   0.250   0.250        1.00       0           0   ok
 1       ReLU     0.520     inf                       0.500           3   dead
warning dead in 1
  half the units are 0
  fix: use leaky_relu
"""


def test_printing_a_report_shows_the_golden_table() -> None:
    console = make_console(file=io.StringIO(), width=100)
    console.print(_report())
    assert "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n" == GOLDEN


def test_to_json_has_the_schema_a_top_level_verdict_and_spelled_out_infinities(tmp_path) -> None:
    report = _report()
    doc = jsonio.loads(report.to_json(), kind="check")
    assert list(doc)[:3] == ["schema", "kind", "verdict"]
    assert doc["verdict"] == "dead"
    assert '"grad_second_moment": "inf"' in report.to_json()
    assert doc["layers"][1]["grad_second_moment"] == math.inf
    assert doc["findings"][0] == {"kind": "dead", "severity": "warning", "layers": ["1"],
                                  "message": "half the units are 0", "fix": "use leaky_relu",
                                  "scheme": None, "options": {}}
    path = tmp_path / "r.json"
    report.to_json(path)
    assert jsonio.load(path, kind="check") == doc


def test_to_html_writes_a_complete_page_and_repr_html_a_fragment(tmp_path) -> None:
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    report = diagnose(net, torch.randn(32, 8, generator=torch.Generator().manual_seed(0)))
    page = report.to_html(tmp_path / "check.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    for anchor in ('id="verdict"', 'id="profile"', 'id="layers"', 'id="theory"'):
        assert anchor in page
    assert 'alt="Second moments of the outputs and gradients of 5 layer calls' in page
    assert "http://" not in page and "https://" not in page.split("</head>")[1]
    fragment = report._repr_html_()
    assert "<html" not in fragment and 'id="layers"' in fragment


def test_layer_lookup_lists_the_names_when_missing() -> None:
    assert _report().layer("1").kind == "ReLU"
    with pytest.raises(UnknownNameError, match="unknown layer 'x': use one of 0, 1"):
        _report().layer("x")


def test_with_fix_needs_the_model_the_report_came_from() -> None:
    with pytest.raises(InvalidArgumentError, match="with_fix needs the model"):
        _report().with_fix("kaiming_normal")


def test_fix_comparison_renders_before_and_after() -> None:
    net = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(64, 64), nn.ReLU())])
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0, generator=torch.Generator().manual_seed(0))
    report = diagnose(net, torch.randn(64, 64, generator=torch.Generator().manual_seed(1)))
    comparison = report.with_fix("kaiming_normal", generator=torch.Generator().manual_seed(2))
    console = make_console(file=io.StringIO(), width=120)
    console.print(comparison)
    text = console.file.getvalue()
    assert "report.with_fix('kaiming_normal') on a copy" in text
    assert " before   exploding" in text and " after    healthy" in text
    assert comparison.to_dict()["after"]["verdict"] == "healthy"


def test_diagnose_stores_the_gains_the_fix_table_shows() -> None:
    """Layers c_l I with c = (1, 1, 2, 2, 1): E[x_L²] = (1·1·2·2·1)² E[x_0²] (log2 4); the relative gradient
    r_l = ||∇W_l|| / ||W_l|| is (prod c) / c_l² times a common factor, so over the body (the head, layer 4,
    left out) log2 r_0² - log2 r_3² = 4 log2 2."""
    net = nn.Sequential(*[nn.Linear(8, 8, bias=False) for _ in range(5)])
    with torch.no_grad():
        for layer, c in zip(net, (1.0, 1.0, 2.0, 2.0, 1.0), strict=True):
            layer.weight.copy_(c * torch.eye(8))
    report = diagnose(net, torch.ones(4, 8))
    assert report.forward_gain_log2 == pytest.approx(4.0, abs=1e-12)  # float64 norms, squared
    assert report.backward_gain_log2 == pytest.approx(4.0, abs=1e-12)
    assert report.to_dict()["forward_gain_log2"] == report.forward_gain_log2


def test_flags_name_each_layers_most_severe_finding_and_the_worst_severity() -> None:
    findings = [
        Finding("vanishing", "error", ("0", "2"), "m", "f"),
        Finding("dead", "warning", ("2", "4"), "m", "f"),
        Finding("init", "info", ("6",), "m", "f"),
    ]
    report = Report([], findings, "vanishing", 1.0)
    assert report.flags() == {"0": "vanishing", "2": "vanishing", "4": "dead", "6": "init"}
    assert report.worst_severity == "error"
    assert Report([], findings[1:], "dead", 1.0).worst_severity == "warning"
    assert Report([], [], "healthy", 1.0).worst_severity is None


# -- with_fix on a real model: the same machinery as init.apply_ ---------------------------------------


def test_with_fix_on_gpt2_keeps_the_head_tied_and_scales_conv1d_along_its_fan_in() -> None:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)  # HF initializes from the global RNG
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=64, n_positions=16)
    model = transformers.GPT2LMHeadModel(config)
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    comparison = diagnose(model, ids).with_fix("kaiming_normal")
    fixed = comparison.model
    assert fixed is not model and all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert fixed.lm_head.weight is fixed.transformer.wte.weight  # still one parameter
    assert torch.equal(fixed.transformer.wte.weight, before["transformer.wte.weight"])  # and not rewritten
    for name, module in fixed.named_modules():
        if type(module).__name__ == "Conv1D":  # weight (in, out): kaiming's std is sqrt(2 / in)
            fan_in, n = module.weight.shape[0], module.weight.numel()
            std = math.sqrt(2.0 / fan_in)
            # the sample std of n normal draws is within 5 standard errors (std / sqrt(2n)) of the law's
            assert abs(float(module.weight.detach().double().std()) - std) < 5 * std / math.sqrt(2 * n), name
            assert comparison.after.layer(name).weight_std == pytest.approx(
                float(module.weight.detach().double().std()), rel=1e-3)
    assert comparison.after.layer("lm_head").weight_std == pytest.approx(
        comparison.before.layer("lm_head").weight_std, rel=1e-6)


def test_with_fix_whose_scheme_applies_to_no_layer_is_one_error_naming_it() -> None:
    model = nn.Sequential(nn.Embedding(10, 8), nn.LayerNorm(8))
    ids = torch.randint(0, 10, (4, 5), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = diagnose(model, ids)
    with pytest.raises(ModelError, match="scheme='xavier_normal' cannot apply to any layer of Sequential"):
        report.with_fix("xavier_normal")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_with_fix_on_the_built_in_transformer_reaches_its_attention_projections() -> None:
    from numstab import examples

    model, x = examples.build("transformer")
    comparison = diagnose(model, x).with_fix("xavier_uniform")
    for name, module in comparison.model.named_modules():
        if isinstance(module, nn.MultiheadAttention):  # each (64, 64) block: U(-a, a), a = sqrt(6 / 128)
            bound = math.sqrt(6.0 / 128)
            w = module.in_proj_weight.detach()
            assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound, name
            original = dict(model.named_modules())[name].in_proj_weight
            assert not torch.equal(w, original), name


def test_a_report_pickles_and_does_not_keep_the_model_or_its_inputs_alive() -> None:
    import gc
    import pickle
    import weakref

    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    nn.init.normal_(net[0].weight, std=3.0, generator=torch.Generator().manual_seed(0))
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(1))
    report = diagnose(net, x)
    # with_fix works while the model lives, even with the inputs passed inline and dropped by the caller
    inline = diagnose(net, torch.randn(16, 8, generator=torch.Generator().manual_seed(1)))
    assert inline.with_fix("kaiming_normal").after.layers[0].name == "0"
    copy = pickle.loads(pickle.dumps(report))
    assert copy.to_dict() == report.to_dict() and copy.verdict == report.verdict
    with pytest.raises(InvalidArgumentError, match="unpickled"):
        copy.with_fix("kaiming_normal")
    model_ref, input_ref = weakref.ref(net), weakref.ref(x)
    del net, x, inline
    gc.collect()
    assert model_ref() is None and input_ref() is None  # the report held neither
    with pytest.raises(InvalidArgumentError, match="garbage-collected"):
        report.with_fix("kaiming_normal")
