"""Claim: numstab.diagnose costs <= 3x a plain forward+backward per model, 2x at the median, 1.2x in memory.

Target: time ratio (diagnose / plain, CPU-time medians) <= 3.0 on every model and <= 2.0 for the median over
the models, peak-memory ratio <= 1.2 on every model, for
  - a 4-layer torch.nn.TransformerEncoder (d_model 256, 8 heads, feed-forward 1024, seq 64, batch 16),
  - a 24-layer ReLU MLP (width 1024, batch 256, Kaiming init),
  - VGG-16 as torchvision lays it out (138 M parameters; 2 images of 64x64, so the weights dominate),
  - HF transformers models built from their configs at default init (never downloaded): GPT-2, BERT (masked
    LM), Llama (causal LM), T5 (conditional generation), ViT (4 layers, d 256; 64 tokens or 128x128 images,
    batch 2) and ResNet-50 and ConvNeXt-T (full stages, 2 images of 128x128),
all in train mode, single-threaded (torch.set_num_threads(1), OMP_NUM_THREADS=1).

"plain" is ``model.zero_grad(); out = model(x); sum(r * y for y in out).backward()`` (zero_grad sets .grad to
None, as a training loop does) with the unit-variance r that diagnose uses as its backward seed (one per
floating-point output tensor). "diagnose" is ``numstab.diagnose(model, x)``: hooks on every module,
float64 statistics in every hook, range checks for six formats, dead and duplicate units, weight
statistics, rules and the report.

Time and peak memory are measured as ``benchmarks/measure.py`` describes: both variants alternately in this
process, ``--repeats`` times after one warm-up each, CPU-time medians and their ratio printed (wall-clock
medians beside them); the peak extra RSS of one pass of each variant in a fresh child process, after a
warm-up pass and with .grad set to None.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diagnose_overhead.py [--repeats 5] [--models gpt2,vgg16]
Exit status 1 when a ratio misses its target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from functools import partial

import torch
from measure import MEDIAN_TIME_TARGET, MEMORY_TARGET, TIME_TARGET, peak_extra_mib, report_peak, time_medians
from torch import nn


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


def vgg16() -> tuple[nn.Module, torch.Tensor]:
    """VGG-16 as torchvision lays it out (13 convs, 7x7 average pool, 25088-4096-4096-1000 classifier: 138 M
    parameters), 64x64 inputs so that the weights, not the convolutions, dominate."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    channels = 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, int(width), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(width)
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                          nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                          nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(), nn.Linear(4096, 1000))
    return model.train(), torch.randn(2, 3, 64, 64)


def _hf(name: str) -> tuple[nn.Module, object]:
    """HF transformers models built from configs (default init, never downloaded), small but real:
    real vocabularies and layer types, 4 layers (d_model 256) for the transformers, full ResNet-50 and
    ConvNeXt-T stages at 128x128; batch 2, 64 tokens."""
    import transformers as tf

    torch.manual_seed(0)
    ids = torch.randint(0, 1000, (2, 64), generator=torch.Generator().manual_seed(1))
    small = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024}
    image = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    if name == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(n_embd=256, n_layer=4, n_head=4, use_cache=False))
        return model, ids
    if name == "bert":
        return tf.BertForMaskedLM(tf.BertConfig(**small)), ids
    if name == "llama":
        config = tf.LlamaConfig(**small, num_key_value_heads=4, vocab_size=32000, use_cache=False)
        return tf.LlamaForCausalLM(config), ids
    if name == "t5":
        config = tf.T5Config(d_model=256, d_ff=1024, d_kv=64, num_layers=4, num_heads=4, use_cache=False)
        return tf.T5ForConditionalGeneration(config), {"input_ids": ids, "decoder_input_ids": ids[:, :32]}
    if name == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(**small, image_size=128)), image
    if name == "resnet":
        return tf.ResNetForImageClassification(tf.ResNetConfig()), image
    if name == "convnext":
        return tf.ConvNextForImageClassification(tf.ConvNextConfig()), image
    raise KeyError(name)


