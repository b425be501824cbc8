"""``NumstabCallback`` for Lightning: per-layer gradient norms before clipping, through ``self.log``.

>>> from numstab.integrations.lightning import NumstabCallback                 # doctest: +SKIP
>>> trainer = lightning.Trainer(callbacks=[NumstabCallback()], gradient_clip_val=1.0)  # doctest: +SKIP
>>> trainer.fit(module, loader)                                                 # doctest: +SKIP

Where it measures. Lightning calls ``on_before_optimizer_step`` after the backward passes of an optimizer
step (all accumulated micro-batches), after a GradScaler's ``unscale_`` and before gradient clipping: the
norms are those of the unclipped gradients the optimizer would receive without clipping.

What it logs. At Lightning's logging steps (every ``log_every_n_steps`` optimizer steps; with
``non_blocking=True`` the monitor's pending step is read there, so a log never carries an older step) the
callback logs,
through ``pl_module.log_dict`` (so to every configured logger), ``numstab/grad_norm`` (global),
``numstab/grad_norm/<layer>``, ``numstab/nonfinite`` and ``numstab/events/<kind>`` (counts). Event messages
and located culprits go to the ``numstab.integrations`` logger.

A non-finite step. The micro-batches of each optimizer step are kept (references, from
``on_train_batch_start``); when a step reports a non-finite fault, the callback replays them through the
LightningModule's own ``training_step`` (under the trainer's precision context, with ``self.log`` silenced for
the replay) before the optimizer updates the weights, and appends the :class:`~numstab.monitor.Culprit` to
``callback.culprits``. The user writes no forward for it. Manual optimization is not replayed (its
``training_step`` steps the optimizer itself).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as err:  # pragma: no cover - the extra is missing
    raise ImportError(
        "numstab.integrations.lightning needs lightning: pip install numstab[lightning]"
    ) from err

from numstab.errors import NumstabError
from numstab.integrations import _common
from numstab.monitor import Culprit, GradientMonitor, StepStats

__all__ = ["NumstabCallback"]

Batches = list[tuple[Any, int]]


class NumstabCallback(Callback):
    """Watch gradient health in a Lightning ``Trainer``: norms before clipping, logged, faults located.

    Args:
        **monitor_kwargs: passed to :class:`~numstab.monitor.GradientMonitor` (``every``, ``history``,
            ``trends``, ``group_by``, ``non_blocking``, ...). ``every`` counts optimizer steps and must divide
            the Trainer's ``log_every_n_steps``.

    Attributes:
        monitor: the :class:`~numstab.monitor.GradientMonitor` on the trained module, from ``on_train_start``
            on (None before). Under DDP it watches the DDP wrapper, so ranks and culprit ranks are known.
        culprits: ``(step, Culprit)`` for each located fault, in order (steps count optimizer steps from 1).

    Raises (when training starts):
        InvalidArgumentError: ``every`` does not divide ``log_every_n_steps``, or an unknown keyword.
        ModelError: no optimizer, or none that updates the module's parameters.
    """

    def __init__(self, **monitor_kwargs: Any) -> None:
        self.monitor_kwargs = _common.monitor_kwargs(monitor_kwargs)
        self.monitor: GradientMonitor | None = None
        self.culprits: list[tuple[int, Culprit]] = []
        self._micro: Batches = []
        self._batches: deque[tuple[int, Batches]] = deque(maxlen=2)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.detach()
        interval = trainer.log_every_n_steps
        if interval:
            _common.check_every(self.monitor_kwargs.get("every", 1), interval, "log_every_n_steps")
        wrapped = trainer.strategy.model
        model = wrapped if isinstance(wrapped, nn.parallel.DistributedDataParallel) else pl_module
        monitor = GradientMonitor(model, first_step=trainer.global_step + 1, **self.monitor_kwargs)
        real = [o for o in trainer.optimizers if type(o).__name__ != "_MockOptimizer"]  # None configured
        _common.check_optimizer(monitor, real, "Lightning")
        self.monitor = monitor.attach()

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._micro.append((batch, batch_idx))  # references to Lightning's own batch, no copy

    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        step = self.monitor.next_step
        self._batches.append((step, self._micro))
        self._micro = []
        arrived = [self.monitor.step(getattr(trainer.precision_plugin, "scaler", None))]
        interval = trainer.log_every_n_steps
        if interval and step % interval == 0:  # a logging step: read it now (non_blocking: one wait per log)
            arrived.append(self.monitor.flush())
        for stats in arrived:
            if stats is not None:
                self._arrived(trainer, pl_module, stats)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.detach()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.detach()

    def detach(self) -> None:
        """Remove the monitor's hooks and read a pending step (also called when training ends)."""
        if self.monitor is not None and self.monitor.attached:
            self.monitor.detach()
        self._micro, self._batches = [], deque(maxlen=2)

    def _arrived(self, trainer: Any, pl_module: Any, stats: StepStats) -> None:
        culprit, why = self._replay(trainer, pl_module, stats) if _common.is_fault(stats) else (None, "")
        _common.announce(stats, culprit, why)
        interval = trainer.log_every_n_steps
        if interval and stats.step % interval == 0:  # the steps Lightning writes to its loggers
            pl_module.log_dict(_common.metrics(stats, self.monitor.layer_names), on_step=True, on_epoch=False)

    def _replay(self, trainer: Any, pl_module: Any, stats: StepStats) -> tuple[Culprit | None, str]:
        if not pl_module.automatic_optimization:
            return None, "non-finite gradients; not replayed: under manual optimization training_step steps"
        batches = next((b for s, b in self._batches if s == stats.step), [])
        for batch, batch_idx in batches:
            try:
                with trainer.precision_plugin.train_step_context(), _silenced(pl_module):
                    culprit = self.monitor.locate_nonfinite(
                        batch, _common.loss_of, forward=lambda b, i=batch_idx: pl_module.training_step(b, i)
                    )
            except NumstabError as err:
                return None, f"could not replay the batch: {err}"
            if culprit is not None:
                self.culprits.append((stats.step, culprit))
                return culprit, ""
        return None, "the replayed batches are finite everywhere: the fault did not reproduce"


@contextmanager
def _silenced(pl_module: Any) -> Iterator[None]:
    """``self.log`` and ``self.log_dict`` as no-ops while ``training_step`` is replayed: the replay's values
    are not training's, and Lightning would file them under the hook that runs the replay."""
    pl_module.log = pl_module.log_dict = _ignore  # instance attributes shadow the methods
    try:
        yield
    finally:
        del pl_module.log, pl_module.log_dict


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None
