"""numstab.diagnose on real architectures: a CI subset of tests/corpus.py and every planted fault.

The full corpus runs in benchmarks/check_scorecard.py; here: HF GPT-2, BERT, Llama, T5, ViT, ResNet and
ConvNeXt built from configs at their own default init, and a plain VGG, must get no warning or error at
two input seeds, in train and eval mode, whatever the global RNG; every fault must be found with the
kind and the first module written down in the corpus, and its offered fix must re-check healthy while
keeping what was deliberate.
"""

from __future__ import annotations

import corpus  # tests/corpus.py: pytest puts tests/ on sys.path (rootdir-relative "prepend" imports)
import pytest
import torch

import numstab


def _diagnose(case) -> numstab.Report:
    return numstab.diagnose(case.model, case.inputs, loss_fn=case.loss_fn, target=case.target)


@pytest.mark.parametrize("name", corpus.CI_SUBSET)
def test_known_good_models_get_no_warning_at_two_seeds_in_both_modes(name: str) -> None:
    for seed in (0, 1):
        case = corpus.build(name, seed)
        report = _diagnose(case)
        assert corpus.serious(report) == [], (name, seed)
        assert report.verdict == "healthy"
        if not case.stochastic:
            case.model.eval()
            assert _diagnose(case).verdict == "healthy", (name, seed, "eval")


def test_the_verdict_does_not_follow_the_global_rng() -> None:
    case = corpus.build("gpt2", 0)
    reports = []
    for state in (1, 2):
        torch.manual_seed(state)
        reports.append(_diagnose(case))
    assert [r.verdict for r in reports] == ["healthy", "healthy"]
    assert [la.activation_second_moment for la in reports[0].layers] == [
        la.activation_second_moment for la in reports[1].layers]


@pytest.mark.parametrize("name", list(corpus.FAULTS))
def test_each_planted_fault_is_found_with_its_module_first_and_its_fix_re_checks(name: str) -> None:
    fault = corpus.FAULTS[name]
    case = fault.build(0)  # held: a report keeps only a weak reference to its model, and with_fix needs it
    report = _diagnose(case)
    assert corpus.fault_problems(fault, report) == []
    assert corpus.fix_problems(report) == []


def test_offered_fixes_are_the_ones_the_rules_promise() -> None:
    """GPT-2 at initializer_range 1.0 is offered one factor for every weight, which keeps the tie and the
    residual projections' 1/sqrt(2 n_layer): after it, lm_head is still wte and c_proj's scale over
    c_attn's is unchanged."""
    case = corpus.FAULTS["gpt2_init_1"].build(0)
    report = _diagnose(case)
    finding = corpus.serious(report)[0]
    assert finding.scheme == "rescale" and set(finding.options) == {"factor"}
    after = report.with_fix(finding.scheme, **finding.options).after
    assert after.layer("lm_head").shared_with == "transformer.wte"

    def ratio(r: numstab.Report) -> float:
        proj, attn = r.layer("transformer.h.0.attn.c_proj"), r.layer("transformer.h.0.attn.c_attn")
        return proj.weight_rms / attn.weight_rms

    assert ratio(after) == pytest.approx(ratio(report), rel=1e-6)
    assert ratio(report) == pytest.approx(0.5, rel=0.05)  # 1/sqrt(2 * 2 layers), HF's GPT-2 init


@pytest.mark.parametrize("name", ["resnet", "mobilenet_v2", "vgg_bn"])
def test_batchnorm_models_in_eval_mode_stay_healthy_and_say_what_eval_mode_measures(name: str) -> None:
    """In eval mode a fresh BatchNorm divides by running statistics (0 and 1): it does not normalize or
    center. The scale is judged as training sees it (segments still cut there) and dead units are not
    judged (HF MobileNetV2's late ReLU6s read un-centered values); an info finding says so."""
    case = corpus.build(name, 0)
    case.model.eval()
    report = _diagnose(case)
    assert corpus.serious(report) == []
    (note,) = [f for f in report.findings if "eval mode" in f.message]
    assert note.severity == "info" and "model.train()" in note.fix
