"""How the diagnose benchmarks measure cost: CPU-time medians side by side, and RSS peaks in fresh processes.

Shared by ``benchmarks/diagnose_overhead.py`` and ``benchmarks/check_scorecard.py`` (a script's own folder
is on ``sys.path``, so they ``import measure``). The targets are issue 11's for ``numstab.diagnose``.

Time: the variants run alternately in one process, ``repeats`` times after one warm-up each, and the
median CPU time (``time.process_time``: on one thread other jobs on the machine do not count) and the
median wall time of each are returned.

Peak memory: each variant runs in its own fresh child process (``python SCRIPT --child ARGS...``) with
MALLOC_MMAP_THRESHOLD_=131072, so glibc serves every block above 128 KiB with mmap and returns it on free
(no dynamic threshold, no heap reuse) and the resident set size (RSS) follows live tensor memory. The
child builds its model and inputs, runs one warm-up pass, resets the kernel's RSS high-water mark
(writing 5 to /proc/self/clear_refs), reads its RSS, runs the variant once and reads the high-water mark
(VmHWM in /proc/self/status). The difference is the extra memory the pass needed: saved activations,
gradients and whatever the hooks hold. The ratio is over that working set, which leaves out the weights
and the interpreter (counting them would flatter the ratio). RSS, not tracemalloc: torch's CPU tensors are
not Python allocations.

Examples:
    >>> cpu, wall = time_medians({"noop": lambda: None}, repeats=3)["noop"]
    >>> 0.0 <= cpu < 0.1 and 0.0 <= wall < 0.1
    True
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping

#: diagnose / plain forward+backward, CPU time, on every model.
TIME_TARGET = 3.0
#: the same ratio at the median over the models.
MEDIAN_TIME_TARGET = 2.0
#: diagnose's peak extra RSS / the plain pass's, on every model.
MEMORY_TARGET = 1.2


def time_medians(
    variants: Mapping[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float]]:
    """``{variant: (median CPU seconds, median wall seconds)}``, alternating after one warm-up each."""
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    wall: dict[str, list[float]] = {v: [] for v in variants}
    for run in variants.values():
        run()
    for _ in range(repeats):
        for name, run in variants.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return {v: (statistics.median(cpu[v]), statistics.median(wall[v])) for v in variants}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1])


def report_peak(run: Callable[[], object]) -> None:
    """In the child: print ``{"extra_kib": ...}``, the RSS high-water mark of one ``run()`` above the RSS
    before it (call it after the warm-up pass)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _status_kib("VmRSS")
    run()
    print(json.dumps({"extra_kib": _status_kib("VmHWM") - base}))


def peak_extra_mib(script: str, *args: str) -> float:
    """Run ``python script --child *args`` in a fresh process (one thread, mmap threshold 128 KiB) and
    return the extra MiB its :func:`report_peak` printed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([sys.executable, script, "--child", *args], check=True, capture_output=True,
                         text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_kib"] / 1024