def _hf_factory(name: str) -> Callable[[], tuple[nn.Module, object]]:
    def build() -> tuple[nn.Module, object]:
        model, inputs = _hf(name)
        return model.train(), inputs

    return build


MODELS: dict[str, Callable[[], tuple[nn.Module, object]]] = {
    "transformer": transformer,
    "mlp": mlp,
    "vgg16": vgg16,
    **{name: _hf_factory(name) for name in ("gpt2", "bert", "llama", "t5", "vit", "resnet", "convnext")},
}


def _run(model: nn.Module, x: object) -> object:
    if isinstance(x, dict):
        return model(**x)
    return model(x)


def plain(model: nn.Module, x: object) -> None:
    model.zero_grad(set_to_none=True)
    accumulate(model, x)


def accumulate(model: nn.Module, x: object) -> None:
    """plain without zero_grad: .grad already exists and is accumulated into (informational row)."""
    try:
        from numstab.instrument import float_tensors
    except ImportError:
        from numstab.probe.hooks import float_tensors

    total = None
    for y in float_tensors(_run(model, x)):  # diagnose's seed: r ~ N(0, 1) per output tensor, seed 0
        r = torch.randn(y.shape, generator=torch.Generator().manual_seed(0), dtype=y.dtype)
        total = (y * r).sum() if total is None else total + (y * r).sum()
    total.backward()


def diagnosed(model: nn.Module, x: object) -> None:
    import numstab

    numstab.diagnose(model, x)


VARIANTS = {"plain": plain, "diagnose": diagnosed}
MEMORY_ONLY = {"accumulate": accumulate}


def child(model_name: str, variant: str) -> None:
    """Run in a fresh process: print the peak extra RSS (KiB) one pass of ``variant`` needed."""
    torch.set_num_threads(1)
    model, x = MODELS[model_name]()
    run = partial({**VARIANTS, **MEMORY_ONLY}[variant], model, x)
    run()  # warm-up: lazy initialisation
    if variant != "accumulate":  # the measured pass allocates its own .grad, as a training step does
        model.zero_grad(set_to_none=True)
    report_peak(run)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default=",".join(MODELS), help="a comma-separated subset of the models")
    parser.add_argument("--child", nargs=2, metavar=("MODEL", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    torch.set_num_threads(1)
    names = args.models.split(",")
    print(f"threads: torch {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
          f"repeats {args.repeats}; torch {torch.__version__}; CPU-time medians (wall in brackets)")
    print(f"{'model':<12}{'plain s':>16}{'diagnose s':>16}{'time x':>8}{'plain MiB':>11}{'diag MiB':>10}"
          f"{'mem x':>7}")
    ok = True
    ratios: list[float] = []
    notes: list[str] = []
    for name in names:
        model, x = MODELS[name]()
        t = time_medians({v: partial(fn, model, x) for v, fn in VARIANTS.items()}, args.repeats)
        del model, x
        m = {v: peak_extra_mib(__file__, name, v) for v in (*VARIANTS, *MEMORY_ONLY)}
        tr, mr = t["diagnose"][0] / t["plain"][0], m["diagnose"] / m["plain"]
        ratios.append(tr)
        ok &= tr <= TIME_TARGET and mr <= MEMORY_TARGET
        print(f"{name:<12}{t['plain'][0]:>8.3f} ({t['plain'][1]:.3f}){t['diagnose'][0]:>8.3f} "
              f"({t['diagnose'][1]:.3f}){tr:>8.2f}{m['plain']:>11.1f}{m['diagnose']:>10.1f}{mr:>7.2f}",
              flush=True)
        notes.append(f"{name}: with .grad already allocated (accumulating, no zero_grad) the plain pass "
                     f"needs {m['accumulate']:.1f} MiB; diagnose / that = "
                     f"{m['diagnose'] / m['accumulate']:.2f} (information, not the target)")
    median = statistics.median(ratios)
    ok &= median <= MEDIAN_TIME_TARGET
    print("\n".join(notes))
    print(f"median time x over {len(ratios)} models: {median:.2f}")
    print(f"targets: time x <= {TIME_TARGET} each and <= {MEDIAN_TIME_TARGET} at the median, mem x <= "
          f"{MEMORY_TARGET}: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
