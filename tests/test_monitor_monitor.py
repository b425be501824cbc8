"""GradientMonitor: contract, bit-identical training, hooks removed, bad input, bounded memory, TensorBoard,
trend events and GradScaler (CPU autocast, bfloat16)."""

from __future__ import annotations

import gc
import math
import sys

import numpy as np
import pytest
import torch
from test_monitor_support import mlp, plant_forward
from torch import nn

import numstab
from numstab.errors import InvalidArgumentError, ModelError, NumstabError, NumstabTypeError
from numstab.monitor import GradientMonitor, MonitorStateError, StepStats, TrendConfig


def _batch(seed: int = 0, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 8, generator=g), torch.randn(n, 1, generator=g)


def _train(opt_name: str, steps: int, monitor: bool) -> list[torch.Tensor]:
    net = mlp(depth=4, seed=3)
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9) if opt_name == "sgd"
           else torch.optim.AdamW(net.parameters(), lr=1e-3))
    mon = GradientMonitor(net).attach() if monitor else None
    try:
        for step in range(steps):
            x, y = _batch(step)
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            if mon is not None:
                mon.step()
            opt.step()
    finally:
        if mon is not None:
            mon.detach()
    return [p.detach().clone() for p in net.parameters()]


def _norm64(params) -> torch.Tensor:
    """float64 oracle: the L2 norm of the concatenated gradients."""
    return torch.linalg.vector_norm(torch.cat([p.grad.double().flatten() for p in params]))


def _hook_count(model: nn.Module) -> int:
    return sum(len(p._post_accumulate_grad_hooks or {}) for p in model.parameters())


def test_public_names_resolve_lazily() -> None:
    assert numstab.GradientMonitor is GradientMonitor


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_training_with_monitor_is_bit_identical(opt_name: str) -> None:
    without, with_monitor = _train(opt_name, 50, False), _train(opt_name, 50, True)
    assert all(torch.equal(a, b) for a, b in zip(without, with_monitor, strict=True))


def test_step_stats_against_float64_reference() -> None:
    net = mlp(depth=2)
    with GradientMonitor(net) as monitor:
        x, y = _batch()
        nn.functional.mse_loss(net(x), y).backward()
        stats = monitor.step()
    assert isinstance(stats, StepStats) and stats.step == 0 and stats.scale is None and not stats.skipped
    assert list(stats.layer_norms) == ["0", "2", "4"]
    for name, value in stats.layer_norms.items():
        assert value == pytest.approx(_norm64(net.get_submodule(name).parameters()).item(), rel=1e-6)
    assert stats.global_norm == pytest.approx(_norm64(net.parameters()).item(), rel=1e-6)
    assert stats.to_dict()["layer_norms"] == stats.layer_norms


def test_group_by_parameter_and_root_parameters() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.tensor(2.0))
            self.fc = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gain * self.fc(x)

    net = Scaled()
    with GradientMonitor(net, group_by="parameter") as by_param:
        net(torch.ones(2, 3)).sum().backward()
        assert list(by_param.step().layer_norms) == ["gain", "fc.weight", "fc.bias"]
    net.zero_grad()
    with GradientMonitor(net) as by_module:
        net(torch.ones(2, 3)).sum().backward()
        stats = by_module.step()
    assert list(stats.layer_norms) == ["(root)", "fc"]
    assert stats.layer_norms["fc"] == pytest.approx(2.0 * math.sqrt(2 * 2 * 3 + 2 * 2), rel=1e-6)


def test_every_records_one_step_in_n_and_history_is_bounded() -> None:
    net = mlp(depth=1)
    returned = []
    with GradientMonitor(net, every=3, history=2) as monitor:
        for _ in range(10):
            net(torch.ones(1, 8)).sum().backward()
            returned.append(monitor.step())
    assert [s.step if s else None for s in returned] == [0, None, None, 3, None, None, 6, None, None, 9]
    assert [s.step for s in monitor.history] == [6, 9]


def test_hooks_removed_after_detach_and_after_exception() -> None:
    net = mlp(depth=2)
    monitor = GradientMonitor(net).attach()
    assert _hook_count(net) == 6 and monitor.attached
    monitor.detach()
    monitor.detach()  # idempotent
    assert _hook_count(net) == 0 and not monitor.attached
    with pytest.raises(RuntimeError, match="boom"), GradientMonitor(net):
        assert _hook_count(net) == 6
        raise RuntimeError("boom")
    assert _hook_count(net) == 0


