"""numstab.init: exact laws (KS tests, variance bands), drop-in equality with torch.nn.init, LSUV."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import scipy.special
import torch
from scipy import stats
from torch import nn

from numstab import activations, init, theory
from numstab.errors import BadInputError, InvalidArgumentError, ModelError, NumstabTypeError, UnknownNameError

KS_P_MIN = 1e-4  # as in pytorch's test/nn/test_init.py
BAND_SE = 5.0  # the sample variance must lie within 5 standard errors of the target variance
TANH_GAIN = 5.0 / 3.0  # torch.nn.init.calculate_gain("tanh")

# weight shapes: a Linear (out=300, in=200) and a Conv2d (out=64, in=32, 3x3)
SHAPES = {"2d": (nn.Linear, (200, 300)), "4d": (nn.Conv2d, (32, 64, 3))}
FANS = {"2d": (200, 300), "4d": (32 * 9, 64 * 9)}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def layer(shape: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    cls, args = SHAPES[shape]
    return cls(*args).double()


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def assert_law(sample: torch.Tensor, dist: stats.rv_continuous, kurtosis: float) -> None:
    """KS against the exact law, and the sample variance within BAND_SE standard errors of its variance.

    For n iid draws, SE(s^2) = sigma^2 * sqrt((kurtosis - 1) / n) to leading order.
    """
    x = sample.detach().double().flatten().numpy()
    assert stats.kstest(x, dist.cdf).pvalue > KS_P_MIN
    var = dist.var()
    assert abs(x.var(ddof=1) - var) < BAND_SE * var * math.sqrt((kurtosis - 1) / x.size)


def orthogonal_entry_cdf(dim: int, g: float):
    """CDF of an entry of g * (a row or column uniform on the sphere S^{dim-1}).

    x^2 / g^2 ~ Beta(1/2, (dim - 1)/2), and x is symmetric.
    """

    def cdf(x):
        u = np.clip((np.asarray(x) / g) ** 2, 0, 1)
        return 0.5 + 0.5 * np.sign(x) * scipy.special.betainc(0.5, (dim - 1) / 2, u)

    return cdf


# ---------------------------------------------------------------------------------------------
# fans and gains


@pytest.mark.parametrize(
    "module",
    [
        nn.Linear(7, 5),
        nn.Conv1d(3, 6, 5),
        nn.Conv2d(3, 6, (3, 4)),
        nn.Conv2d(4, 8, 3, groups=2),
        nn.Conv3d(2, 4, 3),
        nn.ConvTranspose1d(3, 6, 5),
        nn.ConvTranspose2d(3, 6, (2, 3)),
        nn.ConvTranspose3d(2, 4, 3),
    ],
    ids=lambda m: type(m).__name__,
)
def test_fans_equal_torch_for_every_layer_type(module):
    assert init.fans(module.weight) == nn.init._calculate_fan_in_and_fan_out(module.weight)


def test_fans_golden_and_bad_shape():
    assert init.fans(torch.empty(16, 3, 5, 5)) == (75, 400)
    assert init.fans(torch.empty(6, 3, 4, 4)) == (48, 96)
    with pytest.raises(BadInputError, match=r"shape \(5,\)"):
        init.fans(torch.empty(5))


TORCH_GAIN_CASES = [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose1d", None),
    ("conv_transpose2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("leaky_relu", None), ("selu", None),
]


@pytest.mark.parametrize(("name", "param"), TORCH_GAIN_CASES)
def test_gain_equals_calculate_gain_where_torch_defines_it(name, param):
    assert init.gain(name) == nn.init.calculate_gain(name, param)


def test_gain_golden_literals_and_parametrized_leaky_relu():
    assert init.gain("relu") == 1.4142135623730951
    assert init.gain("tanh") == 1.6666666666666667
    assert init.gain("selu") == 0.75
    assert init.gain("identity") == 1.0
    assert init.gain(activations.leaky_relu(0.2)) == nn.init.calculate_gain("leaky_relu", 0.2)
    assert init.gain(activations.leaky_relu(0.2)) == math.sqrt(2 / 1.04)


def test_gain_by_quadrature_is_exact_across_a_kink_and_for_erf():
    # a plain callable is not torch-known: the quadrature must give relu's sqrt(2) through the kink
    assert init.gain(lambda x: np.maximum(x, 0.0)) == pytest.approx(math.sqrt(2.0), abs=1e-9)
    assert init.gain(lambda x: np.where(x > 0, x, 0.2 * x)) == pytest.approx(math.sqrt(2 / 1.04), abs=1e-9)
    # E[erf(z)^2] = (2/pi) arcsin(2/3) (Williams 1997)
    assert init.gain("erf") == pytest.approx(1 / math.sqrt(2 / math.pi * math.asin(2 / 3)), abs=1e-10)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "softplus", "scaled_sigmoid"])
def test_gain_matches_monte_carlo_with_a_million_samples(name):
    """1e6 seeded samples; control variates with known Gaussian moments shrink the MC error to ~1e-5.

    Plain MC of E[f(z)^2] has a standard error near 2e-3 here, too coarse to check to 1e-3.
    Controls: z, z^2, z^3, z^4, relu(z), relu(z)^2 with means 0, 1, 0, 3, 1/sqrt(2 pi), 1/2.
    """
    z = torch.randn(1_000_000, dtype=torch.float64, generator=gen(1234)).numpy()
    y = np.asarray(activations.get(name).fn(z)) ** 2
    r = np.maximum(z, 0.0)
    controls = np.stack([z, z**2, z**3, z**4, r, r**2], axis=1)
    means = np.array([0.0, 1.0, 0.0, 3.0, 1 / math.sqrt(2 * math.pi), 0.5])
    centred = controls - means
    beta, *_ = np.linalg.lstsq(centred - centred.mean(0), y - y.mean(), rcond=None)
    second_moment = float(np.mean(y - centred @ beta))
    assert init.gain(name) == pytest.approx(1 / math.sqrt(second_moment), abs=1e-3)


@pytest.mark.parametrize("name", ["gelu", "silu", "elu", "softplus", "erf", "scaled_sigmoid"])
def test_gain_is_the_theory_s_second_moment_at_q_1(name):
    """One quadrature: gain(f) = 1 / sqrt(V(1)), V the mean-field variance map at sigma_w = 1, sigma_b = 0."""
    second_moment = theory.variance_map(name, 1.0, 0.0, 1.0)
    assert init.gain(name) == pytest.approx(1 / math.sqrt(second_moment), rel=1e-13)


def test_gain_of_a_torch_callable_equals_the_registered_closed_form():
    # tensor-only callables (a function or a module) are integrated too
    assert init.gain(torch.nn.functional.gelu) == pytest.approx(init.gain("gelu"), abs=1e-10)
    assert init.gain(nn.SiLU()) == pytest.approx(init.gain("silu"), abs=1e-10)


def test_gain_of_a_zero_function_or_unknown_name_is_an_error():
    with pytest.raises(InvalidArgumentError, match="E\\[f\\(z\\)\\^2\\]"):
        init.gain(lambda x: 0.0 * x)
    with pytest.raises(UnknownNameError, match="relu"):
        init.gain("relu7")


# ---------------------------------------------------------------------------------------------
# every scheme's law, for a 2-D and a 4-D weight


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("scheme", ["xavier_normal", "xavier_uniform"])
def test_xavier_laws(scheme, shape):
    model = init.apply_(layer(shape), scheme, activation="tanh", generator=gen(0))
    fan_in, fan_out = FANS[shape]
    std = TANH_GAIN * math.sqrt(2.0 / (fan_in + fan_out))
    if scheme == "xavier_normal":
        assert_law(model.weight, stats.norm(0, std), kurtosis=3.0)
    else:
        a = math.sqrt(3.0) * std
        assert_law(model.weight, stats.uniform(-a, 2 * a), kurtosis=1.8)


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("scheme", ["kaiming_normal", "kaiming_uniform"])
def test_kaiming_laws_for_both_fan_modes(scheme, mode, shape):
    model = init.apply_(layer(shape), scheme, activation="tanh", mode=mode, generator=gen(1))
    fan = FANS[shape][0 if mode == "fan_in" else 1]
    std = TANH_GAIN / math.sqrt(fan)
    if scheme == "kaiming_normal":
        assert_law(model.weight, stats.norm(0, std), kurtosis=3.0)
    else:
        assert_law(model.weight, stats.uniform(-math.sqrt(3) * std, 2 * math.sqrt(3) * std), kurtosis=1.8)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_kaiming_with_a_quadrature_gain(shape):
    model = init.apply_(layer(shape), "kaiming_normal", activation="gelu", generator=gen(2))
    assert_law(model.weight, stats.norm(0, 1.5335304411955353 / math.sqrt(FANS[shape][0])), kurtosis=3.0)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_normal_scheme_uses_the_raw_std(shape):
    model = init.apply_(layer(shape), "normal", scale=0.05, generator=gen(3))
    assert_law(model.weight, stats.norm(0, 0.05), kurtosis=3.0)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_orthogonal_law_and_gram_matrix(shape):
    model = init.apply_(layer(shape), "orthogonal", activation="tanh", generator=gen(4))
    w = model.weight.detach().reshape(model.weight.shape[0], -1)  # (out, in * kernel)
    rows, cols = w.shape
    small = w @ w.T if rows <= cols else w.T @ w
    eye = torch.eye(min(rows, cols), dtype=w.dtype)
    torch.testing.assert_close(small, TANH_GAIN**2 * eye, rtol=0, atol=1e-6)
    # every row (or column) lies on the sphere of radius g in dimension max(rows, cols)
    x = w.flatten().numpy()
    assert stats.kstest(x, orthogonal_entry_cdf(max(rows, cols), TANH_GAIN)).pvalue > KS_P_MIN
    assert float(np.mean(x**2)) == pytest.approx(TANH_GAIN**2 / max(rows, cols), rel=1e-9)


def test_tall_orthogonal_has_orthonormal_columns():
    model = init.apply_(nn.Linear(60, 100).double(), "orthogonal", generator=gen(5))
    w = model.weight.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(60, dtype=torch.float64), rtol=0, atol=1e-6)


def test_constant_scheme_is_the_symmetry_trap():
    model = nn.Sequential(nn.Linear(4, 6), nn.Sigmoid(), nn.Conv1d(6, 2, 3))
    init.apply_(model, "constant", value=0.25)
    for lay in (model[0], model[2]):
        assert torch.equal(lay.weight, torch.full_like(lay.weight, 0.25))
        assert torch.equal(lay.bias, torch.zeros_like(lay.bias))


def test_biases_zeroed_or_drawn_and_other_modules_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2000), nn.BatchNorm1d(2000), nn.LayerNorm(2000))
    model[2].weight.data.uniform_()
    others = {k: v for k, v in state(model).items() if not k.startswith("1.")}
    init.apply_(model, "xavier_uniform", generator=gen(0))
    assert torch.equal(model[1].bias, torch.zeros(2000))
    init.apply_(model, "xavier_uniform", bias_std=0.3, generator=gen(0))
    assert_law(model[1].bias, stats.norm(0, 0.3), kurtosis=3.0)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in others.items())


@pytest.mark.parametrize(
    "module",
    [nn.Conv1d(2, 3, 3), nn.Conv3d(2, 3, 2), nn.ConvTranspose1d(2, 3, 3), nn.ConvTranspose2d(2, 3, 3),
     nn.ConvTranspose3d(2, 3, 2)],
    ids=lambda m: type(m).__name__,
)
def test_every_layer_type_is_initialized(module):
    init.apply_(module, "constant", value=0.5)
    assert torch.equal(module.weight, torch.full_like(module.weight, 0.5))


# ---------------------------------------------------------------------------------------------
# drop-in equality with torch.nn.init, and generators

DROP_IN = [
    ("kaiming_normal", {}, lambda w, g: nn.init.kaiming_normal_(w, generator=g)),
    ("kaiming_normal", {"mode": "fan_out", "activation": "relu"},
     lambda w, g: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=g)),
    ("kaiming_uniform", {"activation": "leaky_relu"},
     lambda w, g: nn.init.kaiming_uniform_(w, a=0.01, generator=g)),
    ("xavier_normal", {"activation": "tanh"}, lambda w, g: nn.init.xavier_normal_(w, 5 / 3, generator=g)),
    ("xavier_uniform", {}, lambda w, g: nn.init.xavier_uniform_(w, generator=g)),
    ("orthogonal", {"activation": "relu"}, lambda w, g: nn.init.orthogonal_(w, math.sqrt(2), generator=g)),
]


@pytest.mark.parametrize(
    ("scheme", "kwargs", "reference"), DROP_IN, ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(DROP_IN)]
)
def test_bit_identical_to_torch_nn_init(scheme, kwargs, reference):
    model = nn.Conv2d(8, 16, 3)
    expected = reference(torch.empty_like(model.weight), gen(7))
    init.apply_(model, scheme, generator=gen(7), **kwargs)
    assert torch.equal(model.weight, expected)


RANDOM_SCHEMES = [
    ("xavier_normal", {}), ("xavier_uniform", {}), ("kaiming_normal", {}), ("kaiming_uniform", {}),
    ("orthogonal", {}), ("normal", {"scale": 0.1}), ("critical", {"activation": "tanh", "bias_std": 0.1}),
]


@pytest.mark.parametrize(("scheme", "kwargs"), RANDOM_SCHEMES, ids=[s for s, _ in RANDOM_SCHEMES])
def test_same_seed_same_weights_different_seed_different(scheme, kwargs):
    def run(seed):
        model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Conv1d(7, 3, 2))
        return state(init.apply_(model, scheme, generator=gen(seed), **{"bias_std": 0.1, **kwargs}))

    a, b, c = run(11), run(11), run(12)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(not torch.equal(a[k], c[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# critical_ (needs numstab.theory.critical_weight_std)


def critical_scale(activation: str, shape: tuple[int, ...], bias_std: float = 0.0) -> float:
    """std * sqrt(fan_in) of critical_, read exactly: same seed, float64, ratio to a unit normal draw."""
    w = torch.empty(shape, dtype=torch.float64)
    init.critical_(w, activation, bias_std=bias_std, generator=gen(9))
    unit = torch.empty(shape, dtype=torch.float64).normal_(0, 1, generator=gen(9))
    ratio = (w / unit).flatten()
    assert float(ratio.max() - ratio.min()) < 1e-12  # one std for every entry
    return float(ratio[0]) * math.sqrt(init.fans(w)[0])


def test_critical_golden_values():
    assert critical_scale("relu", (30, 20)) == pytest.approx(math.sqrt(2.0), rel=1e-9)  # He et al. 2015
    assert critical_scale("relu", (8, 4, 3, 3)) == pytest.approx(math.sqrt(2.0), rel=1e-9)
    assert critical_scale("tanh", (30, 20)) == pytest.approx(1.0, rel=1e-6)  # Poole et al. 2016


@pytest.mark.parametrize("shape", list(SHAPES))
def test_critical_scheme_law_and_biases(shape):
    model = init.apply_(layer(shape), "critical", activation="relu", bias_std=0.2, generator=gen(10))
    assert_law(model.weight, stats.norm(0, math.sqrt(2.0 / FANS[shape][0])), kurtosis=3.0)
    assert_law(model.bias, stats.norm(0, 0.2), kurtosis=3.0)  # biases N(0, bias_std^2), not zeros


def test_critical_bad_input():
    with pytest.raises(BadInputError, match=r"shape \(4,\)"):
        init.critical_(torch.empty(4), "relu")
    with pytest.raises(BadInputError, match=r"fan_in >= 1, got shape \(4, 0\)"):
        init.critical_(torch.empty(4, 0), "relu")
    with pytest.raises(UnknownNameError, match="tanh"):
        init.critical_(torch.empty(4, 4), "tanhh")
    with pytest.raises(InvalidArgumentError, match="activation="):
        init.apply_(nn.Linear(2, 2), "critical")


# ---------------------------------------------------------------------------------------------
# delta_orthogonal_


@pytest.mark.parametrize("shape", [(12, 8, 3), (12, 8, 3, 5), (8, 8, 3, 3, 3), (6, 4, 4, 4)])
def test_delta_orthogonal_is_an_isometry_at_the_centre_tap(shape):
    w = init.delta_orthogonal_(torch.empty(shape, dtype=torch.float64), 1.5, generator=gen(3))
    centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    h = w[centre]
    eye = torch.eye(shape[1], dtype=torch.float64)
    torch.testing.assert_close(h.T @ h, 2.25 * eye, rtol=0, atol=1e-6)
    if shape[0] == shape[1]:
        torch.testing.assert_close(h @ h.T, 2.25 * eye, rtol=0, atol=1e-6)
    rest = w.clone()
    rest[centre] = 0.0
    assert int(torch.count_nonzero(rest)) == 0  # exactly zero off the centre tap


def test_delta_orthogonal_conv_preserves_the_norm_of_every_input():
    conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
    init.delta_orthogonal_(conv.weight, generator=gen(0))
    x = torch.randn(4, 8, 10, 10, generator=gen(1))
    with torch.no_grad():
        y = conv(x)
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1), rtol=1e-5, atol=1e-6)
    centre = conv.weight.detach()[:, :, 1, 1].double()
    x = centre.flatten().numpy()
    assert stats.kstest(x, orthogonal_entry_cdf(8, 1.0)).pvalue > KS_P_MIN


def test_delta_orthogonal_seeds_and_bad_shapes():
    a = init.delta_orthogonal_(torch.empty(4, 4, 3), generator=gen(0))
    b = init.delta_orthogonal_(torch.empty(4, 4, 3), generator=gen(0))
    c = init.delta_orthogonal_(torch.empty(4, 4, 3), generator=gen(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(BadInputError, match=r"shape \(4, 8, 3, 3\).*at least 8 output channels"):
        init.delta_orthogonal_(torch.empty(4, 8, 3, 3))
    with pytest.raises(BadInputError, match=r"shape \(4, 4\)"):
        init.delta_orthogonal_(torch.empty(4, 4))


# ---------------------------------------------------------------------------------------------
# apply_ bad input leaves the model bit-identical

BAD_CALLS = [
    ({"scheme": "xavier"}, UnknownNameError, "scheme 'xavier': use one of xavier_normal, xavier_uniform"),
    ({"scheme": "xavier_normal", "activation": "tanhh"}, UnknownNameError, "relu"),
    ({"scheme": "kaiming_normal", "mode": "fan_avg"}, UnknownNameError, "fan_in, fan_out"),
    ({"scheme": "normal"}, InvalidArgumentError, "needs scale="),
    ({"scheme": "normal", "scale": -0.1}, InvalidArgumentError, "scale must be .* got -0.1"),
    ({"scheme": "normal", "scale": "big"}, InvalidArgumentError, "scale must be a finite number"),
    ({"scheme": "xavier_normal", "scale": 0.1}, InvalidArgumentError, "scale= only applies to scheme='norm"),
    ({"scheme": "constant"}, InvalidArgumentError, "needs value="),
    ({"scheme": "constant", "value": math.nan}, InvalidArgumentError, "value must be a finite number"),
    ({"scheme": "xavier_normal", "bias_std": -1.0}, InvalidArgumentError, "bias_std"),
    ({"scheme": "xavier_normal", "generator": 0}, NumstabTypeError, "generator must be a torch.Generator"),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_CALLS, ids=[m for _, _, m in BAD_CALLS])
def test_bad_input_is_rejected_before_any_weight_changes(kwargs, error, message):
    model = nn.Sequential(nn.Linear(3, 4), nn.Conv1d(4, 2, 3))
    before = state(model)
    with pytest.raises(error, match=message):
        init.apply_(model, **kwargs)
    assert_same_state(model, before)


def test_non_module_and_layerless_models():
    with pytest.raises(NumstabTypeError, match="model must be a torch.nn.Module, got Tensor"):
        init.apply_(torch.empty(3, 3), "xavier_normal")
    with pytest.raises(ModelError, match="scheme='xavier_normal' cannot apply to any layer.*no Linear, Conv"):
        init.apply_(nn.Sequential(nn.ReLU(), nn.LayerNorm(3)), "xavier_normal")
    with pytest.raises(ModelError, match="'1' is lazy.*run one forward pass"):
        init.apply_(nn.Sequential(nn.Linear(2, 3), nn.LazyLinear(4)), "xavier_normal")


def test_a_failure_while_sampling_leaves_the_model_bit_identical(monkeypatch):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = state(model)
    calls = []

    def failing(tensor, gain=1.0, generator=None):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("LAPACK failed")
        return tensor.fill_(gain)

    monkeypatch.setattr(nn.init, "orthogonal_", failing)
    with pytest.raises(RuntimeError, match="LAPACK"):
        init.apply_(model, "orthogonal")
    assert len(calls) == 2
    assert_same_state(model, before)


# ---------------------------------------------------------------------------------------------
# lsuv_


def output_stds(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    stds, handles = {}, []

    def hook(name):
        def record(module, args, out):
            stds.setdefault(name, float(out.std()))

        return record

    for name, m in model.named_modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            handles.append(m.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return stds


def tanh_mlp(depth: int = 20, width: int = 64) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Linear(32, width), nn.Tanh()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
    )


@pytest.mark.parametrize(("factory", "shape"), [(tanh_mlp, (256, 32)), (small_cnn, (32, 3, 8, 8))])
@pytest.mark.parametrize("target", [1.0, 0.5])
def test_lsuv_brings_every_layer_output_std_within_tol(factory, shape, target):
    model = factory()
    x = torch.randn(shape, generator=gen(0))
    init.lsuv_(model, x, target_std=target, tol=0.05, generator=gen(1))
    stds = output_stds(model, x)
    assert len(stds) == (20 if factory is tanh_mlp else 3)
    assert all(abs(s - target) <= 0.05 for s in stds.values()), stds


def test_lsuv_restores_modes_removes_hooks_and_leaves_batchnorm_stats():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Dropout(0.5), nn.Linear(16, 4))
    model.train()
    model[2].eval()  # a mixed state must come back as it was
    stats_before = state(model[1])
    init.lsuv_(model, torch.randn(64, 8, generator=gen(0)), generator=gen(0))
    assert [m.training for m in model] == [True, True, False, True]
    assert all(not m._forward_hooks for m in model.modules())
    assert_same_state(model[1], stats_before)
    assert all(p.grad is None for p in model.parameters())


def count_passes(model: nn.Module) -> tuple[list[int], object]:
    passes: list[int] = []
    return passes, model.register_forward_pre_hook(lambda module, args: passes.append(1))


@pytest.mark.parametrize("max_iter", [1, 3])
def test_lsuv_gives_up_after_max_iter_rescalings_naming_the_layer(max_iter):
    model = tanh_mlp(6)
    before = state(model)
    passes, handle = count_passes(model)
    x = torch.randn(64, 32, generator=gen(0))
    try:
        # tol=1e-12 is below float32's resolution of a std: layer '0' never gets there
        message = rf"layer '0' has output std [01]\.\d+ after max_iter={max_iter} "
        with pytest.raises(ModelError, match=message):
            init.lsuv_(model, x, tol=1e-12, max_iter=max_iter, generator=gen(0))
    finally:
        handle.remove()
    assert len(passes) == 1 + max_iter  # one pass finds the order, then one after each rescaling
    assert_same_state(model, before)


def test_lsuv_runs_one_pass_per_rescaling():
    model = tanh_mlp(6)
    passes, handle = count_passes(model)
    x = torch.randn(64, 32, generator=gen(0))
    try:
        init.lsuv_(model, x, tol=0.05, max_iter=3, generator=gen(0))
    finally:
        handle.remove()
    assert 1 + 6 <= len(passes) <= 1 + 6 * 3  # an orthogonal start is off target in every layer here


def test_lsuv_on_a_zero_batch_raises_and_leaves_model_and_global_rng_as_they_were():
    """A zero batch: layer '0' outputs its bias whatever its weight; the old code scaled it by ~1e8."""
    model = tanh_mlp(4)
    before, rng = state(model), torch.get_rng_state()
    with pytest.raises(ModelError, match=r"layer '0' has output std 0\.\d+ after max_iter=10 rescalings"):
        init.lsuv_(model, torch.zeros(16, 32))
    assert_same_state(model, before)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(not m._forward_hooks for m in model.modules())


def test_lsuv_without_a_generator_leaves_the_global_rng_where_it_was():
    first, second = tanh_mlp(4), tanh_mlp(4)  # (tanh_mlp seeds the global RNG)
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    x = torch.randn(64, 32, generator=gen(0))
    a = state(init.lsuv_(first, x))
    assert torch.equal(torch.get_rng_state(), rng)
    b = state(init.lsuv_(second, x))  # the same fork of the same global state: the same weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.get_rng_state(), rng)


def test_lsuv_is_reproducible_with_a_generator():
    x = torch.randn(64, 32, generator=gen(0))
    a = state(init.lsuv_(tanh_mlp(5), x, generator=gen(3)))
    b = state(init.lsuv_(tanh_mlp(5), x, generator=gen(3)))
    c = state(init.lsuv_(tanh_mlp(5), x, generator=gen(4)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_lsuv_zero_variance_names_the_layer_and_restores_everything():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4, bias=False), nn.Linear(4, 2))
    model.train()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # relu kills every unit: layer '2' sees zeros
    before = state(model)
    with pytest.raises(ModelError, match="layer '2' has output std 0.0"):
        init.lsuv_(model, torch.randn(16, 4, generator=gen(0)))
    assert_same_state(model, before)
    assert model.training and all(not m._forward_hooks for m in model.modules())


def test_lsuv_bad_input():
    model = nn.Linear(3, 3)
    with pytest.raises(NumstabTypeError, match="inputs must be a tensor"):
        init.lsuv_(model, [[1.0, 2.0, 3.0]])
    with pytest.raises(InvalidArgumentError, match="tol"):
        init.lsuv_(model, torch.randn(4, 3), tol=0.0)
    with pytest.raises(InvalidArgumentError, match="max_iter"):
        init.lsuv_(model, torch.randn(4, 3), max_iter=0)
    with pytest.raises(NumstabTypeError, match="model must be"):
        init.lsuv_("model", torch.randn(4, 3))
    with pytest.raises(ModelError, match="no module with a weight"):
        init.lsuv_(nn.ReLU(), torch.randn(4, 3))


# ---------------------------------------------------------------------------------------------
# layers torch does not define, tied weights, layers of unknown convention


def hf_conv1d(nx: int, nf: int) -> nn.Module:
    """transformers' Conv1D (GPT-2's projections): weight stored (in=nx, out=nf), y = x @ W + b."""
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")
    return pytorch_utils.Conv1D(nf, nx)


@pytest.mark.parametrize(("scheme", "reference"), [
    ("kaiming_normal", lambda w, g: nn.init.kaiming_normal_(w, generator=g)),
    ("kaiming_uniform", lambda w, g: nn.init.kaiming_uniform_(w, a=0.0, generator=g)),
    ("xavier_normal", lambda w, g: nn.init.xavier_normal_(w, generator=g)),
])
def test_hf_conv1d_gets_torch_s_draw_of_its_out_by_in_weight_transposed(scheme, reference):
    conv = hf_conv1d(5, 8)
    expected = reference(torch.empty(8, 5), gen(7)).T  # torch's (out, in) layout, stored (in, out)
    init.apply_(conv, scheme, generator=gen(7), **({"activation": "relu"} if scheme.startswith("k") else {}))
    assert torch.equal(conv.weight, expected)
    assert torch.equal(conv.bias, torch.zeros(8))


def test_hf_conv1d_kaiming_law_uses_fan_in_equal_to_its_first_dim():
    conv = hf_conv1d(400, 100)  # fan_in 400; torch's convention would read fan_in = 100
    init.apply_(conv, "kaiming_normal", generator=gen(1))
    assert_law(conv.weight.double(), stats.norm(0, math.sqrt(2.0 / 400)), kurtosis=3.0)


def test_hf_conv1d_orthogonal_maps_inputs_isometrically():
    conv = hf_conv1d(5, 8).double()  # y = x @ W with W (5, 8): an isometry needs W W^T = I_5
    init.apply_(conv, "orthogonal", generator=gen(2))
    w = conv.weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(5, dtype=torch.float64), rtol=0, atol=1e-12)


def test_multihead_attention_in_projection_is_three_maps_each_drawn_as_one():
    mha = nn.MultiheadAttention(8, 2)
    init.apply_(mha, "kaiming_normal", bias_std=0.1, generator=gen(6))
    g = gen(6)  # in_proj_weight as q, k, v blocks, then in_proj_bias, then out_proj (a Linear of its own)
    blocks = [nn.init.kaiming_normal_(torch.empty(8, 8), generator=g) for _ in range(3)]
    in_bias = torch.empty(24).normal_(0, 0.1, generator=g)
    out_weight = nn.init.kaiming_normal_(torch.empty(8, 8), generator=g)
    assert torch.equal(mha.in_proj_weight, torch.cat(blocks)) and torch.equal(mha.in_proj_bias, in_bias)
    assert torch.equal(mha.out_proj.weight, out_weight)


def test_multihead_attention_orthogonal_blocks_and_separate_key_value_dims():
    mha = nn.MultiheadAttention(8, 2, kdim=4, vdim=6).double()
    init.apply_(mha, "orthogonal", generator=gen(7))
    for name, cols in (("q_proj_weight", 8), ("k_proj_weight", 4), ("v_proj_weight", 6)):
        w = getattr(mha, name).detach()  # (8, cols), tall or square: orthonormal columns
        torch.testing.assert_close(w.T @ w, torch.eye(cols, dtype=torch.float64), rtol=0, atol=1e-12)
    packed = nn.MultiheadAttention(8, 2).double()
    init.apply_(packed, "orthogonal", generator=gen(7))
    for block in packed.in_proj_weight.detach().split(8):  # each of q, k, v is orthogonal on its own
        torch.testing.assert_close(block @ block.T, torch.eye(8, dtype=torch.float64), rtol=0, atol=1e-12)


def tied_lm() -> nn.Sequential:
    """An embedding, a Linear, and an output Linear whose weight is the embedding's (GPT-2's lm_head)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 10))
    model[2].weight = model[0].weight
    return model


