"""The batched trainer against torch's own one-model-at-a-time training (the reference oracle).

Every claim of numstab.lab._batched is checked against plain torch: nn.Linear initialized by
torch.nn.init with the same generator (bit-exact), torch.optim.SGD on the same minibatches,
torch.nn.utils.clip_grad_norm_, and autograd's gradcheck for the hand-written layer backward.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from numstab.errors import InvalidArgumentError
from numstab.lab import _batched, _digits
from numstab.lab._batched import Architecture, InitSpec, Rule

DATA = _digits.load(seed=0)


def _reference(arch: Architecture, spec: InitSpec) -> nn.Sequential:
    """An nn.Sequential initialized by torch.nn.init, layer by layer, weight then bias, one generator."""
    g = torch.Generator().manual_seed(spec.seed)
    layers: list[nn.Module] = []
    for d_out, d_in in arch.shapes():
        lin = nn.Linear(d_in, d_out)
        with torch.no_grad():
            if spec.scheme == "normal":
                nn.init.normal_(lin.weight, 0.0, spec.scale, generator=g)
            elif spec.scheme == "xavier_normal":
                nn.init.xavier_normal_(lin.weight, generator=g)
            elif spec.scheme == "kaiming_normal":
                nn.init.kaiming_normal_(lin.weight, nonlinearity="relu", generator=g)
            elif spec.scheme == "orthogonal":
                nn.init.orthogonal_(lin.weight, gain=spec.gain, generator=g)
            elif spec.scheme == "weight_std":
                nn.init.normal_(lin.weight, 0.0, spec.weight_std / math.sqrt(d_in), generator=g)
            if spec.bias_std > 0:
                nn.init.normal_(lin.bias, 0.0, spec.bias_std, generator=g)
            else:
                nn.init.zeros_(lin.bias)
        layers += [lin, {"relu": nn.ReLU(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}[arch.activation]]
    return nn.Sequential(*layers[:-1])


def _linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


@pytest.mark.parametrize(
    "spec",
    [
        InitSpec("normal", 0.01, seed=3),
        InitSpec("xavier_normal", seed=4),
        InitSpec("kaiming_normal", seed=5),
        InitSpec("orthogonal", gain=1.5, seed=6),
        InitSpec("weight_std", weight_std=1.25, bias_std=0.05**0.5, seed=7),
    ],
    ids=lambda s: s.scheme,
)
def test_init_is_torch_nn_init_bit_for_bit(spec: InitSpec) -> None:
    arch = Architecture("relu", depth=3, width=16)
    stack = _batched.init_stack(arch, [InitSpec("normal", 9.0, seed=0), spec])  # model 1 is `spec`
    for layer, lin in enumerate(_linears(_reference(arch, spec))):
        w, b = stack.linear(1, layer)
        assert torch.equal(w, lin.weight.detach()), f"layer {layer} weight"
        assert torch.equal(b, lin.bias.detach()), f"layer {layer} bias"


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        (InitSpec("normal", 0.01, seed=3), {"scale": 0.01}),
        (InitSpec("xavier_normal", seed=4), {}),
        (InitSpec("kaiming_normal", seed=5), {}),
        (InitSpec("orthogonal", seed=6), {}),
        (InitSpec("critical", bias_std=0.3, seed=7), {"activation": "tanh", "bias_std": 0.3}),
    ],
    ids=lambda v: getattr(v, "scheme", ""),
)
def test_scheme_names_mean_what_numstab_init_apply_means(spec: InitSpec, options: dict) -> None:
    """One vocabulary: every scheme the training lab shares with numstab.init draws the same weights."""
    from numstab import init

    assert set(_batched.SCHEMES) - set(init.SCHEMES) == {"weight_std"}  # the mean-field sigma_w, theory's
    arch = Architecture("tanh", depth=3, width=16)
    stack = _batched.init_stack(arch, [spec])
    model = _reference(arch, InitSpec("xavier_normal"))
    init.apply_(model, spec.scheme, generator=torch.Generator().manual_seed(spec.seed), **options)
    for layer, lin in enumerate(_linears(model)):
        w, b = stack.linear(0, layer)
        assert torch.equal(w, lin.weight.detach()), f"layer {layer} weight"
        assert torch.equal(b, lin.bias.detach()), f"layer {layer} bias"


def test_critical_init_uses_numstab_init_critical() -> None:
    from numstab import init

    arch = Architecture("tanh", depth=2, width=8)
    stack = _batched.init_stack(arch, [InitSpec("critical", bias_std=0.1, seed=2)])
    g = torch.Generator().manual_seed(2)
    for layer, (d_out, d_in) in enumerate(arch.shapes()):
        expected = init.critical_(torch.empty(d_out, d_in), "tanh", bias_std=0.1, generator=g)
        torch.nn.init.normal_(torch.empty(d_out), 0.0, 0.1, generator=g)  # the bias draw that follows
        assert torch.equal(stack.linear(0, layer)[0], expected)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "scaled_sigmoid"])
def test_fused_layer_backward_passes_gradcheck(name: str) -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(2, 4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(2, 1, 5, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: _batched.dense_act(*t, name), (h, w, b))


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "scaled_sigmoid"])
def test_hand_written_backprop_equals_autograd(name: str) -> None:
    arch = Architecture(name, depth=3, width=8)
    stack = _batched.init_stack(arch, [InitSpec("xavier_normal", seed=s) for s in (0, 1)])
    x, y = DATA.x_train[:16], DATA.y_train[:16]
    by_hand = _batched._ByHand(arch, 2, 16)
    for _ in range(2):  # twice: the input buffers are reused across steps
        loss, grads = by_hand(stack, x, y)
        ref_loss, ref_grads = _batched._loss_and_grads(arch, stack, x, y)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
        for mine, reference in zip(grads, ref_grads, strict=True):
            torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)
        x, y = DATA.x_train[16:32], DATA.y_train[16:32]


def test_fused_tanh_agrees_with_torch_tanh() -> None:
    x = torch.cat([torch.linspace(-30, 30, 6001), torch.tensor([-1e30, 1e30, math.inf, -math.inf])])
    tanh_into = _batched._FUSED["tanh"][0]
    torch.testing.assert_close(tanh_into(x.clone(), torch.empty_like(x)), torch.tanh(x), atol=3e-7, rtol=0)
    assert tanh_into(torch.tensor([math.nan]), torch.empty(1)).isnan().all()


def _replay(arch, spec, lr, steps, batch_size, *, clip=None):  # noqa: ANN001, ANN202
    """Train one model the ordinary way; return it and the first step with a non-finite loss or gradient."""
    model = _reference(arch, spec)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    order = _digits.batch_indices(len(DATA.y_train), batch_size, steps, generator=g)
    first = None
    for step in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(DATA.x_train[order[step]]), DATA.y_train[order[step]])
        loss.backward()
        grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())
        finite = bool(torch.isfinite(loss)) and grads_finite
        if not finite and first is None:
            first = step
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return model, first


@pytest.mark.parametrize("rule", [Rule(), Rule(clip=1.0)], ids=["sgd", "clip"])
def test_batched_training_equals_one_model_at_a_time(rule: Rule) -> None:
    arch = Architecture("relu", depth=4, width=16)
    specs = [InitSpec("kaiming_normal", seed=s) for s in (0, 1, 2)]
    lrs = [0.05, 0.2, 0.1]
    stack = _batched.init_stack(arch, specs)
    _batched.train(arch, stack, torch.tensor(lrs), DATA, steps=25, batch_size=32, rule=rule)
    for m in range(3):
        model, first = _replay(arch, specs[m], lrs[m], 25, 32, clip=rule.clip)
        assert first is None
        for layer, lin in enumerate(_linears(model)):
            w, b = stack.linear(m, layer)
            torch.testing.assert_close(w, lin.weight.detach(), atol=2e-5, rtol=1e-4)
            torch.testing.assert_close(b, lin.bias.detach(), atol=2e-5, rtol=1e-4)


def test_clipping_is_per_model() -> None:
    """Clip between two models' gradient norms: the larger is clipped, its neighbour in the batch is not."""
    arch = Architecture("relu", depth=2, width=16)
    specs = [InitSpec("normal", 1.0, seed=0), InitSpec("kaiming_normal", seed=1)]
    probe = _batched.init_stack(arch, specs)
    rec = _batched.train(arch, probe, torch.tensor([0.0, 0.0]), DATA, steps=1, batch_size=32)
    big, small = rec.grad_norms[0].norm(dim=1).tolist()
    assert big > 10 * small
    clip = math.sqrt(big * small)
    clipped, plain = _batched.init_stack(arch, specs), _batched.init_stack(arch, specs)
    lrs = torch.tensor([0.01, 0.01])
    _batched.train(arch, clipped, lrs, DATA, steps=1, batch_size=32, rule=Rule(clip=clip))
    _batched.train(arch, plain, lrs, DATA, steps=1, batch_size=32)
    w0 = _batched.init_stack(arch, specs).weights[0][0]
    moved = (clipped.weights[0][0] - w0).norm() / (plain.weights[0][0] - w0).norm()
    assert float(moved) == pytest.approx(clip / (big + 1e-6), rel=1e-3)  # clip_grad_norm_'s coefficient
    assert torch.equal(clipped.weights[0][1], plain.weights[0][1])  # norm below clip: coefficient clamps to 1


