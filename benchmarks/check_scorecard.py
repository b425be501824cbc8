"""Claim: `numstab check` verdicts hold on standard architectures at default init and find planted faults.

Targets (exit 1 when one is missed):
  - every known-good corpus model (tests/corpus.py GOOD: HF GPT-2, BERT, Llama, T5, ViT, ResNet, ConvNeXt,
    MobileNetV2, EfficientNet, RegNet, Swin and more, built from configs at their library's default init,
    plus project-written VGG and MLPs) gets zero warning or error findings at input seeds 0 and 1, in
    train mode, in eval mode where the model has no batch-dependent layer (BatchNorm), and whatever the
    global RNG state (torch.manual_seed 1 and 2 before the call);
  - every planted fault (tests/corpus.py FAULTS) gets the right kind with the right module named first,
    and its offered fix (``Report.with_fix(finding.scheme, **finding.options)``) re-checks healthy while
    keeping the deliberate scales (ties, every weight outside the fix, rescale ratios).
Printed beside them, not targets here (the cost work is issue 11's item on speed): the time ratio
diagnose / plain forward+backward (medians over ``--repeats`` alternating runs in this process, plain being
``zero_grad(set_to_none=True); loss_fn(model(inputs)).backward()``), and the peak-memory ratio: the
resident-set high-water mark (VmHWM after a reset through /proc/self/clear_refs) above the RSS before
one pass, in a fresh child process per model and variant with MALLOC_MMAP_THRESHOLD_=131072, as
benchmarks/diagnose_overhead.py measures it (RSS, not tracemalloc: torch's CPU tensors are not Python
allocations). The corpus models are small (a pass takes milliseconds), so the memory ratio is over a
working set of a few MiB and reads coarse.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_scorecard.py [--repeats 5] [--no-memory] [NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import corpus  # noqa: E402  (tests/corpus.py: the models, shared with tests/test_check_corpus.py)

import numstab  # noqa: E402

SEEDS = (0, 1)


def diagnose(case: corpus.Case) -> numstab.Report:
    return numstab.diagnose(case.model, case.inputs, loss_fn=case.loss_fn, target=case.target)


def plain(case: corpus.Case) -> None:
    case.model.zero_grad(set_to_none=True)
    out = case.model(**case.inputs) if isinstance(case.inputs, dict) else case.model(case.inputs)
    loss = case.loss_fn(out) if case.target is None else case.loss_fn(out, case.target)
    loss.backward()


def time_ratio(case: corpus.Case, repeats: int) -> tuple[float, float]:
    """(plain median s, diagnose median s), alternating after one warm-up each."""
    variants = {"plain": plain, "diagnose": diagnose}
    times: dict[str, list[float]] = {v: [] for v in variants}
    for fn in variants.values():
        fn(case)
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn(case)
            times[name].append(time.perf_counter() - start)
    case.model.zero_grad(set_to_none=True)
    return statistics.median(times["plain"]), statistics.median(times["diagnose"])


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1])


def child(name: str, variant: str) -> None:
    """In a fresh process: the peak extra RSS (KiB) of one pass of ``variant`` on model ``name``."""
    torch.set_num_threads(1)
    case = corpus.build(name, 0)
    fn = plain if variant == "plain" else diagnose
    fn(case)  # warm-up: lazy initialisation
    case.model.zero_grad(set_to_none=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    fn(case)
    print(json.dumps({"extra_kib": _status_kib("VmHWM") - base}))


def peak_extra_kib(name: str, variant: str) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
    cmd = [sys.executable, __file__, "--child", name, variant]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["extra_kib"]


def counts(report: numstab.Report) -> str:
    c = Counter(f.severity for f in report.findings)
    return f"{c['error']}e/{c['warning']}w/{c['info']}i"


def good_row(name: str, repeats: int, memory: bool) -> tuple[list[str], list[float], list[str]]:
    """Cells of a known-good model's row, its (time, memory) ratios, and its problems."""
    problems: list[str] = []
    verdicts = []
    for seed in SEEDS:
        case = corpus.build(name, seed)
        for state in (1, 2):
            torch.manual_seed(state)
            report = diagnose(case)
            verdicts.append(report.verdict)
            problems += [f"seed {seed}, RNG {state}: {f.severity} {f.kind} {f.layers[:2]}"
                         for f in corpus.serious(report)]
        if not case.stochastic:
            case.model.eval()
            eval_report = diagnose(case)
            case.model.train()
            if eval_report.verdict != report.verdict:
                problems.append(f"seed {seed}: eval {eval_report.verdict}, train {report.verdict}")
    case = corpus.build(name, 0)
    report = diagnose(case)
    t_plain, t_diag = time_ratio(case, repeats)
    ratios = [t_diag / t_plain]
    mem = "-"
    if memory:
        m_plain, m_diag = peak_extra_kib(name, "plain"), peak_extra_kib(name, "diagnose")
        ratios.append(m_diag / max(m_plain, 1.0))
        mem = f"{m_diag / 1024:.1f}/{m_plain / 1024:.1f} MiB = {ratios[1]:.2f}"
    stable = "yes" if len(set(verdicts)) == 1 else "NO"
    cells = [name, report.verdict, counts(report), stable, f"{t_plain * 1e3:.1f}", f"{t_diag * 1e3:.1f}",
             f"{ratios[0]:.2f}", mem]
    return cells, ratios, problems