def test_a_linear_tied_to_an_embedding_keeps_the_embedding_s_values():
    model = tied_lm()
    embedding, head_bias = model[0].weight.detach().clone(), model[2].bias
    init.apply_(model, "kaiming_normal", generator=gen(0))
    assert model[2].weight is model[0].weight
    assert torch.equal(model[0].weight, embedding)  # not re-initialized as a Linear
    expected = nn.init.kaiming_normal_(torch.empty(4, 4), generator=gen(0))
    assert torch.equal(model[1].weight, expected)
    assert torch.equal(head_bias, torch.zeros(10))  # the head's own bias is its own: zeroed


def test_a_weight_shared_by_two_linears_is_drawn_once_under_its_first_owner():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    model[2].weight = model[0].weight
    init.apply_(model, "xavier_normal", bias_std=0.5, generator=gen(3))
    g = gen(3)  # the order of draws: weight of '0', bias of '0', bias of '2' (the weight only once)
    weight = nn.init.xavier_normal_(torch.empty(4, 4), generator=g)
    bias0, bias2 = torch.empty(4).normal_(0, 0.5, generator=g), torch.empty(4).normal_(0, 0.5, generator=g)
    assert model[2].weight is model[0].weight
    assert torch.equal(model[0].weight, weight)
    assert torch.equal(model[0].bias, bias0) and torch.equal(model[2].bias, bias2)


