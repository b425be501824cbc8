"""DistributedDataParallel, 2 ranks, gloo on CPU (127.0.0.1 only): norms equal the single-process norms on the
same global batch; a fault planted on rank 1 is reported on both ranks as rank 1, module k."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from test_monitor_support import mlp, spawn_ranks
from torch import nn

from numstab.monitor import GradientMonitor

WORLD = 2
FAULTY = "2"  # module k whose weight gradient goes non-finite on rank 1 only


def _global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(8, 8, generator=g), torch.randn(8, 1, generator=g)


def _poison(grad: torch.Tensor) -> torch.Tensor:
    grad = grad.clone()
    grad.view(-1)[0] = math.inf
    return grad


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        model = mlp(depth=2, seed=0)
        ddp = nn.parallel.DistributedDataParallel(model)
        x, y = (t.chunk(WORLD)[rank] for t in _global_batch())
        result: dict[str, object] = {}
        with GradientMonitor(ddp) as monitor:
            nn.functional.mse_loss(ddp(x), y).backward()
            result["clean"] = monitor.step().to_dict()
            ddp.zero_grad()
            handle = model.get_submodule(FAULTY).weight.register_hook(_poison) if rank == 1 else None
            nn.functional.mse_loss(ddp(x), y).backward()
            result["fault"] = monitor.step().to_dict()
            culprit = monitor.locate_nonfinite(x, nn.functional.mse_loss, y)
            result["culprit"] = culprit.to_dict() if culprit else None
            owner = model.get_submodule(FAULTY)
            result["max_abs_weight"] = max(p.abs().max().item() for p in owner.parameters())
            if handle is not None:
                handle.remove()
            result["finite"] = monitor.locate_nonfinite(x, nn.functional.mse_loss, y)
        torch.save(result, Path(out) / f"rank{rank}.pt")
        dist.barrier()  # no rank tears gloo down while the other is still inside a collective
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    out = tmp_path_factory.mktemp("ddp")
    spawn_ranks(_worker, WORLD, out, timeout=180)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_ddp_norms_equal_single_process_on_the_global_batch(ranks: list[dict[str, object]]) -> None:
    model = mlp(depth=2, seed=0)
    x, y = _global_batch()
    with GradientMonitor(model) as monitor:
        nn.functional.mse_loss(model(x), y).backward()
        single = monitor.step()
    for result in ranks:
        clean = result["clean"]
        assert clean["global_norm"] == pytest.approx(single.global_norm, rel=1e-6)
        assert clean["layer_norms"] == pytest.approx(single.layer_norms, rel=1e-6)
        assert not clean["nonfinite"] and clean["culprit_ranks"] == {}


def test_fault_on_rank_1_is_known_on_every_rank(ranks: list[dict[str, object]]) -> None:
    for result in ranks:
        fault = result["fault"]
        # after the all-reduce both ranks hold the inf; both know it came from rank 1's module "2"
        assert fault["nonfinite"] and fault["culprits"] == [f"{FAULTY}.weight"]
        assert fault["culprit_ranks"] == {f"{FAULTY}.weight": [1]}
        assert result["culprit"] == {
            "module": FAULTY, "phase": "backward", "dtype": "float32",
            "max_abs_before": result["culprit"]["max_abs_before"], "rank": 1, "value": "inf",
            "weights": "finite", "max_abs_weight": result["max_abs_weight"],
        }
        assert result["finite"] is None