def test_bad_input_is_a_clear_error() -> None:
    net = mlp(depth=1)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ModelError, match="no trainable parameters"):
        GradientMonitor(frozen)
    with pytest.raises(InvalidArgumentError, match="every must be >= 1, got 0"):
        GradientMonitor(net, every=0)
    with pytest.raises(InvalidArgumentError, match="history must be >= 1, got 0"):
        GradientMonitor(net, history=0)
    with pytest.raises(NumstabTypeError, match="every must be an integer"):
        GradientMonitor(net, every=1.5)
    with pytest.raises(NumstabTypeError, match="torch.nn.Module"):
        GradientMonitor(torch.ones(3))
    with pytest.raises(InvalidArgumentError, match="group_by"):
        GradientMonitor(net, group_by="layer")
    monitor = GradientMonitor(net)
    with pytest.raises(MonitorStateError, match="not attached"):
        monitor.step()
    with monitor:
        with pytest.raises(MonitorStateError, match="already attached"):
            monitor.attach()
        with pytest.raises(MonitorStateError, match="before any backward"):
            monitor.step()
        net(torch.ones(1, 8)).sum().backward()
        monitor.step()
        with pytest.raises(MonitorStateError, match="before any backward since the last step"):
            monitor.step()
    assert issubclass(MonitorStateError, NumstabError)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _deep_size(obj: object, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set)):
        size += sum(_deep_size(v, seen) for v in obj)
    elif hasattr(obj, "__dataclass_fields__"):
        size += sum(_deep_size(getattr(obj, f), seen) for f in obj.__dataclass_fields__)
    return size


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_memory_flat_over_10000_recorded_steps() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
    x = torch.ones(1, 4)
    with GradientMonitor(net, history=1000) as monitor:
        for _ in range(1200):  # fill the ring buffer and warm up allocators
            net(x).sum().backward()
            monitor.step()
        history_bytes = _deep_size(list(monitor.history))
        gc.collect()
        before = _rss_bytes()
        for _ in range(10_000):
            net(x).sum().backward()
            monitor.step()
        gc.collect()
        grown = _rss_bytes() - before
    assert len(monitor.history) == 1000 and monitor.history[-1].step == 11_199
    assert grown < history_bytes, (grown, history_bytes)


def test_tensorboard_scalars_and_histograms_read_back(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    net = mlp(depth=2)
    with SummaryWriter(tmp_path) as writer, GradientMonitor(net, writer=writer, histogram_every=2) as monitor:
        stats = []
        for step in range(4):
            net.zero_grad()
            net(_batch(step)[0]).sum().backward()
            stats.append(monitor.step())
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0}).Reload()
    tags = events.Tags()
    assert {"grad_norm/0", "grad_norm/2", "grad_norm/4", "grad_norm/global"} <= set(tags["scalars"])
    read = [e.value for e in events.Scalars("grad_norm/2")]
    np.testing.assert_allclose(read, [s.layer_norms["2"] for s in stats], rtol=1e-6)  # stored as float32
    assert [e.step for e in events.Histograms("grad/0.weight")] == [0, 2]


def test_vanishing_and_exploding_events_name_the_layer() -> None:
    net = mlp(depth=2)
    config = TrendConfig(vanish_below=1e-6, explode_factor=50.0, window=8, min_history=4)
    with GradientMonitor(net, trends=config) as monitor:
        kinds = []
        for step in range(8):
            net.zero_grad()
            net(_batch(step)[0]).sum().backward()
            with torch.no_grad():
                for p in net[0].parameters():
                    p.grad.mul_(1e-9 if step == 5 else 1.0)  # layer "0" vanishes once
                net[2].weight.grad.mul_(1e4 if step == 7 else 1.0)  # layer "2" explodes once
            kinds.append([(e.kind, e.layers) for e in monitor.step().events])
    assert kinds[:5] == [[]] * 5 and kinds[6] == []
    assert kinds[5] == [("vanishing", ("0",))]
    assert kinds[7] == [("exploding", ("2",))]
    assert [e.kind for e in monitor.events] == ["vanishing", "exploding"]


def test_nonfinite_gradient_without_scaler_is_a_fault_event() -> None:
    net = mlp(depth=2)
    with GradientMonitor(net) as monitor, plant_forward(net[2], math.nan):
        net(torch.ones(1, 8)).sum().backward()
        stats = monitor.step()
    assert stats.nonfinite and not stats.skipped
    # the NaN written over one element of layer 2's output reaches layer 4's weight gradient only: the
    # overwritten element gets no gradient, so nothing non-finite flows further back
    assert stats.culprits == ("4.weight",)
    assert [e.kind for e in stats.events] == ["nonfinite"]


