"""FSDP2 (``fully_shard``, DTensor parameters), 2 ranks, gloo on CPU (127.0.0.1 only).

The monitor's norms are the full (unsharded) norms: equal to a single process on the same global batch, for an
MLP and a small HF GPT-2, from one all-reduce per recorded step. A fault planted on rank 1 is reported on both
ranks as rank 1's, by the step's ``culprit_ranks`` and by ``locate_nonfinite`` (module, phase, rank).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from test_monitor_support import mlp, plant_backward, spawn_ranks
from torch import nn

from numstab.errors import ModelError
from numstab.monitor import GradientMonitor

WORLD = 2
FAULTY = "2"  # module k whose input gradient goes non-finite on rank 1 only


def _mlp_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return torch.randn(8, 8, generator=g), torch.randn(8, 1, generator=g)


def _gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config)


def _gpt2_batch() -> torch.Tensor:
    return torch.randint(0, 64, (4, 8), generator=torch.Generator().manual_seed(3))


def _gpt2_loss(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, labels=ids).loss


def _count_all_reduce(calls: list[int]):
    real = dist.all_reduce

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    return real, counted


def _mlp_run(rank: int) -> dict[str, object]:
    from torch.distributed.fsdp import fully_shard

    model = mlp(depth=2, seed=0)
    for layer in (model[0], model[2], model[4]):
        fully_shard(layer)
    fully_shard(model)
    x, y = (t.chunk(WORLD)[rank] for t in _mlp_batch())
    result: dict[str, object] = {}
    with GradientMonitor(model) as monitor:
        nn.functional.mse_loss(model(x), y).backward()
        calls: list[int] = []
        real, dist.all_reduce = _count_all_reduce(calls)
        try:
            result["clean"] = monitor.step().to_dict()
        finally:
            dist.all_reduce = real
        result["all_reduces"] = len(calls)
        model.zero_grad()
        plant = plant_backward(model.get_submodule(FAULTY), math.inf) if rank == 1 else None
        nn.functional.mse_loss(model(x), y).backward()
        result["fault"] = monitor.step().to_dict()
        culprit = monitor.locate_nonfinite(x, nn.functional.mse_loss, y)
        result["culprit"] = culprit.to_dict() if culprit else None
        result["sharded_after_replay"] = type(model[2].weight).__name__
        if plant is not None:
            plant.remove()
        result["finite"] = monitor.locate_nonfinite(x, nn.functional.mse_loss, y)
    try:
        from numstab import diagnose

        diagnose(model, x)
    except ModelError as err:
        result["diagnose_error"] = str(err)
    return result


def _train_mlp(rank: int, watched: bool) -> list[torch.Tensor]:
    """Three SGD steps of the sharded MLP; the full parameters after them (gathered on every rank)."""
    from torch.distributed.fsdp import fully_shard

    model = mlp(depth=2, seed=0)
    for layer in (model[0], model[2], model[4]):
        fully_shard(layer)
    fully_shard(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = (t.chunk(WORLD)[rank] for t in _mlp_batch())
    monitor = GradientMonitor(model).attach() if watched else None
    for _ in range(3):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        if monitor is not None:
            monitor.step()
        opt.step()
    if monitor is not None:
        monitor.detach()
    return [p.full_tensor().detach().clone() for p in model.parameters()]


def _gpt2_run(rank: int) -> dict[str, object]:
    from torch.distributed.fsdp import fully_shard

    model = _gpt2()
    for block in model.transformer.h:
        fully_shard(block)
    fully_shard(model)
    ids = _gpt2_batch().chunk(WORLD)[rank]
    with GradientMonitor(model) as monitor:
        _gpt2_loss(model, ids).backward()
        return monitor.step().to_dict()


def _worker(rank: int, port: int, out: str) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        result = {"mlp": _mlp_run(rank), "gpt2": _gpt2_run(rank)}
        plain, watched = _train_mlp(rank, watched=False), _train_mlp(rank, watched=True)
        result["bit_identical"] = all(torch.equal(a, b) for a, b in zip(plain, watched, strict=True))
        torch.save(result, Path(out) / f"rank{rank}.pt")
        dist.barrier()  # no rank tears gloo down while the other is still inside a collective
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, object]]]:
    out = tmp_path_factory.mktemp("fsdp")
    spawn_ranks(_worker, WORLD, out, timeout=240)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def _single(model: nn.Module, loss: torch.Tensor) -> dict[str, object]:
    with GradientMonitor(model) as monitor:
        loss.backward()
        return monitor.step().to_dict()


@pytest.mark.parametrize("arch", ["mlp", "gpt2"])
def test_fsdp2_norms_equal_single_process_on_the_global_batch(ranks, arch: str) -> None:
    if arch == "mlp":
        model = mlp(depth=2, seed=0)
        x, y = _mlp_batch()
        single = _single(model, nn.functional.mse_loss(model(x), y))
    else:
        model = _gpt2()
        single = _single(model, _gpt2_loss(model, _gpt2_batch()))
    for result in ranks:
        clean = result[arch] if arch == "gpt2" else result[arch]["clean"]
        assert list(clean["layer_norms"]) == list(single["layer_norms"])  # names as in the unsharded model
        assert clean["global_norm"] == pytest.approx(single["global_norm"], rel=1e-6)
        assert clean["layer_norms"] == pytest.approx(single["layer_norms"], rel=1e-6)
        assert not clean["nonfinite"] and clean["culprit_ranks"] == {}


def test_one_all_reduce_per_recorded_step(ranks) -> None:
    assert [r["mlp"]["all_reduces"] for r in ranks] == [1, 1]


def test_fault_on_rank_1_is_reported_as_rank_1_on_both_ranks(ranks) -> None:
    for result in ranks:
        fault = result["mlp"]["fault"]
        # module 2 sends inf back into module 0 on rank 1; the reduce-scatter spreads it to both shards
        assert fault["nonfinite"] and fault["culprits"] == ["0.weight", "0.bias"]
        assert fault["culprit_ranks"] == {"0.weight": [1], "0.bias": [1]}
        culprit = result["mlp"]["culprit"]
        assert (culprit["module"], culprit["phase"], culprit["rank"], culprit["value"]) == (
            FAULTY, "backward", 1, "inf",
        )
        assert culprit["weights"] == "finite"
        assert result["mlp"]["finite"] is None
        assert result["mlp"]["sharded_after_replay"] == "DTensor"  # the replay left the model sharded


def test_diagnose_on_a_sharded_model_is_one_clear_error(ranks) -> None:
    for result in ranks:
        assert "sharded (DTensor parameters" in result["mlp"]["diagnose_error"]


def test_sharded_training_is_bit_identical_with_and_without_the_monitor(ranks) -> None:
    assert [r["bit_identical"] for r in ranks] == [True, True]