def fault_row(fault: corpus.Fault) -> tuple[list[str], list[str]]:
    case = fault.build(0)
    report = diagnose(case)
    problems = corpus.fault_problems(fault, report)
    first = corpus.serious(report)[0] if corpus.serious(report) else None
    fix = "-"
    if first is not None and first.scheme:
        fix_issues = corpus.fix_problems(report)
        problems += fix_issues
        opts = ", ".join(f"{k}={v!r}" for k, v in first.options.items())
        fix = f"{first.scheme}({opts}) -> {'healthy, kept' if not fix_issues else 'NOT OK'}"
    got = f"{first.kind} @ {first.layers[0]}" if first else report.verdict
    return [fault.name, f"{fault.kind} @ {fault.first}", got, fix[:70]], problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the child-process memory runs")
    parser.add_argument("names", nargs="*", help="corpus names (default: all)")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    torch.set_num_threads(1)
    names = args.names or corpus.names()
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
          f"repeats {args.repeats}; torch {torch.__version__}; memory: RSS high-water in child processes")
    problems: list[str] = []
    time_ratios, mem_ratios = [], []
    print(f"{'model':<19}{'verdict':<10}{'findings':<10}{'stable':<7}{'plain ms':>9}{'diag ms':>9}"
          f"{'time x':>7}  memory diag/plain")
    for name in [n for n in names if n in corpus.GOOD]:
        cells, ratios, issues = good_row(name, args.repeats, not args.no_memory)
        time_ratios.append(ratios[0])
        mem_ratios += ratios[1:]
        problems += [f"{name}: {p}" for p in issues]
        print(f"{cells[0]:<19}{cells[1]:<10}{cells[2]:<10}{cells[3]:<7}{cells[4]:>9}{cells[5]:>9}{cells[6]:>7}"
              f"  {cells[7]}")
    if time_ratios:
        print(f"median time x {statistics.median(time_ratios):.2f} (max {max(time_ratios):.2f})"
              + (f"; median memory x {statistics.median(mem_ratios):.2f} (max {max(mem_ratios):.2f})"
                 if mem_ratios else ""))
    print(f"\n{'fault':<21}{'expected':<40}{'found':<40}offered fix")
    for fault in [corpus.FAULTS[n] for n in names if n in corpus.FAULTS]:
        cells, issues = fault_row(fault)
        problems += [f"{fault.name}: {p}" for p in issues]
        print(f"{cells[0]:<21}{cells[1]:<40}{cells[2]:<40}{cells[3]}")
    print("\n" + ("all targets met" if not problems else f"{len(problems)} problem(s):"))
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
