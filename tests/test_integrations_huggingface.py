"""NumstabCallback in a real ``transformers.Trainer`` (5 steps, a tiny GPT-2 built from its config, data in
memory): norms before clipping equal the ``grad_norm`` the Trainer logs, training is bit-identical with and
without the callback, a fault planted at step 3 is located to its module, bad input is a clear error."""

from __future__ import annotations

import math
import os

import pytest
import torch
from test_monitor_support import plant_forward

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")

from numstab.errors import InvalidArgumentError, ModelError  # noqa: E402
from numstab.integrations.huggingface import NumstabCallback  # noqa: E402

FAULTY = "transformer.h.1.mlp.c_fc"  # an HF Conv1D


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )
    return transformers.GPT2LMHeadModel(config)


def _data() -> list[dict[str, torch.Tensor]]:
    ids = torch.randint(0, 64, (10, 8), generator=torch.Generator().manual_seed(1))
    return [{"input_ids": row, "labels": row} for row in ids]


def _trainer(tmp_path, model, callbacks, **overrides) -> transformers.Trainer:
    settings = dict(
        output_dir=str(tmp_path), max_steps=5, per_device_train_batch_size=2, learning_rate=1e-2,
        logging_steps=1, max_grad_norm=0.5, report_to="none", save_strategy="no", use_cpu=True, seed=0,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    settings.update(overrides)
    args = transformers.TrainingArguments(**settings)
    return transformers.Trainer(model=model, args=args, train_dataset=_data(), callbacks=callbacks)


class _PlantAt(transformers.TrainerCallback):
    """Plant a NaN in ``FAULTY``'s output during optimizer step ``step`` (1-based) only."""

    def __init__(self, step: int) -> None:
        self.step, self.handle = step, None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step + 1 == self.step:
            self.handle = plant_forward(model.get_submodule(FAULTY), math.nan)

    def on_step_end(self, args, state, control, **kwargs):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None


def test_norms_before_clipping_equal_the_trainers_grad_norm_and_training_is_unchanged(tmp_path) -> None:
    plain = _model()
    _trainer(tmp_path / "plain", plain, []).train()
    watched = _model()
    callback = NumstabCallback()
    trainer = _trainer(tmp_path / "watched", watched, [callback])
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "grad_norm" in entry]
    assert [entry["step"] for entry in steps] == [1, 2, 3, 4, 5]
    for entry in steps:
        assert entry["numstab/grad_norm"] == pytest.approx(entry["grad_norm"], rel=1e-6)
        assert entry["numstab/nonfinite"] == 0.0
    assert max(entry["grad_norm"] for entry in steps) > 0.5  # clipping acted: a post-clip norm would be 0.5
    layers = [k.removeprefix("numstab/grad_norm/") for k in steps[0] if k.startswith("numstab/grad_norm/")]
    assert layers[:2] == ["transformer.wte", "transformer.wpe"] and "transformer.h.1.mlp.c_fc" in layers
    assert callback.monitor is not None and not callback.monitor.attached  # detached when training ended
    assert [s.step for s in callback.monitor.history] == [1, 2, 3, 4, 5]
    pairs = zip(plain.state_dict().values(), watched.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("overrides", [{"gradient_accumulation_steps": 2}, {"non_blocking": True}])
def test_accumulated_and_non_blocking_norms_equal_the_trainers(tmp_path, overrides: dict) -> None:
    overrides = dict(overrides)
    non_blocking = overrides.pop("non_blocking", False)
    callback = NumstabCallback(non_blocking=non_blocking)
    trainer = _trainer(tmp_path, _model(), [callback], max_steps=3, **overrides)
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "grad_norm" in entry]
    assert [entry["step"] for entry in steps] == [1, 2, 3]
    for entry in steps:  # accumulated over the micro-batches; non-blocking: read at the log
        assert entry["numstab/grad_norm"] == pytest.approx(entry["grad_norm"], rel=1e-6)


def test_fault_at_step_3_is_located_to_its_module(tmp_path) -> None:
    callback = NumstabCallback()
    trainer = _trainer(tmp_path, _model(), [_PlantAt(3), callback])
    trainer.train()
    assert [(step, c.module, c.phase, c.value, c.weights) for step, c in callback.culprits] == [
        (3, FAULTY, "forward", "nan", "finite")
    ]
    third = next(entry for entry in trainer.state.log_history if entry.get("step") == 3)
    assert third["numstab/nonfinite"] == 1.0 and third["numstab/events/nonfinite"] == 1.0


def test_every_must_divide_the_logging_interval(tmp_path) -> None:
    with pytest.raises(InvalidArgumentError, match="every=3 does not divide logging_steps=5"):
        _trainer(tmp_path, _model(), [NumstabCallback(every=3)], logging_steps=5).train()
    with pytest.raises(InvalidArgumentError, match="unknown keyword 'evry'"):
        NumstabCallback(evry=2)
    with pytest.raises(InvalidArgumentError, match="sets model= itself"):
        NumstabCallback(model=_model())


def test_an_optimizer_for_another_model_is_refused(tmp_path) -> None:
    model = _model()
    trainer = _trainer(tmp_path, model, [NumstabCallback()])
    trainer.optimizer = torch.optim.SGD(_model().parameters(), lr=0.1)  # steps a different model
    with pytest.raises(ModelError, match="updates none of the parameters"):
        trainer.train()
    assert sum(len(p._post_accumulate_grad_hooks or {}) for p in model.parameters()) == 0
