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
