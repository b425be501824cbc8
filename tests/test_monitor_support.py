"""Models and fault planting shared by the monitor tests (and a check that the planting works).

Three architectures for the localisation tests: a tanh MLP, a CNN with BatchNorm, and a small Transformer
encoder. Faults are planted with ordinary module hooks, registered before the monitor's own:

- forward: a forward hook on module k writes inf or NaN into one element of its output;
- backward: a forward pre-hook on module k routes its input through :class:`PoisonGrad`, an identity whose
  backward writes inf or NaN into one element of the gradient, so module k's own backward emits it.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn


def mlp(depth: int = 6, width: int = 16, seed: int = 0) -> nn.Sequential:
    """A tanh MLP: Linear names "0", "2", ..., the last Linear is ``str(2 * depth)``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(8 if i == 0 else width, width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def cnn(seed: int = 0) -> nn.Sequential:
    """A small CNN with BatchNorm on 1x8x8 inputs."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 1),
    )


class TinyTransformer(nn.Module):
    """Linear projection, a 2-layer ``nn.TransformerEncoder`` (d_model 16), mean-pool, linear head."""

    def __init__(self, seed: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.proj = nn.Linear(6, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.proj(x)).mean(dim=1))


#: (factory, input shape, modules to plant in, first to last)
ARCHITECTURES = {
    "mlp": (mlp, (4, 8), ["0", "4", "8", "12"]),
    "cnn": (cnn, (2, 1, 8, 8), ["0", "3", "7", "9"]),
    "transformer": (
        TinyTransformer,
        (2, 5, 6),
        ["proj", "encoder.layers.0.linear1", "encoder.layers.1.self_attn", "encoder.layers.1.linear2",
         "head"],
    ),
}


class PoisonGrad(torch.autograd.Function):
    """Identity forward; backward writes ``value`` into the first element of the gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, value: float) -> torch.Tensor:  # noqa: D102
        ctx.value = value
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        grad = grad.clone(memory_format=torch.contiguous_format)
        grad.view(-1)[0] = ctx.value
        return grad, None


def plant_forward(module: nn.Module, value: float) -> torch.utils.hooks.RemovableHandle:
    """Make ``module``'s output non-finite in one element."""

    def hook(mod: nn.Module, args: tuple, out: object) -> object:
        first = out[0] if isinstance(out, tuple) else out
        first = first.clone(memory_format=torch.contiguous_format)
        first.view(-1)[0] = value
        return (first, *out[1:]) if isinstance(out, tuple) else first

    return module.register_forward_hook(hook)


def plant_backward(module: nn.Module, value: float) -> torch.utils.hooks.RemovableHandle:
    """Make the gradient ``module`` sends back to its first input non-finite in one element."""

    def hook(mod: nn.Module, args: tuple) -> tuple:
        return (PoisonGrad.apply(args[0], value), *args[1:])

    return module.register_forward_pre_hook(hook)


def test_planted_backward_fault_reaches_the_input_gradient() -> None:
    net = mlp(depth=2)
    x = torch.ones(3, 8, requires_grad=True)
    with plant_backward(net[2], float("nan")):
        net(x).sum().backward()
    assert torch.isnan(x.grad).any() and torch.isnan(net[0].weight.grad).any()
    assert torch.isfinite(net[2].weight.grad).all()  # the producer's own weight gradient is finite


def test_planted_forward_fault_makes_the_output_non_finite() -> None:
    net = mlp(depth=2)
    with plant_forward(net[0], float("nan")):  # inf would be absorbed: tanh(inf) = 1
        assert not torch.isfinite(net(torch.ones(3, 8))).all()


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the ranks' rendezvous; nothing leaves the machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_ranks(worker: Callable[..., None], world: int, out: Path, *, timeout: float) -> None:
    """Run ``worker(rank, port, out)`` in ``world`` processes (gloo over 127.0.0.1), bounded by ``timeout`` s.

    A rank still running at the deadline is killed by its pid and the test fails. A rank killed by a signal
    (seen once in ~50 runs on the 2-core CI machine: SIGABRT "terminate called without an active exception"
    while gloo shut down, after the results were saved) is the transport, not the code under test: the ranks
    run once more on a fresh port. A Python exception in a rank (a real failure) is never retried.
    """
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    for attempt in range(2):
        context = mp.start_processes(
            worker, args=(free_port(), str(out)), nprocs=world, join=False, start_method="spawn"
        )
        deadline = time.monotonic() + timeout
        try:
            while not context.join(timeout=1.0):
                if time.monotonic() > deadline:
                    for process in context.processes:
                        if process.is_alive():
                            os.kill(process.pid, signal.SIGKILL)
                    pytest.fail(f"{world} ranks still running after {timeout:.0f} s: killed")
            return
        except mp.ProcessExitedException as err:
            if err.signal_name is None or attempt:
                raise
