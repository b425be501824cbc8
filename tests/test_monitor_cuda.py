"""GradientMonitor on a CUDA device: fp16 autocast with GradScaler, one transfer per recorded step, extremes.

Skipped without CUDA (CI has none); run on a GPU machine with
``python -m pytest tests/test_monitor_cuda.py``. CPU autocast (bfloat16) is covered by the other files.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from test_monitor_support import ARCHITECTURES, plant_backward, plant_forward
from torch import nn

from numstab.monitor import GradientMonitor, locate_nonfinite

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def _setup(arch: str) -> tuple[nn.Module, torch.Tensor]:
    factory, shape, _ = ARCHITECTURES[arch]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(CUDA).requires_grad_()
    return factory(seed=0).to(CUDA), x


def _loss(out: torch.Tensor) -> torch.Tensor:
    return out.float().pow(2).mean()


@pytest.mark.parametrize("arch,k", [(a, t[i]) for a, (_, _, t) in ARCHITECTURES.items() for i in (0, 1, -1)])
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_fp16_autocast_fault_is_localised(arch: str, k: str, phase: str) -> None:
    model, x = _setup(arch)
    scaler = torch.amp.GradScaler("cuda")
    plant = plant_forward if phase == "forward" else plant_backward
    with plant(model.get_submodule(k), math.inf), torch.autocast("cuda", dtype=torch.float16):
        culprit = locate_nonfinite(model, x, _loss, scaler=scaler)
    assert culprit is not None and (culprit.module, culprit.phase) == (k, phase)
    if phase == "forward" and not k.endswith("self_attn"):
        assert culprit.dtype == torch.float16


def _amp_step(model, opt, scaler, monitor, x):
    opt.zero_grad()
    with torch.autocast("cuda", dtype=torch.float16):
        loss = _loss(model(x))
    scaler.scale(loss).backward()
    stats = monitor.step(scaler)
    scaler.step(opt)
    scaler.update()
    return stats


def test_fp16_norms_are_unscaled_and_overflow_is_skipped() -> None:
    model, x = _setup("transformer")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**40)  # overflows fp16 activations' gradients
    with GradientMonitor(model) as monitor:
        params = [p.detach().clone() for p in model.parameters()]
        first = _amp_step(model, opt, scaler, monitor, x)
        assert first.skipped and first.scale == 2.0**40 and first.events == ()
        assert all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))
        assert opt.state_dict()["state"] == {}
        stats = [_amp_step(model, opt, scaler, monitor, x) for _ in range(30)]
        healthy = next(s for s in stats if not s.skipped)
        assert healthy.scale < 2.0**40
        # unscaled: the float64 norm of the scaled gradients divided by the scale (a power of two)
        model.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            loss = _loss(model(x))
        scaler.scale(loss).backward()
        expected = torch.linalg.vector_norm(
            torch.cat([p.grad.double().flatten() for p in model.parameters()])).item() / scaler.get_scale()
        assert monitor.step(scaler).global_norm == pytest.approx(expected, rel=1e-6)


def test_one_device_to_host_transfer_per_recorded_step() -> None:
    model, x = _setup("mlp")
    with GradientMonitor(model, every=2) as monitor:
        counts = []
        for _ in range(4):
            _loss(model(x)).backward()
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    monitor.step()
            finally:
                torch.cuda.set_sync_debug_mode("default")
            counts.append(sum("synchroniz" in str(w.message) for w in caught))
    assert counts == [1, 0, 1, 0]


def test_non_blocking_step_never_synchronises_and_delivers_the_same_stats() -> None:
    def run(non_blocking: bool) -> tuple[list[int], list[dict]]:
        model, x = _setup("transformer")
        with GradientMonitor(model, non_blocking=non_blocking) as monitor:
            counts = []
            for _ in range(4):
                model.zero_grad()
                _loss(model(x)).backward()
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        monitor.step()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
                counts.append(sum("synchroniz" in str(w.message) for w in caught))
        return counts, [s.to_dict() for s in monitor.history]

    waits, blocking = run(False)
    none, deferred = run(True)
    assert waits == [1, 1, 1, 1] and none == [0, 0, 0, 0]
    assert [d["step"] for d in deferred] == [d["step"] for d in blocking] == [0, 1, 2, 3]  # last: at detach
    for d, b in zip(deferred, blocking, strict=True):  # two runs: CUDA kernels may differ in the last bits
        assert d["layer_norms"] == pytest.approx(b["layer_norms"], rel=1e-6)


@pytest.mark.parametrize("value", [1e-30, 1e25])
def test_extremes_on_cuda(value: float) -> None:
    model = nn.Linear(64, 64).to(CUDA)
    with GradientMonitor(model, group_by="parameter") as monitor:
        model(torch.ones(2, 64, device=CUDA)).sum().backward()
        with torch.no_grad():
            for p in model.parameters():
                p.grad.fill_(value)
            model.bias.grad[7] = math.nan if value > 1 else math.inf
        stats = monitor.step()
    v32 = torch.tensor(value, dtype=torch.float32).item()
    assert stats.layer_norms["weight"] == pytest.approx(64 * v32, rel=1e-6)
    assert stats.culprits == ("bias",)


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_training_bit_identical_on_cuda(opt_name: str) -> None:
    def train(monitor: bool) -> list[torch.Tensor]:
        model, x = _setup("mlp")
        opt = (torch.optim.SGD(model.parameters(), lr=0.05) if opt_name == "sgd"
               else torch.optim.AdamW(model.parameters(), lr=1e-3))
        mon = GradientMonitor(model).attach() if monitor else None
        for _ in range(50):
            opt.zero_grad()
            _loss(model(x)).backward()
            if mon is not None:
                mon.step()
            opt.step()
        if mon is not None:
            mon.detach()
        return [p.detach().clone() for p in model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(train(False), train(True), strict=True))
