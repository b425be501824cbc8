"""Trend events against a direct computation: exploding iff norm > factor x median of the last window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numstab.errors import InvalidArgumentError
from numstab.monitor.events import TrendConfig, TrendDetector


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exploding_matches_numpy_median_of_the_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    config = TrendConfig(explode_factor=3.0, window=7, min_history=4, vanish_below=1e-30)
    detector = TrendDetector(config)
    names = ["a", "b", "c"]
    history: list[np.ndarray] = []
    for step in range(200):
        values = np.exp(rng.normal(0.0, 1.0, size=3))  # log-normal: some steps exceed 3x the median
        if step % 17 == 5:
            values[1] = math.nan  # non-finite norms stay out of the window
        events = detector.observe(step, names, values)
        window = [np.array([h[j] for h in history if np.isfinite(h[j])][-7:]) for j in range(3)]
        ready = [len(w) >= 4 for w in window]
        expected = [names[j] for j in range(3) if ready[j] and values[j] > 3.0 * np.median(window[j])]
        got = [layer for e in events if e.kind == "exploding" for layer in e.layers]
        assert got == expected, step
        history.append(values)


def test_vanishing_fires_under_the_threshold_only() -> None:
    detector = TrendDetector(TrendConfig(vanish_below=1e-6))
    (event,) = detector.observe(0, ["x", "y", "z"], np.array([1e-7, 1e-6, 0.0]))
    assert event.kind == "vanishing" and event.layers == ("x", "z") and event.threshold == 1e-6


def test_config_rejects_bad_thresholds() -> None:
    with pytest.raises(InvalidArgumentError, match="explode_factor"):
        TrendConfig(explode_factor=0.0)
    with pytest.raises(InvalidArgumentError, match="window must be >= 1"):
        TrendConfig(window=0)


def test_inf_and_nan_norms_never_explode_and_stay_out_of_the_window() -> None:
    # a step with inf/NaN norms takes the slow path of the window update; the oracle is the same direct
    # median as above, so the window must hold exactly the finite norms in order
    config = TrendConfig(explode_factor=2.0, window=5, min_history=3, vanish_below=1e-30, vanish_drop=1e300)
    detector = TrendDetector(config)
    names = ["a", "b"]
    finite: list[list[float]] = [[], []]
    rng = np.random.default_rng(3)
    for step in range(120):
        values = np.exp(rng.normal(0.0, 1.0, size=2))
        if step % 7 == 3:
            values[0] = math.inf
        if step % 11 == 4:
            values[1] = math.nan
        events = detector.observe(step, names, values)
        ready = [math.isfinite(values[j]) and len(finite[j]) >= 3 for j in range(2)]
        expected = [names[j] for j in range(2) if ready[j] and values[j] > 2.0 * np.median(finite[j][-5:])]
        assert [layer for e in events for layer in e.layers] == expected, step
        for j in range(2):
            if math.isfinite(values[j]):
                finite[j].append(float(values[j]))


def test_min_history_counts_finite_norms_beyond_a_shorter_window() -> None:
    # min_history counts every finite norm seen, not the window's length: window 3 < min_history 5
    detector = TrendDetector(TrendConfig(window=3, min_history=5, explode_factor=10.0))
    assert [detector.observe(i, ["a"], [1.0]) for i in range(4)] == [(), (), (), ()]
    assert detector.observe(4, ["a"], [11.0]) == ()  # 4 finite norms seen: no verdict yet
    (event,) = detector.observe(5, ["a"], [500.0])  # window (1, 1, 11): median 1
    assert event.kind == "exploding" and event.values == (500.0,) and event.threshold == 10.0


def _layers(n: int) -> list[str]:
    return [f"l{i}" for i in range(n)]


@pytest.mark.parametrize("drop,fires", [(1000.0, True), (50.0, False)])
def test_relative_vanishing_compares_bottom_to_top_against_its_start(drop: float, fires: bool) -> None:
    # 8 layers: bottom = l0, l1 and top = l6, l7 (quarters); bottom norms 1e-3..1, far from the absolute bar
    detector = TrendDetector(TrendConfig(min_history=4, vanish_below=1e-30))
    start = np.array([1.0, 2.0, 5.0, 5.0, 5.0, 5.0, 3.0, 4.0])
    assert all(detector.observe(i, _layers(8), start) == () for i in range(4))  # the reference: 4 steps
    later = start.copy()
    later[:2] /= drop
    events = detector.observe(4, _layers(8), later)
    assert [e.kind for e in events] == (["vanishing"] if fires else [])
    if fires:
        (event,) = events
        assert event.layers == ("l0", "l1") and event.values == (1.0 / drop, 2.0 / drop)
        # the bottom's geometric-mean bar: top's sqrt(3 * 4) x start ratio sqrt(1 * 2) / sqrt(3 * 4), over 100
        assert event.threshold == pytest.approx(math.sqrt(2.0) / 100.0, rel=1e-12)


def test_relative_vanishing_needs_no_absolute_bar_and_yields_to_it() -> None:
    detector = TrendDetector(TrendConfig(min_history=2, vanish_below=1e-6))
    for i in range(2):
        detector.observe(i, _layers(4), [1.0, 1.0, 1.0, 1.0])
    # both rules apply: one event, the absolute one
    (event,) = detector.observe(2, _layers(4), [1e-9, 1.0, 1.0, 1.0])
    assert event.threshold == 1e-6 and event.layers == ("l0",)


def test_rate_limiter_counts_every_occurrence_and_keys_on_kind_and_layers() -> None:
    from numstab.monitor.events import Event, RateLimiter

    limit = RateLimiter(repeat_after=2)
    a = Event("exploding", 0, ("a",), (9.0,), 1.0, "")
    b = Event("exploding", 0, ("b",), (9.0,), 1.0, "")
    reported = [[(e.layers, e.count) for e in limit(events)] for events in [(a,), (a, b), (a,), (), (a,)]]
    assert reported == [[(("a",), 1)], [(("b",), 1)], [(("a",), 3)], [], [(("a",), 4)]]
    with pytest.raises(InvalidArgumentError, match="repeat_after must be >= 1"):
        TrendConfig(repeat_after=0)
