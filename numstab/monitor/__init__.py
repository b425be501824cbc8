"""numstab.monitor: per-layer gradient health during training.

- :class:`GradientMonitor`: fused per-layer gradient norms, one device-to-host transfer per recorded step
  (``non_blocking=True``: one that never waits), exact at the extremes of float32, AMP- (GradScaler), DDP- and
  FSDP2-aware (full, unsharded norms), ``torch.compile``-aware (original names, eager replay),
  TensorBoard-ready. Framework callbacks in :mod:`numstab.integrations`.
- :class:`StepStats`: what one recorded step returns; :class:`Event`: vanishing / exploding / non-finite.
- :func:`locate_nonfinite` / :class:`Culprit`: the module that produced the first inf or NaN of a batch;
  with ``level="op"`` the aten op, its source line and input ranges (:mod:`numstab.monitor.ops`).

Examples:
    >>> import torch
    >>> from numstab.monitor import GradientMonitor
    >>> net = torch.nn.Linear(3, 1)
    >>> with GradientMonitor(net) as monitor:
    ...     net(torch.ones(2, 3)).sum().backward()
    ...     round(monitor.step().layer_norms["(root)"], 4)
    4.0
"""

from numstab.monitor.events import Event, TrendConfig
from numstab.monitor.locate import Culprit, locate_nonfinite
from numstab.monitor.monitor import GradientMonitor, MonitorStateError, StepStats

__all__ = [
    "GradientMonitor",
    "StepStats",
    "Culprit",
    "Event",
    "TrendConfig",
    "MonitorStateError",
    "locate_nonfinite",
]
