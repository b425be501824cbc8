"""Trend events: layers whose gradient norm vanishes, explodes, or goes non-finite during training.

The rules follow the two failure modes of D2L's "Numerical Stability and Initialization" (4.8): a layer's
gradient shrinking towards zero (vanishing) or growing far beyond its usual size (exploding), judged
layer by layer on the norms :class:`~numstab.monitor.GradientMonitor` already has on the host, so detection
adds no device work.

- **vanishing**: the layer's norm is below ``TrendConfig.vanish_below`` (absolute, default ``1e-8``).
- **exploding**: the layer's norm exceeds ``TrendConfig.explode_factor`` (default 100) times the median of
  its last ``TrendConfig.window`` finite norms, once ``TrendConfig.min_history`` of them are known. A running
  median, not a mean, so that one spike does not raise the bar for the next.
- **nonfinite**: some gradient is ``inf`` or ``NaN``. Under a ``GradScaler`` a non-finite step is first an
  overflow the scaler handles by skipping and halving its scale; it becomes a fault only when it persists for
  ``TrendConfig.amp_patience`` consecutive recorded steps while the scale keeps falling.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from numstab.errors import check_int_at_least, check_positive

__all__ = ["Event", "TrendConfig", "TrendDetector", "EventKind"]

EventKind = Literal["vanishing", "exploding", "nonfinite"]


@dataclass(frozen=True)
class TrendConfig:
    """Thresholds of the trend events (all documented in :mod:`numstab.monitor.events`).

    Attributes:
        vanish_below: a layer norm under this (absolute) is "vanishing".
        explode_factor: a layer norm above this many times its running median is "exploding".
        window: number of recent finite norms per layer in the running median.
        min_history: norms needed before "exploding" can fire (no verdict on the first steps).
        amp_patience: consecutive skipped steps with a falling scale before a non-finite gradient under a
            GradScaler counts as a fault rather than an overflow the scaler handles.

    Examples:
        >>> TrendConfig(vanish_below=1e-6).explode_factor
        100.0
    """

    vanish_below: float = 1e-8  # far below float32 round-off of O(1) weights: the layer has stopped learning
    explode_factor: float = 100.0  # two orders of magnitude above the recent median
    window: int = 50  # recorded steps in the running median
    min_history: int = 10  # steps before "exploding" may fire
    amp_patience: int = 8  # the scale fell 2**8 = 256-fold and the gradients are still non-finite

    def __post_init__(self) -> None:
        check_positive("vanish_below", self.vanish_below)
        check_positive("explode_factor", self.explode_factor)
        check_int_at_least("window", self.window, 1)
        check_int_at_least("min_history", self.min_history, 1)
        check_int_at_least("amp_patience", self.amp_patience, 1)

    def to_dict(self) -> dict[str, Any]:
        """Return the thresholds as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """One trend event at one recorded step.

    Attributes:
        kind: "vanishing", "exploding" or "nonfinite".
        step: the step counter of the :class:`~numstab.monitor.StepStats` it belongs to.
        layers: names of the layers (or parameters, for "nonfinite") concerned.
        values: their norms, same order as ``layers``.
        threshold: the bar they crossed (per layer for "exploding": factor times median; ``nan`` for
            "nonfinite").
        message: one line for a human, with the fix.

    Examples:
        >>> Event("vanishing", 3, ("0",), (1e-12,), 1e-8, "...").to_dict()["layers"]
        ['0']
    """

    kind: EventKind
    step: int
    layers: tuple[str, ...]
    values: tuple[float, ...]
    threshold: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the event as JSON-ready plain data."""
        return {
            "kind": self.kind,
            "step": self.step,
            "layers": list(self.layers),
            "values": list(self.values),
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass
class TrendDetector:
    """Turn each recorded step's layer norms into :class:`Event` s; keeps a bounded window per layer.

    Memory is ``window x layers`` floats, whatever the number of steps.

    Examples:
        >>> det = TrendDetector(TrendConfig(min_history=2, window=4))
        >>> [det.observe(i, ["fc"], np.array([1.0])) for i in range(3)]
        [(), (), ()]
        >>> det.observe(3, ["fc"], np.array([500.0]))[0].kind
        'exploding'
    """

    config: TrendConfig = field(default_factory=TrendConfig)
    _names: list[str] = field(default_factory=list)
    _ring: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    _count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _columns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _skips: int = 0
    _last_scale: float = math.inf

    def observe(self, step: int, names: Sequence[str], values: np.ndarray) -> tuple[Event, ...]:
        """Return the vanishing/exploding events of one step and add its finite norms to the window.

        Args:
            step: step counter.
            names: layer names (a changed list restarts the windows).
            values: their norms, float64, same order.
        """
        if names is not self._names and list(names) != self._names:
            self._reset(names if isinstance(names, list) else list(names))
        found = (self._vanishing(step, self._names, values), self._exploding(step, self._names, values))
        events = [e for e in found if e is not None]
        self._push(values)
        return tuple(events)

    def nonfinite(
        self,
        step: int,
        culprits: Sequence[str],
        values: Sequence[float],
        *,
        skipped: bool,
        scale: float | None,
    ) -> Event | None:
        """Return a "nonfinite" fault event, or None while a GradScaler is still backing off.

        Args:
            step: step counter.
            culprits: parameters whose gradients are non-finite (empty: the step is finite).
            values: their norms.
            skipped: whether a GradScaler skipped the step.
            scale: the scaler's scale at this step (None without a scaler).
        """
        if not culprits:
            self._skips, self._last_scale = 0, math.inf
            return None
        if skipped and scale is not None:
            falling = scale < self._last_scale
            self._skips = self._skips + 1 if falling else 1
            self._last_scale = scale
            if self._skips < self.config.amp_patience:
                return None
        shown = ", ".join(culprits[:5]) + (" ..." if len(culprits) > 5 else "")
        message = (
            f"non-finite gradient in {shown}: call monitor.locate_nonfinite(inputs, loss_fn) on this batch "
            "to find the module that produced it"
        )
        return Event("nonfinite", step, tuple(culprits), tuple(values), math.nan, message)

    def _reset(self, names: list[str]) -> None:
        self._names = names
        self._ring = np.full((self.config.window, len(names)), np.nan)
        self._count = np.zeros(len(names), dtype=np.int64)
        self._columns = np.arange(len(names))

    def _push(self, values: np.ndarray) -> None:
        slot = self._count % self.config.window
        if np.isfinite(values).all():  # the common case: every column takes its value
            self._ring[slot, self._columns] = values
            self._count += 1
            return
        cols = np.flatnonzero(np.isfinite(values))
        self._ring[slot[cols], cols] = values[cols]
        self._count[cols] += 1

    def _median(self, cols: np.ndarray) -> np.ndarray:
        # np.nanmedian goes through masked arrays (about 1 ms): sort instead, NaN (unfilled slots) sort last
        ordered = np.sort(self._ring[:, cols], axis=0)
        n = np.minimum(self._count[cols], self.config.window)
        j = np.arange(cols.size)
        return 0.5 * (ordered[(n - 1) // 2, j] + ordered[n // 2, j])

    def _vanishing(self, step: int, names: list[str], values: np.ndarray) -> Event | None:
        below = values < self.config.vanish_below
        if not below.any():
            return None
        low = np.flatnonzero(below)
        bar = self.config.vanish_below
        message = (
            f"gradient norm under {bar:g} in {_shown(names, low)}: the signal vanishes on its way back; "
            "use a critical init (numstab.init.apply_(model, 'critical')), a non-saturating activation "
            "or residual connections"
        )
        return Event("vanishing", step, _pick(names, low), tuple(values[low].tolist()), bar, message)

    def _exploding(self, step: int, names: list[str], values: np.ndarray) -> Event | None:
        factor = self.config.explode_factor
        ready = self._count >= self.config.min_history
        if not ready.any():
            return None
        # the window's minimum is <= its median: a cheap filter, then the exact median for the few left
        over = values > factor * np.fmin.reduce(self._ring, axis=0)  # False for a NaN norm or empty window
        if not over.any():
            return None
        cols = np.flatnonzero(over & ready & np.isfinite(values))
        if cols.size == 0:
            return None
        median = self._median(cols)
        over = values[cols] > factor * median
        high, median = cols[over], median[over]
        if high.size == 0:
            return None
        message = (
            f"gradient norm above {factor:g}x its running median in {_shown(names, high)}: clip gradients "
            "(torch.nn.utils.clip_grad_norm_), lower the learning rate or check the init"
        )
        threshold = float(factor * np.max(median))
        return Event("exploding", step, _pick(names, high), tuple(values[high].tolist()), threshold, message)


def _pick(names: list[str], idx: np.ndarray) -> tuple[str, ...]:
    return tuple(names[i] for i in idx.tolist())


def _shown(names: list[str], idx: np.ndarray) -> str:
    picked = _pick(names, idx)
    return ", ".join(picked[:5]) + (" ..." if len(picked) > 5 else "")