def test_layers_selects_subtrees_and_ties_are_still_judged_over_the_whole_model():
    model = tied_lm()
    before = state(model)
    init.apply_(model, "constant", value=0.5, layers=["2"])  # the head alone: its weight is the embedding's
    assert torch.equal(model[0].weight, before["0.weight"])
    assert torch.equal(model[1].weight, before["1.weight"]) and torch.equal(model[2].bias, torch.zeros(10))
    init.apply_(model, "constant", value=0.25, layers=["1"])
    assert bool((model[1].weight == 0.25).all()) and torch.equal(model[0].weight, before["0.weight"])
    nested = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Linear(2, 2))
    init.apply_(nested, "constant", value=1.0, layers=["0"])
    assert bool((nested[0][1].weight == 1).all()) and not bool((nested[1].weight == 1).all())


@pytest.mark.parametrize(("only", "error", "message"), [
    (["3"], UnknownNameError, "unknown layers entry '3': use one of 0, 1, 2"),
    ("1", NumstabTypeError, "layers must be a list of module names"),
    ([1], NumstabTypeError, "layers must be a list of module names"),
    (["0"], ModelError, r"cannot apply to any layer of Sequential within layers=\['0'\]"),
])
def test_bad_layers_selection(only, error, message):
    model = tied_lm()
    before = state(model)
    with pytest.raises(error, match=message):
        init.apply_(model, "xavier_normal", layers=only)
    assert_same_state(model, before)


