"""``NumstabCallback`` for ``transformers.Trainer``: per-layer gradient norms before clipping, in its logs.

>>> from numstab.integrations.huggingface import NumstabCallback          # doctest: +SKIP
>>> trainer = Trainer(model, args, train_dataset=data, callbacks=[NumstabCallback()])  # doctest: +SKIP
>>> trainer.train()                                                          # doctest: +SKIP

Where it measures. The Trainer clips gradients right after the last backward of an optimizer step, and its
first callback event after that (``on_pre_optimizer_step``) already sees clipped gradients: with the default
``max_grad_norm=1.0`` a norm read there is 1.0 whenever clipping acts. The callback therefore measures at
the end of the backward pass itself: a post-accumulate hook queues a final callback on the autograd engine
(``Variable._execution_engine.queue_callback``, as DDP and FSDP do for their own end-of-backward work;
queued again from there so that it runs after theirs), which records the step when accelerate's
``GradientState.sync_gradients`` says this is the last micro-batch of the optimizer step. The norms are
those of the accumulated, unclipped (and, under fp16, unscaled) gradients: the ``grad_norm`` the Trainer
logs.

What it logs. At each of the Trainer's logging steps, ``numstab/grad_norm`` (global),
``numstab/grad_norm/<layer>``, ``numstab/nonfinite`` and ``numstab/events/<kind>`` (counts) are added to the
Trainer's ``logs`` and to that entry of ``state.log_history``. The Trainer runs user callbacks after its
reporting integrations (TensorBoard, W&B, ...): those see the keys only if the callback runs before them
(add it with ``trainer.callback_handler.callbacks.insert(0, callback)`` rather than ``callbacks=``), or
through the monitor's own ``writer=``. Event messages and located culprits go to the
``numstab.integrations`` logger.

A non-finite step. The batch of each optimizer step is kept (a reference, from a forward pre-hook on the
model); when a step reports a non-finite fault, the callback replays its last micro-batch through the model
(its own loss: the batch's labels) before the optimizer updates the weights, and appends the
:class:`~numstab.monitor.Culprit` to ``callback.culprits``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import nn

try:
    from accelerate.state import GradientState
    from transformers import TrainerCallback
except ImportError as err:  # pragma: no cover - the extra is missing
    raise ImportError(
        "numstab.integrations.huggingface needs transformers and accelerate: pip install numstab[hf]"
    ) from err

from numstab.errors import NumstabError
from numstab.integrations import _common
from numstab.monitor import Culprit, GradientMonitor, StepStats
from numstab.monitor.distributed import unwrap

__all__ = ["NumstabCallback"]


class NumstabCallback(TrainerCallback):
    """Watch gradient health in a ``transformers.Trainer``: norms before clipping, logged, faults located.

    Args:
        **monitor_kwargs: passed to :class:`~numstab.monitor.GradientMonitor` (``every``, ``history``,
            ``trends``, ``non_blocking``, ...). ``every`` counts optimizer steps and must divide the
            Trainer's ``logging_steps``; recorded steps are the global steps that are multiples of it.

    Attributes:
        monitor: the :class:`~numstab.monitor.GradientMonitor` on the trained model, from ``on_train_begin``
            on (None before).
        culprits: ``(global_step, Culprit)`` for each located fault, in order.

    Raises (when training starts):
        InvalidArgumentError: ``every`` does not divide ``logging_steps``, or an unknown keyword.
        ModelError: the Trainer's optimizer updates none of the model's parameters.
    """

    def __init__(self, **monitor_kwargs: Any) -> None:
        self.monitor_kwargs = _common.monitor_kwargs(monitor_kwargs)
        self.monitor: GradientMonitor | None = None
        self.culprits: list[tuple[int, Culprit]] = []
        self._model: nn.Module | None = None
        self._scaler: Any = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._batch: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._batches: deque[tuple[int, tuple[tuple[Any, ...], dict[str, Any]] | None]] = deque(maxlen=2)
        self._arrived: list[StepStats] = []
        self._queued = False
        self._logged = -1

    # -- Trainer events ----------------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: nn.Module, **kwargs: Any) -> None:
        self.detach()
        if args.logging_strategy == "steps":
            every = self.monitor_kwargs.get("every", 1)
            _common.check_every(every, int(state.logging_steps), "logging_steps")
        monitor = GradientMonitor(model, first_step=state.global_step + 1, **self.monitor_kwargs)
        optimizer = kwargs.get("optimizer")
        _common.check_optimizer(monitor, [optimizer] if optimizer is not None else [], "transformers")
        self._model, self._scaler = model, getattr(optimizer, "scaler", None)  # fp16: accelerate's GradScaler
        self.monitor = monitor.attach()
        try:
            self._handles.append(unwrap(model).register_forward_pre_hook(self._keep_batch, with_kwargs=True))
            for param in monitor.parameters:
                self._handles.append(param.register_post_accumulate_grad_hook(self._on_grad))
        except BaseException:
            self.detach()
            raise

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._handle_arrived()  # before the update: a replay sees the weights that produced the fault

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.monitor is None or logs is None:
            return
        pending = self.monitor.flush()  # non_blocking: this step's norms, read now (one wait per log)
        self._arrived.extend([pending] if pending is not None else [])
        self._handle_arrived()
        latest = self.monitor.history[-1] if self.monitor.history else None
        if latest is None or latest.step != state.global_step or latest.step == self._logged:
            return  # not recorded, or already in this step's log (the Trainer's end-of-training summary)
        self._logged = latest.step
        values = _common.metrics(latest, self.monitor.layer_names)
        logs.update(values)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(values)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.detach()

    def detach(self) -> None:
        """Remove every hook from the model (also called when training ends; call it if training raised)."""
        while self._handles:
            self._handles.pop().remove()
        if self.monitor is not None and self.monitor.attached:
            self.monitor.detach()

    # -- hooks -------------------------------------------------------------------------------------------

    def _keep_batch(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module.training and torch.is_grad_enabled():
            self._batch = (args, kwargs)  # a reference: the Trainer's own batch, no copy

    def _on_grad(self, param: torch.Tensor) -> None:
        if not self._queued:
            self._queued = True
            torch.autograd.Variable._execution_engine.queue_callback(self._last)

    def _last(self) -> None:
        # queued again, so that it runs after every end-of-backward callback queued during the pass: DDP's
        # reducer queues the one that writes the averaged gradients only when its last bucket is ready
        torch.autograd.Variable._execution_engine.queue_callback(self._after_backward)

    def _after_backward(self) -> None:
        """End of a backward pass: record it if it is the last micro-batch of an optimizer step."""
        self._queued = False
        if not GradientState().sync_gradients:
            return  # gradient accumulation: more micro-batches to come
        self._batches.append((self.monitor.next_step, self._batch))
        stats = self.monitor.step(self._scaler)  # unclipped: the Trainer clips after this backward returns
        if stats is not None:
            self._arrived.append(stats)

    # -- faults ------------------------------------------------------------------------------------------

    def _handle_arrived(self) -> None:
        arrived, self._arrived = self._arrived, []
        for stats in arrived:
            culprit, why = self._replay(stats) if _common.is_fault(stats) else (None, "")
            _common.announce(stats, culprit, why)

    def _replay(self, stats: StepStats) -> tuple[Culprit | None, str]:
        batch = next((b for s, b in self._batches if s == stats.step), None)
        if batch is None:
            return None, "non-finite gradients, but no batch of this step was seen (no training forward)"
        args, kwargs = batch
        module = unwrap(self._model)
        try:
            culprit = self.monitor.locate_nonfinite(
                kwargs, _common.loss_of, scaler=self._scaler, forward=lambda _: module(*args, **kwargs)
            )
        except NumstabError as err:
            return None, f"could not replay the batch: {err}"
        if culprit is None:
            return None, "the replayed batch is finite everywhere: the fault did not reproduce"
        self.culprits.append((stats.step, culprit))
        return culprit, ""
