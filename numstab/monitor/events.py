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
from collections import deque
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

    Memory is ``window x layers`` floats, whatever the number of steps. The per-step work is plain Python
    over a few dozen floats (a running minimum per window filters the "exploding" test, and only the layers
    it lets through are sorted for their median): the detector runs right after backward, when the host
    caches are cold and each numpy call would cost several microseconds.

    Examples:
        >>> det = TrendDetector(TrendConfig(min_history=2, window=4))
        >>> [det.observe(i, ["fc"], np.array([1.0])) for i in range(3)]
        [(), (), ()]
        >>> det.observe(3, ["fc"], np.array([500.0]))[0].kind
        'exploding'
    """

    config: TrendConfig = field(default_factory=TrendConfig)
    _names: list[str] = field(default_factory=list)
    _windows: list[deque[float]] = field(default_factory=list)
    _low: list[float] = field(default_factory=list)
    _count: list[int] = field(default_factory=list)
    _skips: int = 0
    _last_scale: float = math.inf

    def observe(
        self, step: int, names: Sequence[str], values: Sequence[float] | np.ndarray
    ) -> tuple[Event, ...]:
        """Return the vanishing/exploding events of one step and add its finite norms to the window.

        Args:
            step: step counter.
            names: layer names (a changed list restarts the windows).
            values: their norms (floats or a float64 array), same order.
        """
        if names is not self._names and list(names) != self._names:
            self._reset(names if isinstance(names, list) else list(names))
        norms = values.tolist() if isinstance(values, np.ndarray) else list(values)
        found = (self._vanishing(step, norms), self._exploding(step, norms))
        self._push(norms)
        return tuple(e for e in found if e is not None)

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
        self._windows = [deque(maxlen=self.config.window) for _ in names]
        self._low = [math.inf] * len(names)  # minimum of each window (inf while empty)
        self._count = [0] * len(names)  # finite norms seen per layer (not capped by the window)

    def _push(self, norms: list[float]) -> None:
        for j, value in enumerate(norms):
            if not math.isfinite(value):  # inf/NaN norms stay out of the window
                continue
            window = self._windows[j]
            evicted = window[0] if len(window) == window.maxlen else math.inf
            window.append(value)
            self._count[j] += 1
            # the minimum left the window (or the window was empty): rescan; otherwise a running minimum
            self._low[j] = min(window) if evicted <= self._low[j] else min(self._low[j], value)

    def _vanishing(self, step: int, norms: list[float]) -> Event | None:
        bar = self.config.vanish_below
        low = [j for j, value in enumerate(norms) if value < bar]
        if not low:
            return None
        message = (
            f"gradient norm under {bar:g} in {_shown(self._names, low)}: the signal vanishes on its way "
            "back; use a critical init (numstab.init.apply_(model, 'critical')), a non-saturating activation "
            "or residual connections"
        )
        return Event("vanishing", step, _pick(self._names, low), tuple(norms[j] for j in low), bar, message)

    def _exploding(self, step: int, norms: list[float]) -> Event | None:
        factor, need = self.config.explode_factor, self.config.min_history
        # the window's minimum is <= its median: a cheap filter (false for NaN and empty windows), then the
        # exact median for the few left
        cols = [
            j
            for j, (value, low) in enumerate(zip(norms, self._low, strict=True))
            if value > factor * low and math.isfinite(value) and self._count[j] >= need
        ]
        medians = {j: _median(self._windows[j]) for j in cols}
        high = [j for j in cols if norms[j] > factor * medians[j]]
        if not high:
            return None
        message = (
            f"gradient norm above {factor:g}x its running median in {_shown(self._names, high)}: clip "
            "gradients (torch.nn.utils.clip_grad_norm_), lower the learning rate or check the init"
        )
        threshold = factor * max(medians[j] for j in high)
        values = tuple(norms[j] for j in high)
        return Event("exploding", step, _pick(self._names, high), values, threshold, message)


def _median(window: deque[float]) -> float:
    ordered = sorted(window)
    n = len(ordered)
    return 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])


def _pick(names: list[str], idx: list[int]) -> tuple[str, ...]:
    return tuple(names[i] for i in idx)


def _shown(names: list[str], idx: list[int]) -> str:
    picked = _pick(names, idx)
    return ", ".join(picked[:5]) + (" ..." if len(picked) > 5 else "")