def test_a_layer_of_unknown_convention_is_named_in_a_warning_and_left_alone():
    model = nn.Sequential(nn.Linear(3, 3), nn.Bilinear(3, 3, 2))
    bilinear = state(model[1])
    with pytest.warns(UserWarning, match=r"'1' \(Bilinear\).*torch.nn.init"):
        init.apply_(model, "xavier_normal", generator=gen(0))
    assert_same_state(model[1], bilinear)


def test_a_scheme_that_applies_to_no_layer_is_one_error_naming_the_scheme():
    model = nn.Sequential(nn.Embedding(5, 3), nn.Bilinear(3, 3, 2), nn.LayerNorm(2))
    before = state(model)
    with pytest.raises(ModelError, match=r"scheme='orthogonal' cannot apply to any layer.*'1' \(Bilinear\)"):
        init.apply_(model, "orthogonal")
    assert_same_state(model, before)


def test_gpt2_from_a_config_conv1d_fans_and_the_tied_head():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=64, n_positions=16)
    model = transformers.GPT2LMHeadModel(config)
    embeddings = {k: v.clone() for k, v in model.state_dict().items()
                  if k.endswith(("wte.weight", "wpe.weight"))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # GPT-2 holds no layer of unknown convention
        init.apply_(model, "kaiming_normal", generator=gen(4))
    assert model.lm_head.weight is model.transformer.wte.weight
    assert all(torch.equal(model.state_dict()[k], v) for k, v in embeddings.items())
    projections = [m for m in model.modules() if type(m).__name__ == "Conv1D"]
    assert len(projections) == 8
    for conv in projections:  # c_attn (32, 96), c_proj (32, 32), c_fc (32, 128), mlp.c_proj (128, 32)
        assert_law(conv.weight.double(), stats.norm(0, math.sqrt(2.0 / conv.weight.shape[0])), kurtosis=3.0)


# ---------------------------------------------------------------------------------------------
# validated against each parameter's dtype and writability before anything is written


def test_a_model_built_under_inference_mode_is_refused_before_any_write():
    with torch.inference_mode():
        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ModelError, match=r"parameter '0.weight' was created under torch.inference_mode"):
        init.apply_(model, "xavier_normal", generator=gen(0))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    with torch.inference_mode():  # where such tensors can be written, it works
        init.apply_(model, "constant", value=0.5)
    assert bool((model[2].weight == 0.5).all())


