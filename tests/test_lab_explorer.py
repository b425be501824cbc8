"""numstab.lab.explorer: the networks are apply_'s, the hand-written backward pass is autograd's, the
theory line is numstab.theory's, and the format marks sit where closed forms put them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from numstab import init, theory
from numstab.errors import InvalidArgumentError, NumstabTypeError, UnknownNameError
from numstab.lab import explorer
from numstab.lab.explorer import ExplorerSettings, explore, explorer_inputs, explorer_weights

SMALL = {"width": 8, "depth": 3, "seeds": 2, "bias_std": 0.3}


def _apply_kwargs(settings: ExplorerSettings) -> dict:
    """What apply_ is called with for the explorer's init (its own scheme name and arguments)."""
    n = settings.width
    if settings.init == "normal":
        return {"scheme": "normal", "scale": settings.weight_std / math.sqrt(n)}
    if settings.init == "standard_normal":
        return {"scheme": "normal", "scale": 1.0}
    if settings.init.startswith("xavier"):
        return {"scheme": settings.init}  # gain 1: the chapter's Xavier
    return {"scheme": settings.init, "activation": settings.activation}


@pytest.mark.parametrize("scheme", explorer.INITS)
def test_weights_are_apply_draws(scheme: str) -> None:
    settings = ExplorerSettings(init=scheme, activation="tanh", weight_std=1.3, **SMALL)
    weights, biases = explorer_weights(settings)
    for k in range(settings.seeds):
        layers = [torch.nn.utils.skip_init(torch.nn.Linear, 8, 8) for _ in range(settings.depth)]
        net = torch.nn.Sequential(*layers)
        init.apply_(net, bias_std=settings.bias_std, generator=torch.Generator().manual_seed(k),
                    **_apply_kwargs(settings))
        # float32: the explorer rescales a sigma_w = 1 draw, apply_ draws at the scheme's scale
        torch.testing.assert_close(weights[k], torch.stack([m.weight for m in layers]).detach(),
                                   rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(biases[k], torch.stack([m.bias for m in layers]).detach(),
                                   rtol=1e-5, atol=1e-7)


def _autograd_rms(settings: ExplorerSettings) -> tuple[np.ndarray, np.ndarray]:
    """The same networks in float64 with autograd: RMS of x, a_1..a_L and of dl/dh_0..dl/dh_L."""
    weights, biases = (t.double() for t in explorer_weights(settings))
    x, r = (t.double() for t in explorer_inputs(settings))
    act = getattr(torch, settings.activation) if settings.activation == "tanh" else torch.relu
    h = x.clone().requires_grad_(True)
    hs, pre = [h], [x]
    for layer in range(settings.depth):
        u = F.layer_norm(h, (settings.width,), eps=1e-5) if settings.layer_norm else h
        a = u @ weights[:, layer].transpose(1, 2) + biases[:, layer, None, :]
        h = h + act(a) if settings.residual else act(a)
        h.retain_grad()
        hs.append(h)
        pre.append(a)
    (h * r).sum().backward()
    rms = lambda t: t.detach().square().mean(dim=(1, 2)).sqrt().numpy()  # noqa: E731
    return np.stack([rms(a) for a in pre], axis=1), np.stack([rms(t.grad) for t in hs], axis=1)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_hand_written_passes_equal_autograd(activation: str, residual: bool, layer_norm: bool) -> None:
    settings = ExplorerSettings(activation=activation, init="normal", weight_std=1.4, bias_std=0.2,
                                depth=6, width=16, seeds=2, batch=3, residual=residual, layer_norm=layer_norm)
    data = explore(settings)
    forward, backward = _autograd_rms(settings)
    np.testing.assert_allclose(data.forward_rms, forward, rtol=1e-5)  # float32 against float64
    np.testing.assert_allclose(data.backward_rms, backward, rtol=1e-4)
    assert data.backward_rms[:, -1].tolist() == pytest.approx([1.0, 1.0], rel=1e-6)


def test_theory_lines_are_meanfield_closed_forms() -> None:
    # relu at He's sigma_w = sqrt(2), sigma_b = 0: V(q) = q, chi_1 = 1 at every q (He et al. 2015)
    data = explore(activation="relu", init="kaiming_normal", depth=5, width=16)
    assert data.weight_std == pytest.approx(2**0.5, rel=1e-12)
    np.testing.assert_allclose(data.theory_forward_rms, [1.0] + [2**0.5] * 5, rtol=1e-12)
    np.testing.assert_allclose(data.theory_backward_rms, np.ones(6), rtol=1e-12)
    assert (data.chi1, data.phase) == (pytest.approx(1.0, abs=1e-12), "critical")
    # tanh at sigma_w^2 = 1.5, sigma_b^2 = 0.05: chi_1 = 0.9386 (Schoenholz et al. 2017's example)
    data = explore(activation="tanh", weight_std=1.5**0.5, bias_std=0.05**0.5, depth=40, width=16)
    assert round(data.chi1, 4) == 0.9386
    q = [1.5 + 0.05]
    for _ in range(39):
        q.append(theory.variance_map("tanh", 1.5**0.5, 0.05**0.5, q[-1]))
    np.testing.assert_allclose(data.theory_forward_rms[1:], np.sqrt(q), rtol=1e-12)
    # deep in the network q_l ~ q*, so the gradient ratio per layer ~ sqrt(chi_1)
    ratio = data.theory_backward_rms[20] / data.theory_backward_rms[21]
    assert ratio == pytest.approx(0.9386**0.5, abs=1e-3)


@pytest.mark.parametrize(
    ("changes", "decades"),
    [
        ({"activation": "tanh", "weight_std": 1.5**0.5, "bias_std": 0.05**0.5}, 0.05),
        ({"activation": "sigmoid", "init": "xavier_uniform"}, 0.05),
        ({"activation": "tanh", "init": "orthogonal"}, 0.05),
        # relu's log-variance diffuses at finite width (variance ~ 5 L / n, Hanin & Nica 2019): about
        # 0.17 decades for the 4-seed mean at L = 30, n = 256
        ({"activation": "relu", "init": "kaiming_normal"}, 0.25),
    ],
)
def test_real_networks_follow_theory(changes: dict, decades: float) -> None:
    data = explore(depth=30, width=256, seeds=4, batch=16, **changes)
    for measured, predicted in ((data.forward_center, data.theory_forward_rms),
                                (data.backward_center, data.theory_backward_rms)):
        assert np.max(np.abs(np.log10(measured / predicted))) < decades


def test_format_exits_where_closed_forms_put_them() -> None:
    # N(0, 1) entries at width 256 multiply the RMS by sqrt(256) = 16 per layer: 16^4 = 65536 passes
    # float16's max 65504 at layer 4 (16^3 = 4096 is 16 standard deviations below it)
    data = explore(activation="identity", init="standard_normal", depth=30, width=256, fmt="float16")
    assert (data.forward_exit.layer, data.forward_exit.kind) == (4, "overflow")
    assert (data.backward_exit.layer, data.backward_exit.kind) == (26, "overflow")  # 4 layers from the output
    # float32: 16^32 = 3.4e38 is float32's max
    assert explore(activation="identity", init="standard_normal", depth=40, width=256,
                   fmt="float32").forward_exit.layer == 32
    # RMS 0.1^l: float16 flushes |x| <= 2^-25 to zero; P(|z| <= 2^-25 / 1e-6) = 2.4% > 1% at l = 6,
    # P(|z| <= 2^-25 / 1e-5) = 0.24% at l = 5
    data = explore(activation="identity", weight_std=0.1, depth=10, width=256, fmt="float16")
    assert (data.forward_exit.layer, data.forward_exit.kind) == (6, "underflow")
    assert explore(activation="tanh", init="xavier_normal", depth=10, width=64).forward_exit is None


def test_the_chapters_three_lessons_in_words() -> None:
    sigmoid = explore(activation="sigmoid", init="normal", weight_std=1.0, depth=50, width=256)
    assert sigmoid.verdict.startswith("gradients shrink")
    assert sigmoid.backward_center[0] < 1e-20
    products = explore(activation="identity", init="standard_normal", depth=50, width=256)
    assert products.verdict.startswith("gradients grow ×")
    # Xavier keeps the scale of the linear layers it was derived for; critical that of any activation
    # with a critical point (tanh at sigma_b = 0.3: q* > 0, chi_1 = 1)
    for changes in ({"activation": "identity", "init": "xavier_normal"},
                    {"activation": "tanh", "init": "critical", "bias_std": 0.3},
                    {"activation": "relu", "init": "critical"}):
        kept = explore(depth=50, width=256, **changes)
        assert kept.verdict.startswith("gradients keep their scale"), (changes, kept.verdict)


def test_depth_slices_the_same_networks() -> None:
    shallow = explore(activation="tanh", depth=10, width=32)
    deep = explore(activation="tanh", depth=20, width=32)
    np.testing.assert_array_equal(shallow.forward_rms, deep.forward_rms[:, :11])


def test_same_settings_same_numbers_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    first = explore(activation="gelu", init="orthogonal", depth=12, width=32, bias_std=0.1)
    explorer._draws.cache_clear()
    again = explore(activation="gelu", init="orthogonal", depth=12, width=32, bias_std=0.1)
    assert torch.equal(torch.random.get_rng_state(), state)
    np.testing.assert_array_equal(first.forward_rms, again.forward_rms)
    np.testing.assert_array_equal(first.backward_rms, again.backward_rms)


def test_no_theory_line_where_theory_does_not_apply() -> None:
    data = explore(activation="tanh", residual=True, layer_norm=True, depth=5, width=16)
    assert data.theory_forward_rms is None and data.theory_backward_rms is None
    assert "residual and LayerNorm" in data.theory_note
    assert np.isnan(data.curves("forward")["theory"]).all()
    assert math.isnan(data.chi1)


def test_curves_are_the_band_and_the_geometric_mean() -> None:
    data = explore(depth=4, width=16, seeds=3)
    columns = data.curves("forward")
    np.testing.assert_allclose(columns["center"], np.exp(np.log(data.forward_rms).mean(axis=0)), rtol=1e-12)
    np.testing.assert_array_equal(columns["low"], data.forward_rms.min(axis=0))
    np.testing.assert_array_equal(columns["high"], data.forward_rms.max(axis=0))
    with pytest.raises(UnknownNameError, match="direction"):
        data.curves("sideways")


@pytest.mark.parametrize(
    ("changes", "error", "names"),
    [
        ({"activation": "relu6"}, UnknownNameError, "activation 'relu6'"),
        ({"init": "he"}, UnknownNameError, "init 'he'"),
        ({"fmt": "float64"}, UnknownNameError, "fmt 'float64'"),
        ({"depth": 201}, InvalidArgumentError, "depth must be <= 200"),
        ({"width": 1}, InvalidArgumentError, "width must be >= 2"),
        ({"weight_std": -1.0}, InvalidArgumentError, "weight_std"),
        ({"weight_std": 1e200}, InvalidArgumentError, "weight_std must be <= 1000"),
        ({"bias_std": float("inf")}, InvalidArgumentError, "bias_std"),
        ({"seeds": 2.5}, NumstabTypeError, "seeds"),
        ({"seeds": 9}, InvalidArgumentError, "seeds must be <= 8"),
        ({"seed": 2**64}, InvalidArgumentError, "seed must be <= 999000"),
        ({"residual": "yes"}, NumstabTypeError, "residual"),
    ],
)
def test_bad_settings_name_the_argument(changes: dict, error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        ExplorerSettings(**changes)


def test_critical_without_a_critical_point_is_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="no critical weight_std"):
        explore(activation="softplus", init="critical", depth=3, width=8)


def test_networks_that_do_not_fit_are_refused_before_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    from numstab import resources
    from numstab.errors import InsufficientMemoryError

    monkeypatch.setattr(resources, "available_memory", lambda: 10**8)  # 100 MB left
    explorer._draws.cache_clear()
    # 2 x 4 x 200 x 512 x 513 x 4 bytes of weights (twice while growing) + 4 x 201 x 4 x 8 x 512 x 4 of values
    with pytest.raises(InsufficientMemoryError, match="seeds=4, batch=8 needs about 1.7 GB"):
        explore(width=512, depth=200)
    assert explorer._draws.cache_info().currsize == 0  # nothing drawn


def test_repr_is_one_short_line_and_str_the_verdict() -> None:
    data = explore(ExplorerSettings(activation="tanh", depth=50, width=32, seeds=2))
    text = repr(data)
    assert "\n" not in text and len(text) < 600, text
    assert "forward_rms=ndarray(shape=(2, 51))" in text
    assert str(data).startswith("tanh, sigma_w ") and str(data).endswith(data.verdict)
