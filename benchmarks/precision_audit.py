"""Claim: numstab.precision.audit costs at most 3x a plain forward+backward for the default recipe set.

Target: time ratio (audit / plain, medians of CPU time) <= 3.0 on a GPT-2-small-sized model: HF
``GPT2LMHeadModel(GPT2Config())`` (12 layers, d_model 768, 12 heads, vocabulary 50257: 124 M parameters,
built from the config, nothing downloaded), train mode, one sequence of ``--tokens`` tokens,
single-threaded (torch.set_num_threads(1), OMP_NUM_THREADS=1).

"plain" is ``model.zero_grad(); logits = model(ids).logits; (logits * r).sum().backward()`` with the same
unit-variance ``r`` the audit draws as its backward seed. "audit" is
``numstab.precision.audit(model, ids)`` with the default recipes (bfloat16, float16, e4m3_cast, e5m2_cast,
e4m3_tensor, e5m2_tensor, mxfp8_e4m3, mxfp8_e5m2, nvfp4): 49 GEMM-like layers (4 Conv1D per block and
the 38.6 M-value lm_head), each layer's input, weight and output gradient quantized under all nine.

Both run alternately in this process, ``--repeats`` times after one warm-up each. CPU time
(``time.process_time``) is what the code costs; wall time also counts whatever else the machine runs.
The ratio of CPU-time medians is judged; both are printed.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/precision_audit.py [--tokens 512] [--repeats 3]
Exit status 1 when the ratio misses the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch

TARGET = 3.0


def gpt2_small(tokens: int) -> tuple[torch.nn.Module, torch.Tensor]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).train()
    ids = torch.randint(0, 50257, (1, tokens), generator=torch.Generator().manual_seed(0))
    return model, ids


def plain(model: torch.nn.Module, ids: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    logits = model(ids).logits
    r = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0))
    (logits * r).sum().backward()


def audited(model: torch.nn.Module, ids: torch.Tensor) -> None:
    from numstab.precision import audit

    audit(model, ids)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, ids = gpt2_small(args.tokens)
    variants = {"plain": plain, "audit": audited}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for fn in variants.values():
        fn(model, ids)  # warm-up
    for _ in range(args.repeats):
        for name, fn in variants.items():
            runs[name].append(timed(lambda fn=fn: fn(model, ids)))
    cpu = {n: statistics.median(c for c, _ in r) for n, r in runs.items()}
    wall = {n: statistics.median(w for _, w in r) for n, r in runs.items()}
    print(f"GPT-2 small (124 M parameters), 1 x {args.tokens} tokens, {torch.get_num_threads()} thread(s), "
          f"{args.repeats} repeats, load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<8} {'CPU median':>11} {'wall median':>12}")
    for name in variants:
        print(f"{name:<8} {cpu[name]:>10.2f}s {wall[name]:>11.2f}s")
    ratio, wall_ratio = cpu["audit"] / cpu["plain"], wall["audit"] / wall["plain"]
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"ratio audit / plain: {ratio:.2f}x CPU ({wall_ratio:.2f}x wall); target <= {TARGET}x: {verdict}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
