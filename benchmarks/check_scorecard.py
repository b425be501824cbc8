"""Claim: `numstab check` verdicts hold on standard architectures at default init and find planted faults.

Targets (exit 1 when one is missed):
  - every known-good corpus model (tests/corpus.py GOOD: HF GPT-2, BERT, Llama, T5, ViT, ResNet, ConvNeXt,
    MobileNetV2, EfficientNet, RegNet, Swin and more, built from configs at their library's default init,
    plus project-written VGG and MLPs) gets zero warning or error findings at input seeds 0 and 1, in
    train mode, in eval mode where the model has no batch-dependent layer (BatchNorm), and whatever the
    global RNG state (torch.manual_seed 1 and 2 before the call);
  - every planted fault (tests/corpus.py FAULTS) gets the right kind with the right module named first,
    and its offered fix (``Report.with_fix(finding.scheme, **finding.options)``) re-checks healthy while
    keeping the deliberate scales (ties, every weight outside the fix, rescale ratios);
  - cost: diagnose <= 3x a plain forward+backward on every known-good model and <= 2x at the median, its
    peak memory <= 1.2x the plain pass's.
The verdicts are judged at the corpus's tiny size (``corpus.TINY``: 2 layers, hidden 64, batch 4, 16 tokens
or 32-pixel images), where a pass takes milliseconds and diagnose's fixed cost per hooked module would
dominate any ratio. The cost is measured on the same architectures at ``corpus.BENCH``: hidden 256 (CNN
channel lists x4), 4 layers (stage depths x2), batch 4 of 128 tokens from an 8192-token vocabulary or of
128x128 images, MLPs of width 256 on batches of 1024, where a plain pass takes tens to hundreds of
milliseconds on one thread. Plain is ``zero_grad(set_to_none=True); loss_fn(model(inputs)).backward()``,
diagnose is ``numstab.diagnose(model, inputs, loss_fn=..., target=...)`` with the same loss; both are
measured as benchmarks/measure.py describes (CPU-time medians over ``--repeats`` alternating runs in this
process; the peak extra RSS of one pass in a fresh child process per model and variant). The verdict
diagnose gives at the bench size is printed beside the cost (information: a model with a warning or an
error pays for the re-check of each offered fix).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_scorecard.py [--repeats 5] [--no-memory]
          [--part all|verdicts|cost] [NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import torch
from measure import MEDIAN_TIME_TARGET, MEMORY_TARGET, TIME_TARGET, peak_extra_mib, report_peak, time_medians

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


VARIANTS = {"plain": plain, "diagnose": diagnose}


def child(name: str, variant: str) -> None:
    """In a fresh process: the peak extra RSS (KiB) of one pass of ``variant`` on model ``name`` at the
    bench size, from ``.grad = None`` (as a training step after ``zero_grad()``)."""
    torch.set_num_threads(1)
    case = corpus.build(name, 0, corpus.BENCH)
    run = partial(VARIANTS[variant], case)
    run()  # warm-up: lazy initialisation
    case.model.zero_grad(set_to_none=True)
    report_peak(run)


def cost_row(name: str, repeats: int, memory: bool) -> tuple[list[str], list[float]]:
    """Cells of a known-good model's cost at the bench size, and its (time, memory) ratios."""
    case = corpus.build(name, 0, corpus.BENCH)
    verdict = counts(diagnose(case))
    t = time_medians({v: partial(fn, case) for v, fn in VARIANTS.items()}, repeats)
    del case
    ratios = [t["diagnose"][0] / t["plain"][0]]
    ms = {v: f"{cpu * 1e3:.1f} ({wall * 1e3:.0f})" for v, (cpu, wall) in t.items()}
    cells = [name, verdict, ms["plain"], ms["diagnose"], f"{ratios[0]:.2f}", "-", "-", "-"]
    if memory:
        m_plain, m_diag = peak_extra_mib(__file__, name, "plain"), peak_extra_mib(__file__, name, "diagnose")
        ratios.append(m_diag / m_plain)
        cells[5:] = [f"{m_plain:.1f}", f"{m_diag:.1f}", f"{ratios[1]:.2f}"]
    return cells, ratios