@pytest.mark.parametrize(("dtype", "kwargs", "argument"), [
    (torch.float32, {"scheme": "normal", "scale": 1e39}, "scale=1e+39"),
    (torch.float32, {"scheme": "normal", "scale": 3e38}, "scale=3e+38"),  # a quarter of |draws| > 3.4e38
    (torch.float16, {"scheme": "normal", "scale": 1e5}, "scale=100000.0"),
    (torch.float16, {"scheme": "constant", "value": 70000.0}, "value=70000.0"),
    (torch.bfloat16, {"scheme": "xavier_normal", "bias_std": 1e39}, "bias_std=1e+39"),
])
def test_values_beyond_the_parameter_s_dtype_are_refused_naming_the_argument(dtype, kwargs, argument):
    model = nn.Sequential(nn.Linear(30, 40), nn.Linear(40, 2)).to(dtype)
    before, rng = state(model), torch.get_rng_state()
    with pytest.raises(InvalidArgumentError, match=rf"{re.escape(argument)} gives values beyond"):
        init.apply_(model, **kwargs)  # the global RNG: drawn from, then put back
    assert_same_state(model, before)
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize(("dtype", "kwargs", "argument"), [
    (torch.float32, {"scheme": "normal", "scale": 1e-50}, "scale=1e-50"),
    (torch.float16, {"scheme": "constant", "value": 1e-9}, "value=1e-09"),
    (torch.float32, {"scheme": "xavier_normal", "bias_std": 1e-60}, "bias_std=1e-60"),
])
def test_values_that_all_flush_to_zero_in_the_dtype_are_refused(dtype, kwargs, argument):
    model = nn.Linear(30, 40).to(dtype)
    before = state(model)
    with pytest.raises(InvalidArgumentError, match=rf"{re.escape(argument)} flushes every value .* to zero"):
        init.apply_(model, **kwargs)
    assert_same_state(model, before)
    init.apply_(model, "normal", scale=0.0)  # zeros asked for are zeros
    assert int(torch.count_nonzero(model.weight)) == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_orthogonal_on_a_16_bit_model_is_the_float32_draw_rounded(dtype):
    model = nn.Linear(6, 10).to(dtype)
    init.apply_(model, "orthogonal", activation="tanh", generator=gen(5))
    expected = nn.init.orthogonal_(torch.empty(10, 6), 5 / 3, generator=gen(5)).to(dtype)
    assert model.weight.dtype == dtype and torch.equal(model.weight, expected)


