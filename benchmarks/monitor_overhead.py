"""Claim: GradientMonitor at every=1 costs <= 3% of a training step, less than every usual alternative,
and its own work per step is within 2x of the floor (one read of every gradient at measured bandwidth).

Targets (exit status 1 if missed):
- overhead of ``monitor.step()`` at every=1 <= 3% of the median step, on both reference models;
- that overhead below each baseline's: a per-parameter ``.norm().item()`` loop, TensorBoard
  ``add_histogram`` per parameter, ``torch.autograd.detect_anomaly``;
- median time of ``monitor.step()`` alone <= 2x the floor = gradient bytes / measured read bandwidth.

Reference models (issue 7): a 24-layer tanh MLP (width 512, batch 128, SGD) and a 4-layer
``nn.TransformerEncoder`` (d_model 256, 4 heads, seq 64, batch 16, AdamW). Variants run round-robin
in one process (each round runs every variant once, in rotating order) so machine noise hits all alike;
medians over ``--steps`` rounds after ``--warmup`` rounds.

Run (CPU, one thread):  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor_overhead.py
On a GPU:               python benchmarks/monitor_overhead.py --device cuda --steps 100
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from numstab.monitor import GradientMonitor

TARGET_OVERHEAD = 0.03
TARGET_FLOOR_RATIO = 2.0
VARIANTS = ("nothing", "monitor", "item_loop", "tb_histogram", "detect_anomaly")


@dataclass
class Case:
    """One reference model with its optimizer and a fixed batch."""

    name: str
    model: nn.Module
    opt: torch.optim.Optimizer
    loss: Callable[[], torch.Tensor]


def mlp_case(device: torch.device) -> Case:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(24):
        layers += [nn.Linear(512, 512), nn.Tanh()]
    model = nn.Sequential(*layers).to(device)
    x, y = torch.randn(128, 512, device=device), torch.randn(128, 512, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    return Case("mlp24x512 (SGD)", model, opt, lambda: nn.functional.mse_loss(model(x), y))


def transformer_case(device: torch.device) -> Case:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(256, 4, batch_first=True, dropout=0.0)
    model = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False).to(device)
    x = torch.randn(16, 64, 256, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return Case("transformer4x256 (AdamW)", model, opt, lambda: model(x).pow(2).mean())


def read_bandwidth(device: torch.device, mib: int = 512) -> float:
    """Bytes per second for one read of a buffer far larger than the last-level cache (median of 10 sums)."""
    buf = torch.randn(mib * 2**20 // 4, device=device)
    times = [_timed(lambda: buf.sum(), device) for _ in range(11)][1:]
    return buf.numel() * 4 / statistics.median(times)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


class Runner:
    """Runs one training step of ``case`` under each variant; records step times and the monitor's own."""

    def __init__(self, case: Case, device: torch.device, writer: object, every: int = 1) -> None:
        self.case, self.device, self.writer = case, device, writer
        self.monitor = GradientMonitor(case.model, every=every)
        self.times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        self.alone: dict[str, list[float]] = {v: [] for v in ("monitor", "item_loop", "tb_histogram")}
        self._extras: dict[str, Callable[[], object]] = {
            "monitor": self.monitor.step,
            "item_loop": lambda: [p.grad.norm().item() for p in case.model.parameters()],
            "tb_histogram": self._histograms,
        }
        self.count = 0

    def _histograms(self) -> None:
        for name, p in self.case.model.named_parameters():
            self.writer.add_histogram(f"grad/{name}", p.grad, self.count)

    def step(self, variant: str, record: bool) -> None:
        if variant == "monitor":
            self.monitor.attach()
        try:
            elapsed = _timed(lambda: self._train_step(variant, record), self.device)
        finally:
            self.monitor.detach()
        if record:
            self.times[variant].append(elapsed)

    def _train_step(self, variant: str, record: bool) -> None:
        case = self.case
        case.opt.zero_grad(set_to_none=True)
        guard = torch.autograd.detect_anomaly() if variant == "detect_anomaly" else contextlib.nullcontext()
        with guard:
            case.loss().backward()
        extra = self._extras.get(variant)
        if extra is not None:
            alone = _timed(extra, self.device)
            if record:
                self.alone[variant].append(alone)
        self.count += 1
        case.opt.step()