def test_lars_moves_each_layer_by_trust_times_lr_of_its_norm() -> None:
    """One LARS step: ||theta_l' - theta_l|| = lr * eta * ||theta_l|| for every layer (You et al. 2017)."""
    arch = Architecture("tanh", depth=3, width=16)
    stack = _batched.init_stack(arch, [InitSpec("xavier_normal", seed=0)])
    before = stack.clone()
    _batched.train(arch, stack, torch.tensor([0.5]), DATA, steps=1, batch_size=32, rule=Rule(lars=0.02))
    for layer in range(4):
        (w0, b0), (w1, b1) = before.linear(0, layer), stack.linear(0, layer)
        step = torch.cat([(w1 - w0).flatten(), b1 - b0]).norm()
        size = torch.cat([w0.flatten(), b0]).norm()
        assert float(step) == pytest.approx(0.5 * 0.02 * float(size), rel=1e-4)


def test_largest_entry_flags_exactly_the_models_with_a_nonfinite_gradient() -> None:
    grads = [torch.full((4, 3, 2), 1e30), torch.zeros(4, 2, 5)]  # 1e30: finite, its square is not
    grads[0][1, 2, 1] = math.nan
    grads[1][2, 0, 4] = -math.inf
    finite = torch.isfinite(_batched._largest_entry(grads)).tolist()
    assert finite == [True, False, False, True]


