"""Benchmark: numstab.lab.mlp_gradients against the lecture's one-matrix-at-a-time loop.

Target (issue 4): at the chapter's settings (relu, sigmoid, 4 sigmoid - 2 x scales 0.1, 0.2, 0.4, 0.8 and
Xavier uniform; 10 repeats, 50 layers, width 100)
  1. at least 5x faster than the book-style loop (numpy float64, one matrix at a time), and
  2. within 2x of the floor: the matrix work at this machine's measured batched-matmul rate plus the
     random draws at the generator's measured rate, both measured here with the calls the lab makes
     (numpy's float32 matmul, torch's generator).
The lab shares one draw across scales and activations (common random numbers, stated in the result), so
relu (positively homogeneous) needs one run for all its scales; the floor counts the runs the lab computes.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mlp_gradients.py
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from numstab import activations
from numstab.lab import mlp_gradients

SPEEDUP_TARGET = 5.0
FLOOR_TARGET = 2.0
ACTIVATIONS = ("relu", "sigmoid", "scaled_sigmoid")
SCALES = (0.1, 0.2, 0.4, 0.8)
K, DEPTH, REPEATS = 100, 50, 10


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# the notebook's activations and their derivatives, in numpy
BOOK = {
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "scaled_sigmoid": (lambda x: 4 * _sigmoid(x) - 2, lambda x: 4 * _sigmoid(x) * (1 - _sigmoid(x))),
}


def book_loop() -> list[float]:
    """The lecture's synthetic_grad for every (activation, init): one matrix at a time, float64, np.random."""
    out = []
    limit = math.sqrt(6 / (K + K))
    weights = [lambda s=s: np.random.randn(K, K) * s for s in SCALES]
    weights.append(lambda: np.random.uniform(-limit, limit, (K, K)))
    for name in ACTIVATIONS:
        sigma, sigma_prime = BOOK[name]
        for get_weight in weights:
            mins = []
            for _ in range(REPEATS):
                h, y = np.random.randn(K, 1), np.eye(K)
                for _ in range(DEPTH):
                    w = get_weight()
                    a = w @ h
                    y = sigma_prime(a) * (w.T @ y)
                    h = sigma(a)
                nonzero = np.abs(y[y != 0])
                mins.append(nonzero.min() if nonzero.size else 0.0)
            out.append(float(np.mean(mins)))
    return out


def floor_workload() -> tuple[Callable[[], None], int, int]:
    """The work the fast path cannot avoid, as a callable: per layer, its two batched matmuls (the normal
    and the Xavier group, every configuration side by side, W^T Y with numpy's matmul as the lab does)
    and its two draws (into preallocated tensors, as the lab draws them).

    Returns the callable, its flops and its number of draws.
    """
    # the runs the lab computes: relu is positively homogeneous, so one run serves all its scales
    homogeneous = [activations.get(a).positively_homogeneous for a in ACTIVATIONS]
    configs_normal = sum(1 if h else len(SCALES) for h in homogeneous)
    configs_uniform = len(ACTIVATIONS)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((REPEATS, K, K), dtype=np.float32).transpose(0, 2, 1)  # W^T, as a view
    b_normal, b_uniform = (
        rng.standard_normal((REPEATS, K, n * K), dtype=np.float32) for n in (configs_normal, configs_uniform)
    )
    out_normal, out_uniform = np.empty_like(b_normal), np.empty_like(b_uniform)
    gen = torch.Generator().manual_seed(0)
    draw_normal, draw_uniform = torch.empty(REPEATS, K, K), torch.empty(REPEATS, K, K)

    def work() -> None:
        for _ in range(DEPTH):
            torch.randn(REPEATS, K, K, generator=gen, out=draw_normal)
            draw_uniform.uniform_(-1.0, 1.0, generator=gen)
            np.matmul(a, b_normal, out=out_normal)
            np.matmul(a, b_uniform, out=out_uniform)

    flops = DEPTH * 2 * REPEATS * K * K * (configs_normal + configs_uniform) * K
    return work, flops, DEPTH * 2 * REPEATS * K * K


def interleaved_medians(fns: list, runs: int) -> list[float]:
    """Median seconds of each callable, run in turn (so a noisy neighbour slows all of them alike)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> int:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    threads = torch.get_num_threads()
    work, flops, draws = floor_workload()
    mlp_gradients(), work()  # warm-up
    np.random.seed(0)
    fast, floor, book = interleaved_medians([mlp_gradients, work, book_loop], 5)
    gflops = flops / floor / 1e9  # a lower bound on the matmul rate (the draws share the time)
    speedup, over_floor = book / fast, fast / floor
    print(f"threads: torch {threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    crn = mlp_gradients(width=2, depth=1, repeats=1).common_random_numbers
    print(
        f"setting: {len(ACTIVATIONS)} activations x {len(SCALES) + 1} inits, {REPEATS} repeats, "
        f"{DEPTH} layers, width {K} (common random numbers: {crn})"
    )
    print(f"{'path':<38}{'median s':>10}")
    print(f"{'book-style loop (numpy float64)':<38}{book:>10.3f}")
    print(f"{'numstab.lab.mlp_gradients (float32)':<38}{fast:>10.3f}")
    print(
        f"{'floor (its matmuls + draws, measured)':<38}{floor:>10.3f}   "
        f"[{flops / 1e9:.1f} GFLOP + {draws / 1e6:.0f} M draws: {gflops:.1f} GFLOP/s with the draws]"
    )
    print(f"speed-up over the book loop: {speedup:.1f}x (target >= {SPEEDUP_TARGET:g}x)")
    print(f"time over the floor:         {over_floor:.2f}x (target <= {FLOOR_TARGET:g}x)")
    ok = speedup >= SPEEDUP_TARGET and over_floor <= FLOOR_TARGET
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
