"""Claim: the trainability map trains >= 5x faster batched than one model at a time, and in <= 5 minutes.

TARGET_RATIO = 5.0   (one-model-at-a-time time / batched time, summed over the map's depths)
TARGET_SECONDS = 300 (the full map: 8 depths x 12 sigma_w x 2 seeds = 192 tanh MLPs, 300 SGD steps each)

Both sides do the same work per step for every model: forward and backward on a minibatch of 32 digits,
a check that the loss and every gradient entry are finite (for the failure step), the per-layer gradient
norms on recording steps, and the SGD update.

- batched: ``numstab.lab._batched.train``: the 24 models (12 sigma_w x 2 seeds) of a depth as stacked
  parameters, one ``baddbmm`` per layer.
- one at a time: the ordinary loop: ``nn.Sequential`` of ``nn.Linear``/``nn.Tanh``, ``torch.optim.SGD``,
  ``F.cross_entropy``, ``torch._foreach_abs`` + ``amax`` (the finiteness check) and ``torch._foreach_norm``
  (the norms). It is timed on 2 of the 24 models of each depth and extrapolated x 12 (all 24 cost the
  same: same shapes, same steps); that is what "extrapolated" means in the table.

Each side is timed ``REPEATS`` times per depth on ``STEPS`` steps, interleaved, and the median is kept.
Then the full map runs once through ``numstab.lab.training.trainability_map`` and its wall time is checked.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trainability_map.py`` (``--quick`` skips the full map).
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from numstab.lab import _batched, _digits, training

TARGET_RATIO = 5.0
TARGET_SECONDS = 300.0
DEPTHS = (2, 4, 8, 12, 16, 24, 32, 48)
WEIGHT_STDS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0)
SEEDS = (0, 1)
BIAS_STD = 0.05**0.5
WIDTH, BATCH, LR, RECORD_EVERY = 32, 32, 0.01, 6
STEPS, REPEATS, TIMED_MODELS = 30, 3, 2


def _specs() -> list[_batched.InitSpec]:
    spec = _batched.InitSpec
    return [spec("weight_std", None, BIAS_STD, seed, weight_std=s) for s in WEIGHT_STDS for seed in SEEDS]


def batched_seconds(depth: int, data: _digits.Digits) -> float:
    """Seconds for STEPS steps of all 24 models of one depth, batched."""
    arch = _batched.Architecture("tanh", depth, WIDTH)
    stack = _batched.init_stack(arch, _specs())
    lrs = torch.full((len(_specs()),), LR)
    start = time.perf_counter()
    _batched.train(arch, stack, lrs, data, steps=STEPS, batch_size=BATCH, record_every=RECORD_EVERY)
    return time.perf_counter() - start


def _sequential(depth: int, spec: _batched.InitSpec) -> nn.Sequential:
    g = torch.Generator().manual_seed(spec.seed)
    layers: list[nn.Module] = []
    for d_out, d_in in _batched.Architecture("tanh", depth, WIDTH).shapes():
        lin = nn.Linear(d_in, d_out)
        nn.init.normal_(lin.weight, 0.0, spec.weight_std / math.sqrt(d_in), generator=g)
        nn.init.normal_(lin.bias, 0.0, spec.bias_std, generator=g)
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def one_model_seconds(depth: int, spec: _batched.InitSpec, data: _digits.Digits) -> float:
    """Seconds for STEPS steps of one model, the ordinary way, with the same checks and records."""
    model = _sequential(depth, spec)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=LR)
    order = _digits.batch_indices(len(data.y_train), BATCH, STEPS, generator=torch.Generator().manual_seed(0))
    failure, records = None, []
    start = time.perf_counter()
    for step in range(STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(data.x_train[order[step]]), data.y_train[order[step]])
        loss.backward()
        # the fastest exact check measured for one model (foreach_norm(inf) and abs().amax() are slower)
        largest = torch.stack([g.amax() for g in torch._foreach_abs([p.grad for p in params])]).max()
        if failure is None and not bool(torch.isfinite(loss) & torch.isfinite(largest)):
            failure = step
        if step % RECORD_EVERY == 0:
            records.append((loss.item(), torch.stack(torch._foreach_norm([p.grad for p in params]))))
        opt.step()
    return time.perf_counter() - start


def compare(data: _digits.Digits) -> tuple[float, list[list[str]]]:
    """Per depth, interleaved medians of both sides; returns (ratio of the sums, table rows)."""
    specs = _specs()
    timed = [specs[0], specs[-1]][:TIMED_MODELS]
    scale = len(specs) / len(timed)
    rows, batched_total, single_total = [], 0.0, 0.0
    for depth in DEPTHS:
        fast, slow = [], []
        for _ in range(REPEATS):
            fast.append(batched_seconds(depth, data))
            slow.append(sum(one_model_seconds(depth, s, data) for s in timed) * scale)
        f, s = statistics.median(fast), statistics.median(slow)
        batched_total, single_total = batched_total + f, single_total + s
        rows.append([str(depth), f"{1e3 * f / STEPS:.2f}", f"{1e3 * s / STEPS:.2f}", f"{s / f:.1f}x"])
    return single_total / batched_total, rows


def full_map_seconds() -> float:
    start = time.perf_counter()
    training.trainability_map(
        DEPTHS, WEIGHT_STDS, seeds=SEEDS, steps=300, lr=LR, width=WIDTH, batch_size=BATCH
    )
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    data = _digits.load(seed=0)
    batched_seconds(2, data)  # warm-up: allocator, kernels
    one_model_seconds(2, _specs()[0], data)
    ratio, rows = compare(data)
    print(f"trainability map, tanh, width {WIDTH}, batch {BATCH}, {len(_specs())} models per depth, "
          f"torch threads = {threads}, medians of {REPEATS} x {STEPS} steps")  # fmt: skip
    print(f"{'depth':>5}  {'batched ms/step':>16}  {'one-at-a-time ms/step (x12 extrapolated)':>42}  ratio")
    for depth, fast, slow, r in rows:
        print(f"{depth:>5}  {fast:>16}  {slow:>42}  {r:>5}")
    print(f"ratio over the map (sum of depths): {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x)")
    ok = ratio >= TARGET_RATIO
    if "--quick" not in argv:
        seconds = full_map_seconds()
        print(f"full map (8 depths x 12 sigma_w x 2 seeds, 300 steps), batched: {seconds:.1f} s "
              f"(target <= {TARGET_SECONDS:.0f} s)")  # fmt: skip
        ok = ok and seconds <= TARGET_SECONDS
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
