"""Benchmark: a 200 x 200 phase diagram (chi_1, xi_c, critical line) for tanh and for gelu.

TARGET: numstab.theory.phase_diagram takes <= 1 s per activation for a 200 x 200 grid, and is >= 20x
faster than the per-point loop below.

Baseline (the obvious code): for each grid point, iterate the variance map q <- V(q) from q = 1 to its
fixed point (|dq| <= 1e-10 q, at most 1000 steps), take chi_1 there, and in the chaotic phase iterate
the correlation map to c* the same way for xi_c; each step is one call of numstab.theory's scalar
quadrature. The loop is timed on an evenly spread 10 x 10 subset of the grid and extrapolated per
point to all 40 000 points (it would take many minutes otherwise).

Both run in this one process, single-threaded (OMP_NUM_THREADS=1 unless set). The fast path is timed
5 times (median); the baseline once per activation on its subset. The machine is shared, so both the
process CPU time and the wall time are printed, with the load average; targets are judged on CPU time
(what the code costs; wall time under contention also counts other jobs). Exits 1 if a target is missed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/phase_diagram.py
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from numstab import activations, theory  # noqa: E402
from numstab.theory.quadrature import bivariate_expectation, gaussian_expectation  # noqa: E402

MAX_SECONDS = 1.0
MIN_SPEEDUP = 20.0
WEIGHT_STDS = np.linspace(0.5, 4.0, 200)
BIAS_STDS = np.linspace(0.0, 1.0, 200)
SUBSET = slice(5, 200, 20)  # 10 rows x 10 columns of the grid for the baseline
REPEATS = 5


def _iterate(step, x: float, *, limit: float = 1e12) -> float:
    """Iterate x <- step(x) until |dx| <= 1e-10 x (at most 1000 steps); inf once past ``limit``."""
    for _ in range(1000):
        new = step(x)
        if new > limit:
            return math.inf
        if abs(new - x) <= 1e-10 * max(abs(x), 1e-300):
            return new
        x = new
    return x


def baseline_point(name: str, weight_std: float, bias_std: float) -> tuple[float, float]:
    """(chi_1, xi_c) at one point the obvious way: iterate the maps, one scalar quadrature per step."""
    act = activations.get(name)
    w2, b2 = weight_std**2, bias_std**2
    q = _iterate(lambda v: theory.variance_map(act, weight_std, bias_std, v), 1.0)
    if math.isinf(q):
        return w2 * 0.5, math.inf  # gelu's f'(+-inf)^2 average is 1/2
    chi = w2 * gaussian_expectation(lambda x: act.derivative(x) ** 2, q)
    if chi <= 1.0:
        return chi, (-1.0 / math.log(chi) if chi < 1.0 else math.inf)
    c = _iterate(lambda c: min(1.0, (w2 * bivariate_expectation(act.fn, act.fn, q, q, c) + b2) / q), 0.5)
    chi_c = w2 * bivariate_expectation(act.derivative, act.derivative, q, q, c)
    return chi, -1.0 / math.log(chi_c)


def time_fast(name: str) -> tuple[float, float, theory.PhaseDiagram]:
    """(median CPU s, median wall s, the diagram) over REPEATS runs."""
    cpu, wall, diagram = [], [], None
    for _ in range(REPEATS):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        diagram = theory.phase_diagram(name, WEIGHT_STDS, BIAS_STDS)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu), statistics.median(wall), diagram


def time_baseline(name: str, diagram: theory.PhaseDiagram) -> tuple[float, float, float]:
    """(CPU s per point, wall s per point, worst relative disagreement of chi_1 with the fast path)."""
    points = [(i, j) for i in range(200)[SUBSET] for j in range(200)[SUBSET]]
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    results = [baseline_point(name, WEIGHT_STDS[j], BIAS_STDS[i]) for i, j in points]
    cpu = (time.process_time() - start_cpu) / len(points)
    wall = (time.perf_counter() - start_wall) / len(points)
    worst = max(abs(chi / diagram.chi1[i, j] - 1.0) for (i, j), (chi, _) in zip(points, results, strict=True))
    return cpu, wall, worst


def main() -> int:
    print(f"phase diagram 200 x 200, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; fast path: median of {REPEATS}; "
          f"loop: {len(range(200)[SUBSET]) ** 2} points, extrapolated to 40 000")
    print(f"{'activation':<10} {'fast cpu (s)':>12} {'fast wall (s)':>13} {'loop cpu/point (ms)':>19} "
          f"{'loop cpu, 40k (s)':>17} {'speedup (cpu)':>13} {'speedup (wall)':>14} {'chi1 agree':>10}")
    ok = True
    for name in ("tanh", "gelu"):
        fast_cpu, fast_wall, diagram = time_fast(name)
        loop_cpu, loop_wall, worst = time_baseline(name, diagram)
        points = WEIGHT_STDS.size * BIAS_STDS.size
        speedup, speedup_wall = loop_cpu * points / fast_cpu, loop_wall * points / fast_wall
        print(f"{name:<10} {fast_cpu:>12.3f} {fast_wall:>13.3f} {1e3 * loop_cpu:>19.2f} "
              f"{loop_cpu * points:>17.1f} {speedup:>12.0f}x {speedup_wall:>13.0f}x {worst:>10.1e}")
        ok &= fast_cpu <= MAX_SECONDS and speedup >= MIN_SPEEDUP
    print(f"target: fast path <= {MAX_SECONDS} s CPU and >= {MIN_SPEEDUP:.0f}x the loop: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
