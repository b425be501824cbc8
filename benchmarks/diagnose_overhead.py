"""Claim: numstab.diagnose costs at most 3x a plain forward+backward in time and 1.2x in peak memory.

Target: time ratio (diagnose / plain, medians) <= 3.0 and peak-memory ratio <= 1.2, for
  - a 4-layer torch.nn.TransformerEncoder (d_model 256, 8 heads, feed-forward 1024, seq 64, batch 16),
  - a 24-layer ReLU MLP (width 1024, batch 256, Kaiming init),
both in train mode, single-threaded (torch.set_num_threads(1), OMP_NUM_THREADS=1).

"plain" is ``model.zero_grad(); out = model(x); (out * r).sum().backward()`` (zero_grad sets .grad to
None, as a training loop does) with the same unit-variance r that diagnose uses as its backward seed.
"diagnose" is ``numstab.diagnose(model, x)``: hooks on every parameter-owning and activation module,
float64 statistics in every hook, range checks for four formats, dead and duplicate units, weight
statistics, rules and the report.

Time: both run alternately in this process, ``--repeats`` times after one warm-up each; medians and
their ratio are printed.

Peak memory: each variant runs in its own fresh child process with MALLOC_MMAP_THRESHOLD_=131072, so
glibc serves every block above 128 KiB with mmap and returns it on free (no dynamic threshold, no heap
reuse) and the resident set size (RSS) follows live tensor memory. The child builds the model and
inputs, runs one warm-up pass, sets .grad to None, resets the kernel's RSS high-water mark (writing 5
to /proc/self/clear_refs), reads its RSS, runs the variant once and reads the high-water mark (VmHWM in
/proc/self/status). The difference is the extra memory the pass needed: saved activations, gradients
and whatever the hooks hold. The ratio is over that working set, which leaves out the weights and the
interpreter (counting them would flatter the ratio).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diagnose_overhead.py [--repeats 5]
Exit status 1 when a ratio misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

TIME_TARGET = 3.0
MEMORY_TARGET = 1.2


def transformer() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(256, 8, dim_feedforward=1024, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
    return model.train(), torch.randn(16, 64, 256)


def mlp() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(24):
        lin = nn.Linear(1024, 1024)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers).train(), torch.randn(256, 1024)


MODELS: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {"transformer": transformer, "mlp": mlp}


def plain(model: nn.Module, x: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    accumulate(model, x)


def accumulate(model: nn.Module, x: torch.Tensor) -> None:
    """plain without zero_grad: .grad already exists and is accumulated into (informational row)."""
    out = model(x)
    r = torch.randn(out.shape, generator=torch.Generator().manual_seed(0))
    (out * r).sum().backward()


def diagnosed(model: nn.Module, x: torch.Tensor) -> None:
    import numstab

    numstab.diagnose(model, x)


VARIANTS = {"plain": plain, "diagnose": diagnosed}
MEMORY_ONLY = {"accumulate": accumulate}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1])


def child(model_name: str, variant: str) -> None:
    """Run in a fresh process: print the peak extra RSS (KiB) one pass of ``variant`` needed."""
    torch.set_num_threads(1)
    model, x = MODELS[model_name]()
    {**VARIANTS, **MEMORY_ONLY}[variant](model, x)  # warm-up: lazy initialisation
    if variant != "accumulate":  # the measured pass allocates its own .grad, as a training step does
        model.zero_grad(set_to_none=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _status_kib("VmRSS")
    {**VARIANTS, **MEMORY_ONLY}[variant](model, x)
    print(json.dumps({"extra_kib": _status_kib("VmHWM") - base}))


def peak_extra_mib(model_name: str, variant: str) -> float:
    cmd = [sys.executable, __file__, "--child", model_name, variant]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_kib"] / 1024


def time_medians(model_name: str, repeats: int) -> dict[str, float]:
    model, x = MODELS[model_name]()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for variant in VARIANTS:
        VARIANTS[variant](model, x)  # warm-up
    for _ in range(repeats):
        for variant, fn in VARIANTS.items():
            start = time.perf_counter()
            fn(model, x)
            times[variant].append(time.perf_counter() - start)
    return {v: statistics.median(t) for v, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    torch.set_num_threads(1)
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
          f"repeats {args.repeats}; torch {torch.__version__}")
    print(f"{'model':<12}{'plain s':>10}{'diagnose s':>12}{'time x':>8}{'plain MiB':>11}{'diag MiB':>10}"
          f"{'mem x':>7}")
    ok = True
    notes: list[str] = []
    for name in MODELS:
        t = time_medians(name, args.repeats)
        m = {v: peak_extra_mib(name, v) for v in (*VARIANTS, *MEMORY_ONLY)}
        tr, mr = t["diagnose"] / t["plain"], m["diagnose"] / m["plain"]
        ok &= tr <= TIME_TARGET and mr <= MEMORY_TARGET
        print(f"{name:<12}{t['plain']:>10.3f}{t['diagnose']:>12.3f}{tr:>8.2f}{m['plain']:>11.1f}"
              f"{m['diagnose']:>10.1f}{mr:>7.2f}")
        notes.append(f"{name}: with .grad already allocated (accumulating, no zero_grad) the plain pass "
                     f"needs {m['accumulate']:.1f} MiB; diagnose / that = "
                     f"{m['diagnose'] / m['accumulate']:.2f} (information, not the target)")
    print("\n".join(notes))
    print(f"targets: time x <= {TIME_TARGET}, mem x <= {MEMORY_TARGET}: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
