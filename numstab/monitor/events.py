"""Trend events: layers whose gradient norm vanishes, explodes, or goes non-finite during training.

The rules follow the two failure modes of D2L's "Numerical Stability and Initialization" (4.8): a layer's
gradient shrinking towards zero (vanishing) or growing far beyond its usual size (exploding), judged
layer by layer on the norms :class:`~numstab.monitor.GradientMonitor` already has on the host, so detection
adds no device work.

- **vanishing**, absolute: the layer's norm is below ``TrendConfig.vanish_below`` (default ``1e-8``).
- **vanishing**, relative (a trend): the gradient reaching the bottom layers (the quarter nearest the input,
  in model order) has fallen relative to the top layers' (the quarter nearest the output) by more than
  ``TrendConfig.vanish_drop`` (default 100) since the start of training. With :math:`B, T` the bottom and top
  layers and :math:`\\bar g_S = \\exp(\\operatorname{mean}_{l \\in S} \\ln \\|g_l\\|)` their geometric-mean
  norms,
  the ratio :math:`r_t = \\bar g_B / \\bar g_T` is compared with its median :math:`r_0` over the first
  ``TrendConfig.min_history`` recorded steps: the event fires when :math:`r_t < r_0 / \\text{vanish\\_drop}`.
  A ratio to itself, not an absolute bar: layers of different sizes and kinds have norms orders of magnitude
  apart on a healthy network, while a bottom that learns ever more slowly than the top is the vanishing
  gradient of Hochreiter (1991) and Glorot & Bengio (2010), seen as it develops.
- **exploding**: the layer's norm exceeds ``TrendConfig.explode_factor`` (default 100) times the median of
  its last ``TrendConfig.window`` finite norms, once ``TrendConfig.min_history`` of them are known. A running
  median, not a mean, so that one spike does not raise the bar for the next.
- **nonfinite**: some gradient is ``inf`` or ``NaN``. Under a ``GradScaler`` a non-finite step is first an
  overflow the scaler handles by skipping and halving its scale; it becomes a fault only when it persists for
  ``TrendConfig.amp_patience`` consecutive recorded steps while the scale keeps falling.

An event is reported once, not at every step while its condition lasts: the same kind on the same layers is
held back for ``TrendConfig.repeat_after`` recorded steps after it was reported (:class:`RateLimiter`), and
``Event.count`` says how many times it has occurred in all, itself included.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from numstab.errors import check_int_at_least, check_positive

__all__ = ["Event", "TrendConfig", "TrendDetector", "RateLimiter", "EventKind"]

EventKind = Literal["vanishing", "exploding", "nonfinite"]


@dataclass(frozen=True)
class TrendConfig:
    """Thresholds of the trend events (all documented in :mod:`numstab.monitor.events`).

    Attributes:
        vanish_below: a layer norm under this (absolute) is "vanishing".
        vanish_drop: the bottom-to-top ratio of layer norms falling by more than this factor from its start is
            "vanishing" (relative).
        explode_factor: a layer norm above this many times its running median is "exploding".
        window: number of recent finite norms per layer in the running median.
        min_history: norms needed before "exploding" can fire (no verdict on the first steps).
        amp_patience: consecutive skipped steps with a falling scale before a non-finite gradient under a
            GradScaler counts as a fault rather than an overflow the scaler handles.
        repeat_after: recorded steps before the same event (kind and layers) is reported again.

    Examples:
        >>> TrendConfig(vanish_below=1e-6).explode_factor
        100.0
    """

    vanish_below: float = 1e-8  # far below float32 round-off of O(1) weights: the layer has stopped learning
    explode_factor: float = 100.0  # two orders of magnitude above the recent median
    window: int = 50  # recorded steps in the running median
    min_history: int = 10  # steps before "exploding" may fire
    amp_patience: int = 8  # the scale fell 2**8 = 256-fold and the gradients are still non-finite
    # two orders of magnitude, as explode_factor: far beyond the bottom/top drift of healthy training
    vanish_drop: float = 100.0
    repeat_after: int = 100  # a persisting condition is reported once per 100 recorded steps, with a count

    def __post_init__(self) -> None:
        check_positive("vanish_below", self.vanish_below)
        check_positive("explode_factor", self.explode_factor)
        check_int_at_least("window", self.window, 1)
        check_int_at_least("min_history", self.min_history, 1)
        check_int_at_least("amp_patience", self.amp_patience, 1)
        check_positive("vanish_drop", self.vanish_drop)
        check_int_at_least("repeat_after", self.repeat_after, 1)

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
        count: how many times this event (same kind, same layers) has occurred so far, itself included; more
            than 1 when repeats were held back (:class:`RateLimiter`).

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
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Return the event as JSON-ready plain data."""
        return {
            "kind": self.kind,
            "step": self.step,
            "layers": list(self.layers),
            "values": list(self.values),
            "threshold": self.threshold,
            "message": self.message,
            "count": self.count,
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
    _early: list[float] = field(default_factory=list)  # log bottom/top ratios of the first recorded steps
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
        absolute = self._vanishing(step, norms)
        relative = self._relative(step, norms)  # always run: it keeps the reference ratio up to date
        found = (absolute or relative, self._exploding(step, norms))
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
        self._early = []

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

    def _relative(self, step: int, norms: list[float]) -> Event | None:
        """The bottom quarter's geometric-mean norm against the top quarter's, relative to its start."""
        k = len(norms) // 4 or 1
        if len(norms) < 2 or not all(0.0 < v < math.inf for v in norms[:k] + norms[-k:]):
            return None  # one layer, or a zero/non-finite norm (the absolute rules' and the fault's business)
        low = sum(math.log(v) for v in norms[:k]) / k
        high = sum(math.log(v) for v in norms[-k:]) / k
        if len(self._early) < self.config.min_history:
            self._early.append(low - high)
            return None
        bar = _median(self._early) - math.log(self.config.vanish_drop)
        if low - high >= bar:
            return None
        bottom = list(range(k))
        message = (
            f"the gradient reaching the bottom layers ({_shown(self._names, bottom)}) fell more than "
            f"{self.config.vanish_drop:g}x relative to the top layers' since the first "
            f"{self.config.min_history} recorded steps: the bottom is learning ever more slowly; check for "
            "saturating activations, lower the learning rate, or add normalization or residual connections"
        )
        threshold = math.exp(high + bar)  # the bottom's geometric-mean norm under which this fires
        return Event("vanishing", step, _pick(self._names, bottom), tuple(norms[:k]), threshold, message)

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


@dataclass
class RateLimiter:
    """Report each event (same kind, same layers) at most once per ``repeat_after`` recorded steps.

    Call it once per recorded step with that step's events; it returns those to report, each with its
    ``count`` (occurrences so far, itself included). Memory: one entry per distinct (kind, layers).

    Examples:
        >>> limit = RateLimiter(repeat_after=3)
        >>> e = Event("nonfinite", 0, ("fc.weight",), (math.inf,), math.nan, "...")
        >>> [[x.count for x in limit((e,))] for _ in range(5)]
        [[1], [], [], [4], []]
    """

    repeat_after: int
    _seen: int = 0
    _last: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)
    _total: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)

    def __call__(self, events: tuple[Event, ...]) -> tuple[Event, ...]:
        reported = []
        for event in events:
            key = (event.kind, event.layers)
            self._total[key] = self._total.get(key, 0) + 1
            last = self._last.get(key)
            if last is None or self._seen - last >= self.repeat_after:
                self._last[key] = self._seen
                reported.append(replace(event, count=self._total[key]))
        self._seen += 1
        return tuple(reported)


def _median(window: deque[float] | list[float]) -> float:
    ordered = sorted(window)
    n = len(ordered)
    return 0.5 * (ordered[(n - 1) // 2] + ordered[n // 2])


def _pick(names: list[str], idx: list[int]) -> tuple[str, ...]:
    return tuple(names[i] for i in idx)


def _shown(names: list[str], idx: list[int]) -> str:
    picked = _pick(names, idx)
    return ", ".join(picked[:5]) + (" ..." if len(picked) > 5 else "")
