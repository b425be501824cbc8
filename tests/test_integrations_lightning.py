"""NumstabCallback in a real Lightning ``Trainer`` (5 steps, clipping on): norms equal Lightning's own
``grad_norm`` before clipping, they reach the loggers through ``self.log``, training is bit-identical with and
without the callback, a fault planted at step 3 is located by replaying the module's own ``training_step``,
bad input is a clear error."""

from __future__ import annotations

import math

import pytest
import torch
from test_monitor_support import mlp, plant_forward
from torch import nn

L = pytest.importorskip("lightning.pytorch")
from lightning.pytorch.loggers import Logger  # noqa: E402
from lightning.pytorch.utilities import grad_norm  # noqa: E402

from numstab.errors import InvalidArgumentError, ModelError  # noqa: E402
from numstab.integrations.lightning import NumstabCallback  # noqa: E402

FAULTY = "net.2"


class Regressor(L.LightningModule):
    def __init__(self, optimizer: bool = True) -> None:
        super().__init__()
        self.net = mlp(depth=2, seed=0)
        self.with_optimizer = optimizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1) if self.with_optimizer else None


class MemoryLogger(Logger):
    """Keeps what Lightning sends to its loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []

    name, version = "memory", 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append(dict(metrics))


class LightningsOwnNorms(L.Callback):
    """Lightning's ``grad_norm`` utility at the same hook, before clipping."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.rows.append({k: v.item() for k, v in grad_norm(pl_module, norm_type=2).items()})


class PlantAt(L.Callback):
    """Plant a NaN in ``FAULTY``'s output during batch ``index`` (0-based) only."""

    def __init__(self, index: int) -> None:
        self.index, self.handle = index, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.index:
            self.handle = plant_forward(pl_module.get_submodule(FAULTY), math.nan)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def _loader() -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(10, 8, generator=g), 3.0 * torch.randn(10, 1, generator=g)
    data = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(data, batch_size=2)


def _fit(module: L.LightningModule, callbacks: list, **overrides) -> MemoryLogger:
    logger = MemoryLogger()
    settings = dict(
        max_steps=5, gradient_clip_val=0.5, accelerator="cpu", devices=1, log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, logger=logger,
    )
    settings.update(overrides)
    L.Trainer(callbacks=callbacks, **settings).fit(module, _loader())
    return logger


def test_norms_equal_lightnings_before_clipping_and_reach_the_loggers() -> None:
    plain = Regressor()
    _fit(plain, [])
    watched, own, callback = Regressor(), LightningsOwnNorms(), NumstabCallback(group_by="parameter")
    logger = _fit(watched, [own, callback])
    history = list(callback.monitor.history)
    assert [s.step for s in history] == [1, 2, 3, 4, 5] and len(own.rows) == 5
    for stats, theirs in zip(history, own.rows, strict=True):
        assert stats.global_norm == pytest.approx(theirs["grad_2.0_norm_total"], rel=1e-6)
        mine = {f"grad_2.0_norm/{name}": v for name, v in stats.layer_norms.items()}
        per_parameter = {k: v for k, v in theirs.items() if k != "grad_2.0_norm_total"}
        assert mine == pytest.approx(per_parameter, rel=1e-6)
    assert max(row["grad_2.0_norm_total"] for row in own.rows) > 0.5  # clipping acted
    logged = [row["numstab/grad_norm"] for row in logger.rows if "numstab/grad_norm" in row]
    assert logged == pytest.approx([s.global_norm for s in history], rel=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), watched.parameters(), strict=True))
    assert not callback.monitor.attached


def test_non_blocking_logs_each_logging_steps_own_norms() -> None:
    blocking, deferred = NumstabCallback(), NumstabCallback(non_blocking=True)
    first = _fit(Regressor(), [blocking], log_every_n_steps=2)
    second = _fit(Regressor(), [deferred], log_every_n_steps=2)
    key = "numstab/grad_norm"
    logged = [[row[key] for row in r.rows if key in row] for r in (first, second)]
    assert len(logged[0]) == 2 and logged[1] == logged[0]  # steps 2 and 4, the same values
    norms = [[s.global_norm for s in c.monitor.history] for c in (blocking, deferred)]
    assert len(norms[0]) == 5 and norms[1] == norms[0]


def test_fault_at_step_3_is_located_through_training_step() -> None:
    callback = NumstabCallback()
    logger = _fit(Regressor(), [PlantAt(2), callback])
    assert [(step, c.module, c.phase, c.value, c.weights) for step, c in callback.culprits] == [
        (3, FAULTY, "forward", "nan", "finite")
    ]
    flags = [row["numstab/nonfinite"] for row in logger.rows if "numstab/nonfinite" in row]
    assert flags == [0.0, 0.0, 1.0, 1.0, 1.0]  # the NaN reached the weights at step 3
    events = [row.get("numstab/events/nonfinite", 0.0) for row in logger.rows if "numstab/nonfinite" in row]
    assert events == [0.0, 0.0, 1.0, 0.0, 0.0]  # reported once, then held back (same parameters)
    losses = [row["train_loss"] for row in logger.rows if "train_loss" in row]
    assert len(losses) == 5  # the replay's self.log calls were silenced: one loss per step


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="every=2 does not divide log_every_n_steps=5"):
        _fit(Regressor(), [NumstabCallback(every=2)], log_every_n_steps=5)
    with pytest.raises(ModelError, match="found no optimizer"):
        _fit(Regressor(optimizer=False), [NumstabCallback()])