def cost_problems(time_ratios: dict[str, float], mem_ratios: dict[str, float]) -> list[str]:
    """The cost targets each model and the median miss."""
    problems = [f"{n}: diagnose takes {r:.2f}x a plain pass (target <= {TIME_TARGET})"
                for n, r in time_ratios.items() if r > TIME_TARGET]
    problems += [f"{n}: diagnose needs {r:.2f}x the plain pass's peak memory (target <= {MEMORY_TARGET})"
                 for n, r in mem_ratios.items() if r > MEMORY_TARGET]
    if time_ratios and statistics.median(time_ratios.values()) > MEDIAN_TIME_TARGET:
        problems.append(f"median time ratio {statistics.median(time_ratios.values()):.2f} "
                        f"(target <= {MEDIAN_TIME_TARGET})")
    return problems


def counts(report: numstab.Report) -> str:
    c = Counter(f.severity for f in report.findings)
    return f"{c['error']}e/{c['warning']}w/{c['info']}i"


def good_row(name: str) -> tuple[list[str], list[str]]:
    """Cells of a known-good model's verdict row (tiny size), and its problems."""
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
    report = diagnose(corpus.build(name, 0))
    stable = "yes" if len(set(verdicts)) == 1 else "NO"
    return [name, report.verdict, counts(report), stable], problems


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


def verdict_part(names: list[str]) -> list[str]:
    """Print the known-good models' verdicts and the faults' findings (tiny size); return the problems."""
    problems: list[str] = []
    print(f"{'model':<19}{'verdict':<10}{'findings':<10}stable")
    for name in [n for n in names if n in corpus.GOOD]:
        cells, issues = good_row(name)
        problems += [f"{name}: {p}" for p in issues]
        print(f"{cells[0]:<19}{cells[1]:<10}{cells[2]:<10}{cells[3]}", flush=True)
    print(f"\n{'fault':<21}{'expected':<40}{'found':<40}offered fix")
    for fault in [corpus.FAULTS[n] for n in names if n in corpus.FAULTS]:
        cells, issues = fault_row(fault)
        problems += [f"{fault.name}: {p}" for p in issues]
        print(f"{cells[0]:<21}{cells[1]:<40}{cells[2]:<40}{cells[3]}", flush=True)
    return problems


def cost_part(names: list[str], repeats: int, memory: bool) -> list[str]:
    """Print each known-good model's cost at the bench size, the medians and the worst; return the misses."""
    print(f"\ncost at corpus.BENCH ({corpus.BENCH}); CPU ms (wall ms)")
    print(f"{'model':<19}{'bench e/w/i':<13}{'plain ms':>16}{'diagnose ms':>16}{'time x':>8}{'plain MiB':>11}"
          f"{'diag MiB':>10}{'mem x':>7}")
    time_ratios: dict[str, float] = {}
    mem_ratios: dict[str, float] = {}
    for name in [n for n in names if n in corpus.GOOD]:
        cells, ratios = cost_row(name, repeats, memory)
        time_ratios[name] = ratios[0]
        if memory:
            mem_ratios[name] = ratios[1]
        print(f"{cells[0]:<19}{cells[1]:<13}{cells[2]:>16}{cells[3]:>16}{cells[4]:>8}{cells[5]:>11}"
              f"{cells[6]:>10}{cells[7]:>7}", flush=True)
    for label, ratios in (("time", time_ratios), ("memory", mem_ratios)):
        if ratios:
            worst = max(ratios, key=ratios.__getitem__)
            print(f"{label} x over {len(ratios)} models: median {statistics.median(ratios.values()):.2f}, "
                  f"worst {ratios[worst]:.2f} ({worst})")
    return cost_problems(time_ratios, mem_ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the child-process memory runs")
    parser.add_argument("--part", choices=("all", "verdicts", "cost"), default="all")
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
    if args.part in ("all", "verdicts"):
        problems += verdict_part(names)
    if args.part in ("all", "cost"):
        problems += cost_part(names, args.repeats, not args.no_memory)
    print("\n" + ("all targets met" if not problems else f"{len(problems)} problem(s):"))
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