def _amp_step(net, opt, scaler, monitor, x, y, *, unscale_first: bool = False):
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.mse_loss(net(x).float(), y)
    scaler.scale(loss).backward()
    if unscale_first:
        scaler.unscale_(opt)
    stats = monitor.step(scaler)
    scaler.step(opt)
    scaler.update()
    return stats


@pytest.mark.parametrize("unscale_first", [False, True])
def test_grad_scaler_norms_are_unscaled(unscale_first: bool) -> None:
    x, y = _batch()
    reference = mlp(depth=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nn.functional.mse_loss(reference(x).float(), y).backward()
    expected = _norm64(reference.parameters())
    net = mlp(depth=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    with GradientMonitor(net) as monitor:
        stats = _amp_step(net, opt, scaler, monitor, x, y, unscale_first=unscale_first)
    # power-of-two scaling is exact in bfloat16, so the unscaled norm equals the unscaled run's
    assert stats.scale == 2.0**12 and not stats.skipped
    assert stats.global_norm == pytest.approx(expected.item(), rel=1e-6)


def test_grad_scaler_overflow_is_skipped_not_an_explosion_and_changes_nothing() -> None:
    net = mlp(depth=2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127)
    x, y = _batch()
    y = 30.0 * y  # largest gradient 26: scaled by 2**127 = 1.7e38 it overflows float32 (max 3.4e38)
    with GradientMonitor(net) as monitor:
        params = [p.detach().clone() for p in net.parameters()]
        first = _amp_step(net, opt, scaler, monitor, x, y)
        assert first.skipped and first.nonfinite and first.scale == 2.0**127 and first.events == ()
        assert all(torch.equal(a, b) for a, b in zip(params, net.parameters(), strict=True))
        assert opt.state_dict()["state"] == {}  # AdamW never stepped: no moments, no step count
        stats = [first] + [_amp_step(net, opt, scaler, monitor, x, y) for _ in range(7)]
    skipped = [s for s in stats if s.skipped]
    assert [s.scale for s in skipped] == [2.0 ** (127 - i) for i in range(len(skipped))]  # halved each time
    finite = stats[len(skipped)]  # backed off below 3.4e38 / 26 = 2**123.7, within the default patience
    assert not finite.skipped and finite.scale < 2.0**124 and math.isfinite(finite.global_norm)
    assert not any(e.kind == "nonfinite" for s in stats for e in s.events)


def test_nonfinite_persisting_as_scale_falls_is_a_fault() -> None:
    net = mlp(depth=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    x, y = _batch()
    with GradientMonitor(net, trends=TrendConfig(amp_patience=3)) as monitor, plant_forward(net[2], math.nan):
        stats = [_amp_step(net, opt, scaler, monitor, x, y) for _ in range(4)]
    assert [s.scale for s in stats] == [2.0**10, 2.0**9, 2.0**8, 2.0**7]
    assert all(s.skipped for s in stats)
    # reported once when the patience runs out; the next step repeats it and is held back (rate limit)
    assert [[(e.kind, e.count) for e in s.events] for s in stats] == [[], [], [("nonfinite", 1)], []]


def test_parameters_without_gradient_are_left_out() -> None:
    net = mlp(depth=2)
    unused = nn.Linear(3, 3)  # registered but not called: its parameters get no gradient
    net.add_module("unused", unused)
    with GradientMonitor(net) as monitor:
        net[:5](torch.ones(1, 8)).sum().backward()
        stats = monitor.step()
    assert list(stats.layer_norms) == ["0", "2", "4"]
    assert stats.global_norm == pytest.approx(_norm64(net[:5].parameters()).item(), rel=1e-6)


def _run(monitor: GradientMonitor, net: nn.Module, steps: int) -> list[StepStats | None]:
    returned = []
    for step in range(steps):
        net.zero_grad()
        nn.functional.mse_loss(net(_batch(step)[0]), _batch(step)[1]).backward()
        returned.append(monitor.step())
    return returned


@pytest.mark.parametrize("every", [1, 2])
def test_non_blocking_delivers_the_same_stats_one_call_later(every: int) -> None:
    net = mlp(depth=2)
    with GradientMonitor(net, every=every) as blocking:
        now = _run(blocking, net, 6)
    with GradientMonitor(net, every=every, non_blocking=True) as deferred:
        later = _run(deferred, net, 6)
        last = deferred.flush()
    recorded = [s for s in now if s is not None]
    assert [s.step for s in recorded] == list(range(0, 6, every))
    as_dicts = [s.to_dict() if s else None for s in now]
    assert [s.to_dict() if s else None for s in later + [last]] == [None] + as_dicts
    assert [s.to_dict() for s in deferred.history] == [s.to_dict() for s in blocking.history]


def test_non_blocking_rechecks_the_extremes_while_the_gradients_are_that_steps() -> None:
    net = nn.Linear(100, 1, bias=False)
    with GradientMonitor(net, non_blocking=True) as monitor:
        net(torch.full((1, 100), 1e-30)).sum().backward()  # weight gradient 1e-30: the float32 pass gives 0
        assert monitor.step() is None
        net.zero_grad()
        net(torch.ones(1, 100)).sum().backward()  # the next step's gradient replaces it
        first = monitor.step()
    assert first.step == 0 and first.layer_norms["(root)"] == pytest.approx(1e-29, rel=1e-6)
    assert monitor.history[-1].layer_norms["(root)"] == pytest.approx(10.0, rel=1e-6)  # read at detach


def test_first_step_numbers_the_steps_and_sets_which_are_recorded() -> None:
    net = mlp(depth=1)
    with GradientMonitor(net, every=5, first_step=1) as monitor:
        returned = _run(monitor, net, 10)
        assert monitor.next_step == 11
    assert [i + 1 for i, s in enumerate(returned) if s is not None] == [5, 10]
    assert [s.step for s in monitor.history] == [5, 10]
    with pytest.raises(InvalidArgumentError, match="first_step must be >= 0"):
        GradientMonitor(net, first_step=-1)


def test_a_persisting_event_is_reported_once_per_repeat_after_with_a_count() -> None:
    net = mlp(depth=2)
    with GradientMonitor(net, trends=TrendConfig(vanish_below=1e-6, repeat_after=4)) as monitor:
        for _ in range(10):
            net.zero_grad()
            net(torch.ones(1, 8)).sum().backward()
            with torch.no_grad():
                for p in net[0].parameters():
                    p.grad.mul_(1e-9)  # layer "0" vanishes at every step
            monitor.step()
    reported = [(e.step, e.layers, e.count) for e in monitor.events]
    assert reported == [(0, ("0",), 1), (4, ("0",), 5), (8, ("0",), 9)]


def test_real_training_raises_no_event() -> None:
    from test_monitor_support import TinyTransformer

    model = TinyTransformer(seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(2)
    with GradientMonitor(model) as monitor:
        for _ in range(60):
            x = torch.randn(4, 5, 6, generator=g)
            opt.zero_grad()
            nn.functional.mse_loss(model(x), x[:, :, :1].mean(dim=1)).backward()
            monitor.step()
            opt.step()
    assert list(monitor.events) == []


def test_culprit_says_when_the_weights_were_already_broken() -> None:
    net = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 1))
    x = torch.ones(2, 8)
    with torch.no_grad():
        net[0].weight.fill_(1.0)  # outputs 8 + bias, about 8
        net[1].weight.fill_(1e37)  # an earlier update blew it up: 8 * 8 * 1e37 overflows float32 (3.4e38)
    huge = GradientMonitor(net).locate_nonfinite(x, lambda out: out.sum())
    assert (huge.module, huge.phase, huge.weights) == ("1", "forward", "huge")
    assert huge.max_abs_weight == pytest.approx(1e37, rel=1e-6)
    with torch.no_grad():
        net[1].weight.fill_(0.5)
        net[2].weight[0, 3] = math.nan
    broken = GradientMonitor(net).locate_nonfinite(x, lambda out: out.sum())
    assert (broken.module, broken.weights) == ("2", "nonfinite")
    with torch.no_grad():
        net[2].weight[0, 3] = 0.5
    with plant_forward(net[2], math.inf):
        fresh = GradientMonitor(net).locate_nonfinite(x, lambda out: out.sum())
    assert (fresh.module, fresh.weights) == ("2", "finite")
    assert fresh.max_abs_weight == max(p.abs().max().item() for p in net[2].parameters())
    assert fresh.to_dict()["weights"] == "finite"


def test_locate_with_a_forward_of_ones_own() -> None:
    net = mlp(depth=2)
    x = torch.ones(3, 8)
    with plant_forward(net[2], math.nan):
        culprit = GradientMonitor(net).locate_nonfinite({"x": x}, lambda out: out["y"].sum(),
                                                        forward=lambda batch: {"y": net(batch["x"])})
    assert (culprit.module, culprit.phase) == ("2", "forward")
