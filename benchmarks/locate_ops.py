"""Claim: op-level localisation costs nothing on healthy steps and at most 5x one step when it runs.

Targets, on a small GPT-2 (HF ``GPT2LMHeadModel``, ``--layers`` layers, d_model ``--width``, 4 heads,
vocabulary 4096, built from the config, nothing downloaded), train mode, ``--batch`` sequences of
``--tokens`` tokens, AdamW, single-threaded (torch.set_num_threads(1), OMP_NUM_THREADS=1):

1. healthy: a training step (zero_grad, forward, loss, backward, optimizer step) with a
   ``GradientMonitor`` attached and ``monitor.step()`` called, against the same step with nothing attached:
   ratio of medians <= 1.05. The op-level machinery adds nothing there (no hook, no dispatch mode: the
   script checks that no ``TorchDispatchMode`` is active and that the model's modules carry no forward
   hook during the monitored step), so the ratio is the monitor's own cost as before this change.
2. replay: ``monitor.locate_nonfinite(batch, loss, level="op")`` on a batch whose backward goes NaN in
   block 1's MLP (a forward hook adds ``where(out > 1e30, exp(100), 0)``: finite forward, 0 * inf in
   exp's backward), against one healthy training step: ratio of medians <= 5.0. The replay runs the
   forward, loss and backward twice (the reproducibility check), every aten op checked. The module-level
   replay (one pass with module hooks) is printed for reference.

Both run alternately in this process, ``--repeats`` times after one warm-up each; medians of CPU time
(``time.process_time``) are judged, wall medians are printed too.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/locate_ops.py [--repeats 7]
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode

HEALTHY_TARGET = 1.05
REPLAY_TARGET = 5.0


def gpt2(layers: int, width: int) -> torch.nn.Module:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=layers, n_embd=width, n_head=4, vocab_size=4096, n_positions=512)
    return GPT2LMHeadModel(config).train()


def loss_fn(out: object) -> torch.Tensor:
    return out.logits.float().pow(2).mean()


def masked_overflow(module: torch.nn.Module, args: object, out: torch.Tensor) -> torch.Tensor:
    """A finite forward whose backward is NaN: exp overflows in a branch ``where`` masks (0 * inf)."""
    return out + torch.where(out > 1e30, torch.exp(out * 0 + 100), 0)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from numstab.monitor import GradientMonitor

    model = gpt2(args.layers, args.width)
    ids = torch.randint(0, 4096, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    monitor = GradientMonitor(model)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(**batch)).backward()
        if monitor.attached:
            assert _get_current_dispatch_mode() is None
            assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
            monitor.step()
        opt.step()

    def plain() -> None:
        step()

    def monitored() -> None:
        with monitor:
            step()

    def replay(level: str) -> Callable[[], None]:
        def run() -> None:
            handle = model.transformer.h[1].mlp.register_forward_hook(masked_overflow)
            try:
                culprit = monitor.locate_nonfinite(batch, loss_fn, level=level)
            finally:
                handle.remove()
            assert culprit is not None and culprit.module == "transformer.h.1.mlp", culprit
            assert culprit.phase == "backward", culprit
            assert level == "module" or (culprit.op == "aten.mul.Tensor" and culprit.reproduced), culprit

        return run

    variants = {"step": plain, "step + monitor": monitored, "op replay": replay("op"),
                "module replay": replay("module")}  # fmt: skip
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm-up
    names = list(variants)
    for r in range(args.repeats):  # a different order each round: no variant always follows the same one
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(variants[name]))
    cpu = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    wall = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
    base = cpu["step"]
    print(f"GPT-2 {args.layers} layers, d={args.width}, batch {args.batch}x{args.tokens}, "
          f"threads {torch.get_num_threads()}, repeats {args.repeats}")  # fmt: skip
    print(f"{'variant':<16}{'cpu median ms':>15}{'wall median ms':>16}{'/ step (cpu)':>14}")
    for name in variants:
        print(f"{name:<16}{cpu[name] * 1e3:>15.1f}{wall[name] * 1e3:>16.1f}{cpu[name] / base:>14.2f}")
    healthy, replayed = cpu["step + monitor"] / base, cpu["op replay"] / base
    ok = healthy <= HEALTHY_TARGET and replayed <= REPLAY_TARGET
    verdict = "met" if ok else "MISSED"
    print(f"healthy step with monitor / step: {healthy:.3f} (target <= {HEALTHY_TARGET}); "
          f"op replay / step: {replayed:.2f} (target <= {REPLAY_TARGET}): {verdict}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