def run_case(case: Case, device: torch.device, args: argparse.Namespace, bandwidth: float) -> bool:
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as logdir, SummaryWriter(logdir) as writer:
        runner = Runner(case, device, writer, args.every)
        for round_ in range(args.warmup + args.steps):
            shift = round_ % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                runner.step(variant, record=round_ >= args.warmup)
    return report(case, runner, bandwidth)


def report(case: Case, runner: Runner, bandwidth: float) -> bool:
    median = {v: statistics.median(t) for v, t in runner.times.items()}
    base = median["nothing"]
    # whole-step overhead: median over rounds of the paired difference with "nothing" in the same round
    paired = {v: statistics.median((t - b) / b for t, b in zip(runner.times[v], runner.times["nothing"],
                                                                  strict=True)) for v in VARIANTS}
    alone = {v: statistics.median(t) for v, t in runner.alone.items()}
    grad_bytes = sum(p.numel() * p.element_size() for p in case.model.parameters())
    floor = grad_bytes / bandwidth
    steps = len(runner.times["nothing"])
    print(f"\n{case.name}: {grad_bytes / 1e6:.1f} MB of gradients, {steps} steps per variant")
    header = ("variant", "median step ms", "paired overhead", "extra alone ms", "alone/step")
    print(f"{header[0]:<16}{header[1]:>15}{header[2]:>17}{header[3]:>16}{header[4]:>12}")
    for v in VARIANTS:
        extra = (f"{alone[v] * 1e3:>16.3f}{alone[v] / base * 100:>11.2f}%" if v in alone
                 else f"{'(in backward)':>16}")
        print(f"{v:<16}{median[v] * 1e3:>15.2f}{paired[v] * 100:>16.1f}%{extra}")
    ratio = alone["monitor"] / floor
    print(f"floor: {floor * 1e3:.3f} ms (one read of the gradients at {bandwidth / 1e9:.1f} GB/s); "
          f"monitor.step() alone / floor = {ratio:.2f} (target <= {TARGET_FLOOR_RATIO})")
    # on a shared machine a 1-3 ms task is often preempted mid-way (bimodal times): the minimum shows the
    # work itself; the targets stay on medians
    fastest = {v: min(t) * 1e3 for v, t in runner.alone.items()}
    print("fastest extra work (ms): " + ", ".join(f"{v} {t:.3f}" for v, t in fastest.items())
          + f"; monitor fastest / floor = {fastest['monitor'] / (floor * 1e3):.2f}")
    # the monitor's added work is timed alone inside each step (a whole-step difference on a shared machine
    # swings by more than 3%); detect_anomaly works inside forward/backward, so it is compared by whole steps
    ok_overhead = alone["monitor"] / base <= TARGET_OVERHEAD
    ok_baselines = (alone["monitor"] < min(alone["item_loop"], alone["tb_histogram"])
                    and paired["monitor"] < paired["detect_anomaly"])
    ok_floor = ratio <= TARGET_FLOOR_RATIO
    print(f"targets: overhead <= {TARGET_OVERHEAD:.0%}: {ok_overhead}; below every baseline: {ok_baselines}; "
          f"within {TARGET_FLOOR_RATIO}x floor: {ok_floor}")
    return ok_overhead and ok_baselines and ok_floor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", choices=["mlp", "transformer"], default=None)
    parser.add_argument("--every", type=int, default=1, help="the monitor's every= (targets are for 1)")
    args = parser.parse_args()
    device = torch.device(args.device)
    warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
    print(f"torch {torch.__version__}, device {device}, torch threads {torch.get_num_threads()}")
    bandwidth = read_bandwidth(device)
    cases = {"mlp": mlp_case, "transformer": transformer_case}
    chosen = [cases[args.only]] if args.only else list(cases.values())
    print(f"monitor every={args.every}")
    results = [run_case(make(device), device, args, bandwidth) for make in chosen]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