def test_a_weight_with_no_entries_is_one_error_naming_the_layer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Initializing zero-element tensors is a no-op"
        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(0, 4))
    before = state(model)
    message = r"layer '1' \(Linear\) has a weight with no entries, shape \(4, 0\)"
    for scheme, kw in [("critical", {"activation": "tanh"}), ("kaiming_normal", {}), ("xavier_normal", {})]:
        with pytest.raises(ModelError, match=message):
            init.apply_(model, scheme, **kw)
    assert_same_state(model, before)


def test_meta_and_integer_parameters_are_refused():
    with torch.device("meta"):
        meta = nn.Linear(3, 3)
    with pytest.raises(ModelError, match="parameter 'weight' is on the meta device.*to_empty"):
        init.apply_(meta, "xavier_normal")
    model = nn.Linear(3, 3)
    model.weight = nn.Parameter(torch.ones(3, 3, dtype=torch.int64), requires_grad=False)
    with pytest.raises(ModelError, match="'weight' holds torch.int64 values"):
        init.apply_(model, "constant", value=1.0)


def test_an_activation_that_overflows_is_named():
    model = nn.Linear(3, 3)
    before = state(model)
    calls = (lambda: init.gain(torch.exp), lambda: init.apply_(model, "kaiming_normal", activation=torch.exp))
    for call in calls:
        with pytest.raises(InvalidArgumentError, match=r"activation 'exp' overflows: f\(-1e100\), f\(1e10"):
            call()
    assert_same_state(model, before)
    # a polynomial does not overflow there: E[(z^3)^2] = 15
    assert init.gain(lambda x: x**3) == pytest.approx(1 / math.sqrt(15), rel=1e-12)


def test_seed_is_a_generator_seeded_with_it_and_is_validated():
    a, b = nn.Linear(5, 5), nn.Linear(5, 5)
    init.apply_(a, "kaiming_uniform", seed=3)
    init.apply_(b, "kaiming_uniform", generator=gen(3))
    assert torch.equal(a.weight, b.weight)
    for seed, error in [(-1, InvalidArgumentError), (2**64, InvalidArgumentError), (1.5, NumstabTypeError)]:
        with pytest.raises(error, match="seed"):
            init.apply_(a, "kaiming_uniform", seed=seed)
    with pytest.raises(InvalidArgumentError, match="seed= or generator=, not both"):
        init.apply_(a, "kaiming_uniform", seed=1, generator=gen(1))
    assert torch.equal(a.weight, b.weight)