def test_failure_step_is_where_the_replay_first_sees_a_nonfinite_value() -> None:
    """relu with N(0, 0.4**2) entries at depth 10 blows up; the batched record matches an unbatched replay."""
    arch = Architecture("relu", depth=10, width=64)
    specs = [InitSpec("normal", 0.4, seed=s) for s in (0, 1)] + [InitSpec("kaiming_normal", seed=0)]
    stack = _batched.init_stack(arch, specs)
    out = _batched.train(arch, stack, torch.full((3,), 0.05), DATA, steps=8, batch_size=64)
    failures = out.first_failure.tolist()
    assert failures[2] == -1  # the Kaiming model next to them stays finite
    for m in (0, 1):
        _, first = _replay(arch, specs[m], 0.05, 8, 64)
        assert first is not None and first > 0, "the large init must overflow during training, not at step 0"
        assert failures[m] == first


def test_outcome_records_losses_and_layer_norms() -> None:
    arch = Architecture("tanh", depth=3, width=16)
    stack = _batched.init_stack(arch, [InitSpec("xavier_normal", seed=0)])
    out = _batched.train(arch, stack, torch.tensor([0.1]), DATA, steps=30, batch_size=32, record_every=10)
    assert out.record_steps.tolist() == [0, 10, 20]
    assert out.losses.shape == (3, 1) and out.grad_norms.shape == (3, 1, 4)
    # at step 0 every output is near uniform over 10 classes: loss near ln 10
    assert float(out.losses[0, 0]) == pytest.approx(math.log(10), abs=0.3)
    assert bool((out.weight_change > 0).all())


def test_digits_split_is_stratified_standardized_and_fixed_by_seed() -> None:
    a, b, c = _digits.load(seed=0), _digits.load(seed=0), _digits.load(seed=1)
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    assert (len(a.y_train), len(a.y_test)) == (1437, 360)
    per_class = torch.bincount(torch.cat([a.y_train, a.y_test]))
    assert (torch.bincount(a.y_test) - 0.2 * per_class).abs().max() <= 1  # stratified: 20% of every class
    lit = a.x_train.std(0, unbiased=False) > 0
    torch.testing.assert_close(a.x_train.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    std = a.x_train.std(0, unbiased=False)[lit]
    torch.testing.assert_close(std, torch.ones_like(std), atol=1e-5, rtol=0)


def test_batches_cover_each_epoch_once() -> None:
    idx = _digits.batch_indices(100, 10, 25, generator=torch.Generator().manual_seed(0))
    flat = idx.flatten()
    assert sorted(flat[:100].tolist()) == list(range(100))
    assert sorted(flat[100:200].tolist()) == list(range(100))


def test_an_init_spec_takes_only_its_schemes_number() -> None:
    assert InitSpec("weight_std", weight_std=1.5).scale is None and InitSpec("orthogonal").gain == 1.0
    with pytest.raises(InvalidArgumentError, match="scale= does not apply to init 'weight_std'"):
        InitSpec("weight_std", 1.5)  # positional: the raw std, which this scheme does not take
