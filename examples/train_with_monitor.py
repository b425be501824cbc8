"""Train a small network with numstab.GradientMonitor watching its gradients: plain, AMP, or DDP.

    python examples/train_with_monitor.py plain             # float32 loop, prints the layer norms
    python examples/train_with_monitor.py amp               # autocast + GradScaler (fp16 CUDA, bf16 CPU)
    python examples/train_with_monitor.py ddp --world 2     # DistributedDataParallel, gloo, CPU processes
    python examples/train_with_monitor.py plain --logdir runs/monitor   # TensorBoard scalars, histograms
    python examples/train_with_monitor.py plain --fault 10  # plant a NaN at step 10, see it located

Every mode uses the same three lines: wrap the loop in ``with GradientMonitor(model) as monitor:``, call
``monitor.step()`` (``monitor.step(scaler)`` under AMP) after ``backward()``, and, when a step comes back
non-finite, replay that batch with ``monitor.locate_nonfinite(x, loss_fn, y)`` to name the module that did it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from numstab.monitor import GradientMonitor


def make_model(depth: int = 8, width: int = 64) -> nn.Sequential:
    """A deep tanh MLP: deep enough for the monitor's per-layer view to matter."""
    layers: list[nn.Module] = [nn.Linear(16, width), nn.Tanh()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def batch(step: int, device: torch.device, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic regression data, seeded by the step number (the same batch can be replayed)."""
    g = torch.Generator().manual_seed(step)
    x = torch.randn(size, 16, generator=g)
    return x.to(device), x[:, :1].sin().to(device)


def plant_nan(model: nn.Sequential, args: argparse.Namespace, step: int) -> contextlib.AbstractContextManager:
    """A forward hook writing NaN into layer 4's output at step ``--fault`` (a stand-in for a real bug)."""
    if step != args.fault:
        return contextlib.nullcontext()
    return model[4].register_forward_hook(lambda m, a, out: out * float("nan"))


def report(stats, monitor: GradientMonitor, x, y, rank: int = 0, scaler=None) -> None:
    """Print the recorded step; on a non-finite one, locate the module that produced it."""
    if stats is None:
        return
    if stats.nonfinite:
        culprit = monitor.locate_nonfinite(x, nn.functional.mse_loss, y, scaler=scaler)
        if rank == 0:
            print(f"step {stats.step}: non-finite gradients (skipped={stats.skipped}) -> {culprit}")
        return
    if rank == 0:
        shown = ", ".join(f"{k}={v:.2e}" for k, v in list(stats.layer_norms.items())[:4])
        print(f"step {stats.step}: |g|={stats.global_norm:.3e}  {shown} ...  scale={stats.scale}"
              + "".join(f"\n  event: {e.message}" for e in stats.events))


def train_plain(args: argparse.Namespace) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = make_model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    writer = _writer(args.logdir)
    with GradientMonitor(model, every=args.every, writer=writer, histogram_every=10) as monitor:
        for step in range(args.steps):
            x, y = batch(step, device)
            opt.zero_grad()
            with plant_nan(model, args, step):
                nn.functional.mse_loss(model(x), y).backward()
                stats = monitor.step()
                report(stats, monitor, x, y)
            opt.step()
    if writer is not None:
        writer.close()


def train_amp(args: argparse.Namespace) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    torch.manual_seed(0)
    model = make_model().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type)
    with GradientMonitor(model, every=args.every) as monitor:
        for step in range(args.steps):
            x, y = batch(step, device)
            opt.zero_grad()
            with plant_nan(model, args, step), torch.autocast(device.type, dtype=dtype):
                loss = nn.functional.mse_loss(model(x).float(), y)
                scaler.scale(loss).backward()
                stats = monitor.step(scaler)  # before scaler.update(): norms unscaled, skips marked
                report(stats, monitor, x, y, scaler=scaler)
            scaler.step(opt)
            scaler.update()


def _ddp_worker(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # same initial weights on every rank
        model = make_model()
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
        with GradientMonitor(ddp, every=args.every) as monitor:
            for step in range(args.steps):
                x, y = (t.chunk(world)[rank] for t in batch(step, torch.device("cpu")))
                opt.zero_grad()
                faulty = args.fault if rank == world - 1 else -1  # only the last rank misbehaves
                with plant_nan(model, argparse.Namespace(fault=faulty), step):
                    nn.functional.mse_loss(ddp(x), y).backward()
                    stats = monitor.step()
                    if stats is not None and stats.nonfinite and rank == 0:
                        print(f"step {stats.step}: culprit ranks {stats.culprit_ranks}")
                    report(stats, monitor, x, y, rank)
                opt.step()
    finally:
        dist.destroy_process_group()


def train_ddp(args: argparse.Namespace) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_ddp_worker, args=(args.world, port, args), nprocs=args.world, join=True)


def _writer(logdir: str | None):
    if logdir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(logdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["plain", "amp", "ddp"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--fault", type=int, default=-1, help="plant a NaN at this step (-1: never)")
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--logdir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    {"plain": train_plain, "amp": train_amp, "ddp": train_ddp}[args.mode](args)


if __name__ == "__main__":
    main()
