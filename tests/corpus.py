"""The check corpus: standard architectures at their library's default init, and planted faults.

Shared by ``tests/test_check_corpus.py`` (a small subset in CI) and ``benchmarks/check_scorecard.py``
(all of it), which puts this folder on ``sys.path``. It lives under ``tests/`` rather than in the
package because it needs ``transformers`` (a test and benchmark dependency, never a runtime one) and
because it is a fixture: what numstab's verdicts are judged on, not something numstab ships.

Every model is built from a config (no weights are downloaded) with the library's own initialization,
small enough that a forward and backward pass takes well under a second on one thread: 2 layers,
hidden size 64, sequences of 16 tokens, images of 32 pixels, batch 4. Dropout probabilities are set to 0
so that train and eval mode compute the same function where the model has no BatchNorm. The weights
come from ``torch.manual_seed(0)`` inside ``torch.random.fork_rng`` (the global RNG is untouched); the
inputs from a generator seeded with ``input_seed``.

A :class:`Fault` is a model with one planted problem and the answer written down before any rule
was run: the finding's kind and the module it must name first.

Examples:
    >>> case = build("mlp_kaiming", input_seed=0)
    >>> type(case.model).__name__, tuple(case.inputs.shape)
    ('Sequential', (4, 64))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

BATCH = 4
SEQ = 16
VOCAB = 128
HIDDEN = 64
IMAGE = 32
LAYERS = 2
CLASSES = 10


@dataclass(frozen=True)
class Size:
    """How large the corpus builds each architecture: :data:`TINY` for the tests, :data:`BENCH` for timing.

    A model's config is written once, at the tiny size; :meth:`config` scales it: every width
    (hidden sizes, feed-forward and head dims, CNN channel lists, width multipliers) by ``hidden / 64``
    (by ``hidden / d``, at least 1, for a transformer written at its real width ``d``), every depth (layer
    counts, stage depths, depth multipliers) by ``layers / 2``, the vocabulary and the image size set,
    positions raised to ``seq + 2`` (RoBERTa counts from 2). At
    :data:`TINY` it changes nothing.

    Attributes:
        batch: samples of a text or image batch.
        seq: tokens per sample.
        vocab: vocabulary of the text models.
        hidden: hidden size of the transformers (64 at the tiny size; a multiple of it).
        layers: transformer layers (2 at the tiny size; a multiple of it).
        image: image side in pixels.
        vectors: samples of an MLP batch (their width is ``hidden``).

    Examples:
        >>> BENCH.config({"hidden_size": 64, "depths": [1, 1], "image_size": 32, "patch_size": 8})
        {'hidden_size': 256, 'depths': [2, 2], 'image_size': 128, 'patch_size': 8}
    """

    batch: int = BATCH
    seq: int = SEQ
    vocab: int = VOCAB
    hidden: int = HIDDEN
    layers: int = LAYERS
    image: int = IMAGE
    vectors: int = BATCH

    def config(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` (written for :data:`TINY`) at this size."""
        own = next((config[k] for k in _HIDDEN_KEYS if k in config), HIDDEN)
        wide, deep = max(self.hidden // own, 1), self.layers // LAYERS

        def scaled(key: str, value: Any) -> Any:
            factor = wide if key in _WIDTHS else deep if key in _DEPTHS else None
            if factor is not None:
                return [v * factor for v in value] if isinstance(value, list) else value * factor
            return {"vocab_size": self.vocab, "image_size": self.image}.get(
                key, max(value, self.seq + 2) if key in _POSITIONS else value)

        return {k: scaled(k, v) for k, v in config.items()}


#: Config keys that :meth:`Size.config` multiplies by ``hidden / 64`` (widths) and ``layers / 2`` (depths).
_WIDTHS = frozenset({
    "hidden_size", "n_embd", "d_model", "dim", "embed_dim", "embedding_size", "intermediate_size", "ffn_dim",
    "d_ff", "hidden_dim", "encoder_ffn_dim", "decoder_ffn_dim", "word_embed_proj_dim", "head_dim", "d_kv",
    "hidden_sizes", "width_coefficient", "depth_multiplier", "attention_hidden_size",
})
_DEPTHS = frozenset({
    "num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers", "depths",
    "depth_coefficient",
})
_POSITIONS = frozenset({"max_position_embeddings", "n_positions", "context_length"})
#: A transformer config's own hidden size: one written wider than 64 (T5 at d_model 512) is widened less.
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")

#: The size the tests use: 2 layers, hidden 64, batch 4, 16 tokens, 32-pixel images.
TINY = Size()
#: The size the scorecard times diagnose at (a plain forward+backward of tens of milliseconds on one thread).
BENCH = Size(batch=4, seq=128, vocab=8192, hidden=256, layers=4, image=128, vectors=1024)


@dataclass(frozen=True)
class Case:
    """One model with a batch: what ``numstab.diagnose(model, inputs, loss_fn=..., target=...)`` takes.

    Attributes:
        model: the network, in train mode.
        inputs: a tensor or a dict of keyword arguments (HF models get their ``labels`` here).
        loss_fn: turns the output (and ``target``) into the training loss.
        target: second argument of ``loss_fn``, or None.
        stochastic: the model has layers whose output depends on the mode or the batch (BatchNorm),
            so train and eval mode may rightly differ.
    """

    model: nn.Module
    inputs: Any
    loss_fn: Callable[..., torch.Tensor]
    target: Any = None
    stochastic: bool = False


@dataclass(frozen=True)
class Fault:
    """A model with one planted problem and the right answer.

    Attributes:
        name: the corpus name.
        build: ``build(input_seed) -> Case``.
        kind: the kind of the first warning/error finding.
        first: the module that finding must name first.
        why: the planted problem in one line.
    """

    name: str
    build: Callable[[int], Case]
    kind: str
    first: str
    why: str


def hf_loss(output: Any) -> torch.Tensor:
    """The loss an HF model computes from the ``labels`` in its inputs."""
    return output.loss


def _seeded(factory: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return factory().train()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- inputs ------------------------------------------------------------------------------------------


def _tokens(seed: int, size: Size, *, labels: bool = True, **extra: Any) -> dict[str, torch.Tensor]:
    ids = torch.randint(0, size.vocab, (size.batch, size.seq), generator=_gen(seed))
    out = {"input_ids": ids, **extra}
    if labels:
        out["labels"] = ids.clone()
    return out


def _classes(seed: int, samples: int) -> torch.Tensor:
    return torch.randint(0, CLASSES, (samples,), generator=_gen(seed + 1000))


def _images(seed: int, size: Size) -> dict[str, torch.Tensor]:
    x = torch.randn(size.batch, 3, size.image, size.image, generator=_gen(seed))
    return {"pixel_values": x, "labels": _classes(seed, size.batch)}


# -- HF text models ----------------------------------------------------------------------------------

_TEXT = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=4 * HIDDEN, max_position_embeddings=64)
_NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _hf(config_name: str, model_name: str, size: Size, **config: Any) -> nn.Module:
    import transformers

    cfg = getattr(transformers, config_name)(**size.config(config))
    return getattr(transformers, model_name)(cfg)


def gpt2(seed: int, size: Size = TINY, **config: Any) -> Case:
    """HF GPT-2 (tied lm_head, Conv1D projections, residual projections at 0.02/sqrt(2 n_layer))."""
    cfg = dict(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=2, n_head=4, n_positions=64,
               resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0) | config
    model = _seeded(lambda: _hf("GPT2Config", "GPT2LMHeadModel", size, **cfg))
    return Case(model, _tokens(seed, size), hf_loss)


def _lm(config_name: str, model_name: str, **config: Any) -> Callable[[int], Case]:
    """A language model (causal or masked) whose loss is on its own input ids."""

    def build(seed: int, size: Size = TINY) -> Case:
        model = _seeded(lambda: _hf(config_name, model_name, size, **config))
        return Case(model, _tokens(seed, size), hf_loss)

    return build


def t5(seed: int, size: Size = TINY) -> Case:
    """HF T5: relative attention without 1/sqrt(d) (the query is scaled at init instead), decoder ids."""
    cfg = dict(vocab_size=VOCAB, d_model=HIDDEN, d_kv=16, d_ff=4 * HIDDEN, num_layers=2, num_heads=4,
               dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0)
    model = _seeded(lambda: _hf("T5Config", "T5ForConditionalGeneration", size, **cfg))
    return Case(model, _tokens(seed, size), hf_loss)


def bart(seed: int, size: Size = TINY) -> Case:
    """HF BART: encoder-decoder with learned positions and tied embeddings."""
    cfg = dict(vocab_size=VOCAB, d_model=HIDDEN, encoder_layers=2, decoder_layers=2,
               encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=4 * HIDDEN,
               decoder_ffn_dim=4 * HIDDEN,
               max_position_embeddings=64, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
               pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    model = _seeded(lambda: _hf("BartConfig", "BartForConditionalGeneration", size, **cfg))
    inputs = _tokens(seed, size)
    inputs["input_ids"] = inputs["input_ids"].clamp(min=3)  # no padding or special token inside the batch
    inputs["labels"] = inputs["input_ids"].clone()
    return Case(model, inputs, hf_loss)


# -- HF vision models --------------------------------------------------------------------------------


def _vision(config_name: str, model_name: str, *, stochastic: bool = False,
            **config: Any) -> Callable[[int], Case]:
    def build(seed: int, size: Size = TINY) -> Case:
        model = _seeded(lambda: _hf(config_name, model_name, size, num_labels=CLASSES, **config))
        return Case(model, _images(seed, size), hf_loss, stochastic=stochastic)

    return build


_VIT = dict(hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4, intermediate_size=4 * HIDDEN,
            image_size=IMAGE, patch_size=8, **_NO_DROPOUT)


# -- nets the project writes -------------------------------------------------------------------------


def vgg(*, batchnorm: bool, depth: int = 12, width: int = 32) -> nn.Module:
    """A VGG-style plain CNN: ``depth`` 3x3 convs with ReLU (and BatchNorm), pooling every 4, a linear head.

    Convs get ``kaiming_normal_(mode="fan_out", nonlinearity="relu")`` as torchvision's VGG does.
    """
    layers: list[nn.Module] = []
    channels = 3
    for i in range(depth):
        conv = nn.Conv2d(channels, width, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)] if batchnorm else [conv, nn.ReLU(True)]
        if i % 4 == 3:
            layers.append(nn.MaxPool2d(2))
        channels = width
    head = nn.Linear(width, CLASSES)
    nn.init.normal_(head.weight, 0, 0.01)
    nn.init.zeros_(head.bias)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def _image_case(model: nn.Module, seed: int, size: Size = TINY, *, stochastic: bool = False) -> Case:
    x = torch.randn(size.batch, 3, size.image, size.image, generator=_gen(seed))
    return Case(model, x, nn.functional.cross_entropy, _classes(seed, size.batch), stochastic=stochastic)


def mlp(activation: type[nn.Module], init: Callable[[torch.Tensor], Any] | None, *, depth: int = 12,
        width: int = HIDDEN) -> nn.Module:
    """``depth`` Linear+activation layers of ``width`` and a linear head; ``init`` on every hidden weight."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        lin = nn.Linear(width, width)
        if init is not None:
            init(lin.weight)
            nn.init.zeros_(lin.bias)
        layers += [lin, activation()]
    return nn.Sequential(*layers, nn.Linear(width, CLASSES))


def _vector_case(model: nn.Module, seed: int, size: Size = TINY) -> Case:
    x = torch.randn(size.vectors, size.hidden, generator=_gen(seed))
    return Case(model, x, nn.functional.cross_entropy, _classes(seed, size.vectors))


def _kaiming(w: torch.Tensor) -> Any:
    return nn.init.kaiming_normal_(w, nonlinearity="relu")


def _xavier(w: torch.Tensor) -> Any:
    return nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh"))


def _vgg_case(*, batchnorm: bool) -> Callable[..., Case]:
    """VGG of width ``hidden / 2`` (32 at the tiny size)."""

    def build(seed: int, size: Size = TINY) -> Case:
        model = _seeded(lambda: vgg(batchnorm=batchnorm, width=size.hidden // 2))
        return _image_case(model, seed, size, stochastic=batchnorm)

    return build


def _mlp_case(activation: type[nn.Module], init: Callable[[torch.Tensor], Any]) -> Callable[..., Case]:
    """MLP of width ``hidden`` (64 at the tiny size)."""

    def build(seed: int, size: Size = TINY) -> Case:
        return _vector_case(_seeded(lambda: mlp(activation, init, width=size.hidden)), seed, size)

    return build


# -- the known-good corpus ---------------------------------------------------------------------------

GOOD: dict[str, Callable[..., Case]] = {
    "gpt2": gpt2,
    "bert": _lm("BertConfig", "BertForMaskedLM", **_TEXT, **_NO_DROPOUT),
    "roberta": _lm("RobertaConfig", "RobertaForMaskedLM", **_TEXT, **_NO_DROPOUT, pad_token_id=1),
    "distilbert": _lm("DistilBertConfig", "DistilBertForMaskedLM", vocab_size=VOCAB, dim=HIDDEN,
                          n_layers=2, n_heads=4, hidden_dim=4 * HIDDEN, max_position_embeddings=64,
                          dropout=0.0, attention_dropout=0.0),
    "albert": _lm("AlbertConfig", "AlbertForMaskedLM", **_TEXT, embedding_size=32, **_NO_DROPOUT,
                      classifier_dropout_prob=0.0),
    "electra": _lm("ElectraConfig", "ElectraForMaskedLM", **_TEXT, embedding_size=32, **_NO_DROPOUT),
    "llama": _lm("LlamaConfig", "LlamaForCausalLM", **_TEXT, num_key_value_heads=2),
    "mistral": _lm("MistralConfig", "MistralForCausalLM", **_TEXT, num_key_value_heads=2),
    "qwen2": _lm("Qwen2Config", "Qwen2ForCausalLM", **_TEXT, num_key_value_heads=2),
    "gemma": _lm("GemmaConfig", "GemmaForCausalLM", **_TEXT, num_key_value_heads=2, head_dim=16),
    "opt": _lm("OPTConfig", "OPTForCausalLM", vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
                   num_attention_heads=4, ffn_dim=4 * HIDDEN, max_position_embeddings=64, dropout=0.0,
                   attention_dropout=0.0, word_embed_proj_dim=HIDDEN),
    "gpt_neox": _lm("GPTNeoXConfig", "GPTNeoXForCausalLM", **_TEXT, hidden_dropout=0.0,
                        attention_dropout=0.0),
    "t5": t5,
    "bart": bart,
    "vit": _vision("ViTConfig", "ViTForImageClassification", **_VIT),
    "deit": _vision("DeiTConfig", "DeiTForImageClassification", **_VIT),
    "dinov2": _vision("Dinov2Config", "Dinov2ForImageClassification", **_VIT),
    "resnet": _vision("ResNetConfig", "ResNetForImageClassification", stochastic=True, embedding_size=16,
                      hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], layer_type="basic"),
    "resnet_bottleneck": _vision("ResNetConfig", "ResNetForImageClassification", stochastic=True,
                                 embedding_size=16, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1],
                                 layer_type="bottleneck"),
    "convnext": _vision("ConvNextConfig", "ConvNextForImageClassification", stochastic=False,
                        hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1]),
    "mobilenet_v2": _vision("MobileNetV2Config", "MobileNetV2ForImageClassification", stochastic=True,
                            depth_multiplier=0.35, classifier_dropout_prob=0.0),
    "efficientnet": _vision("EfficientNetConfig", "EfficientNetForImageClassification", stochastic=True,
                            image_size=IMAGE, width_coefficient=0.25, depth_coefficient=0.2, hidden_dim=320,
                            dropout_rate=0.0, drop_connect_rate=0.0),
    "regnet": _vision("RegNetConfig", "RegNetForImageClassification", stochastic=True, embedding_size=16,
                      hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], groups_width=8),
    "swin": _vision("SwinConfig", "SwinForImageClassification", image_size=IMAGE, patch_size=4, embed_dim=16,
                    depths=[1, 1], num_heads=[2, 4], window_size=4, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0, drop_path_rate=0.0),
    "vgg_bn": _vgg_case(batchnorm=True),
    "vgg_plain": _vgg_case(batchnorm=False),
    "mlp_kaiming": _mlp_case(nn.ReLU, _kaiming),
    "mlp_xavier_tanh": _mlp_case(nn.Tanh, _xavier),
}

def _zero_gamma_resnet(seed: int, size: Size = TINY) -> Case:
    """HF ResNet with each residual block's last BatchNorm at γ = 0 (torchvision's zero_init_residual)."""
    case = GOOD["resnet"](seed, size)
    with torch.no_grad():
        for module in case.model.modules():
            if type(module).__name__ in ("ResNetBasicLayer", "ResNetBottleNeckLayer"):
                module.layer[-1].normalization.weight.zero_()
    return case


def _zero_head_vit(seed: int, size: Size = TINY) -> Case:
    """HF ViT with a zero-initialized classifier (uniform predictions at step 0, as in MAE fine-tuning)."""
    case = GOOD["vit"](seed, size)
    with torch.no_grad():
        case.model.classifier.weight.zero_()
        case.model.classifier.bias.zero_()
    return case


def _small_head_mlp(seed: int, size: Size = TINY) -> Case:
    """A 4-layer Kaiming ReLU MLP whose head is drawn at std 0.01 (torchvision's classifier init): a
    short body, so a bottom-vs-top gradient comparison would compare the bottom with the head alone."""
    def build() -> nn.Module:
        model = mlp(nn.ReLU, _kaiming, depth=4, width=size.hidden)
        nn.init.normal_(model[-1].weight, 0.0, 0.01)
        return model

    return _vector_case(_seeded(build), seed, size)


GOOD["resnet_zero_gamma"] = _zero_gamma_resnet
GOOD["vit_zero_head"] = _zero_head_vit
GOOD["mlp_small_head"] = _small_head_mlp
# T5 at its real width (T5-small's d_model 512): the tied lm_head reads d_model^-1/2 times the last norm
GOOD["t5_d512"] = _lm("T5Config", "T5ForConditionalGeneration", vocab_size=VOCAB, d_model=512, d_kv=64,
                      d_ff=512, num_layers=1, num_heads=8, dropout_rate=0.0, decoder_start_token_id=0,
                      pad_token_id=0)
# ConvNeXt-V2's GRN stores γ and β as (1, 1, 1, C) zeros: the identity, not a zero layer
GOOD["convnextv2"] = _vision("ConvNextV2Config", "ConvNextV2ForImageClassification",
                             hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1])


def _rwkv(seed: int, size: Size = TINY) -> Case:
    """RWKV: embeddings at SmallInit scale before a LayerNorm (below its eps at step 0, by design).
    ``use_cache=False``: with a cache its eval-mode forward updates the state in place (no backward)."""
    case = _lm("RwkvConfig", "RwkvForCausalLM", vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2,
               attention_hidden_size=HIDDEN, intermediate_size=4 * HIDDEN, context_length=64)(seed, size)
    return Case(case.model, {**case.inputs, "use_cache": False}, hf_loss)


GOOD["rwkv"] = _rwkv
# Mixtral: transformers 5 fuses each block's experts into 3-D parameters (no `weight`)
GOOD["mixtral"] = _lm("MixtralConfig", "MixtralForCausalLM", **_TEXT, num_key_value_heads=2,
                      num_local_experts=4, num_experts_per_tok=2)
# OLMo: parameter-free LayerNorms (no γ), at a width where a gain read across them would show
GOOD["olmo"] = _lm("OlmoConfig", "OlmoForCausalLM", vocab_size=VOCAB, hidden_size=512, num_hidden_layers=1,
                   num_attention_heads=8, intermediate_size=1024, pad_token_id=0, eos_token_id=1,
                   bos_token_id=None)

#: The models a CI run checks (each well under a second); the scorecard runs every one.
CI_SUBSET: tuple[str, ...] = ("gpt2", "bert", "llama", "t5", "vit", "resnet", "convnext", "vgg_plain",
                              "resnet_zero_gamma", "vit_zero_head", "mlp_small_head", "t5_d512", "convnextv2",
                              "rwkv")


# -- planted faults ----------------------------------------------------------------------------------


def _scaled_vgg(factor: float) -> Callable[[int], Case]:
    def build(seed: int) -> Case:
        model = _seeded(lambda: vgg(batchnorm=False))
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.mul_(factor)
        return _image_case(model, seed)

    return build


def _constant_mlp(seed: int) -> Case:
    model = _seeded(lambda: mlp(nn.ReLU, lambda w: nn.init.constant_(w, 0.05), depth=6))
    return _vector_case(model, seed)


def _sigmoid_mlp(seed: int) -> Case:
    return _vector_case(_seeded(lambda: mlp(nn.Sigmoid, None, depth=20)), seed)


def _overflowing_mlp(seed: int) -> Case:
    """Layer 6 (the 4th Linear) has one weight of 1e38: its output overflows float32 to inf."""
    model = _seeded(lambda: mlp(nn.ReLU, _kaiming, depth=6))
    with torch.no_grad():
        model[6].weight[0].fill_(1e38)
    return _vector_case(model, seed)


class NanGrad(nn.Module):
    """A parameter-free module: identity forward, ``sqrt(0)``'s infinite slope times 0 in backward (NaN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sqrt(x * 0.0)


def _gpt2_nan_backward(tied: bool) -> Callable[[int], Case]:
    def build(seed: int) -> Case:
        case = gpt2(seed, tie_word_embeddings=tied)
        block = case.model.transformer.h[1].mlp
        block.nan = NanGrad()  # a child of the MLP, applied to its output by a forward hook
        block.register_forward_hook(lambda mod, args, out: mod.nan(out))
        return case

    return build


def _one_layer_x30(seed: int) -> Case:
    """A Kaiming MLP whose third Linear (module 4) has its weights x30 (E[x²] x900 in that layer)."""
    model = _seeded(lambda: mlp(nn.ReLU, _kaiming, depth=6))
    with torch.no_grad():
        model[4].weight.mul_(30.0)
    return _vector_case(model, seed)


def _fp16_mlp(seed: int) -> Case:
    """A Kaiming MLP fed raw features of magnitude ~1e5 (unnormalized data): fine in float32, not float16."""
    case = _vector_case(_seeded(lambda: mlp(nn.ReLU, _kaiming, depth=6)), seed)
    return Case(case.model, case.inputs * 1e5, case.loss_fn, case.target)


FAULTS: dict[str, Fault] = {f.name: f for f in [
    Fault("vgg_x2", _scaled_vgg(2.0), "exploding", "0",
          "plain 12-conv VGG with every conv weight x2: each layer multiplies E[x²] by 4"),
    Fault("vgg_x0.5", _scaled_vgg(0.5), "vanishing", "0",
          "plain 12-conv VGG with every conv weight x0.5: each layer divides E[x²] by 4"),
    Fault("gpt2_init_1", lambda s: gpt2(s, initializer_range=1.0), "exploding", "transformer.h.0.attn.c_attn",
          "GPT-2 with initializer_range 1.0 instead of 0.02"),
    Fault("gpt2_init_1e-5", lambda s: gpt2(s, initializer_range=1e-5), "vanishing", "transformer.wte",
          "GPT-2 with initializer_range 1e-5 instead of 0.02"),
    Fault("one_layer_x30", _one_layer_x30, "exploding", "4", "one Linear of a Kaiming MLP with weights x30"),
    Fault("constant_mlp", _constant_mlp, "symmetric", "0", "every hidden weight 0.05: all units alike"),
    Fault("sigmoid_mlp", _sigmoid_mlp, "vanishing", "0", "20 Linear+Sigmoid layers at torch's default init"),
    Fault("inf_forward", _overflowing_mlp, "nonfinite", "6", "one weight row of 1e38 overflows to inf"),
    Fault("nan_backward_tied", _gpt2_nan_backward(True), "nonfinite", "transformer.h.1.mlp.nan",
          "GPT-2 (tied lm_head) whose block 1 MLP output passes a module with a NaN backward"),
    Fault("nan_backward_untied", _gpt2_nan_backward(False), "nonfinite", "transformer.h.1.mlp.nan",
          "GPT-2 (untied lm_head) whose block 1 MLP output passes a module with a NaN backward"),
    Fault("fp16_overflow", _fp16_mlp, "out_of_range", "0", "inputs of magnitude 1e5: past float16's 65504"),
]}


def _bert_zero_ln(everywhere: bool) -> Callable[[int], Case]:
    """HF BERT with its embedding LayerNorm's γ at 0 (or every LayerNorm's): post-LN, nothing bypasses it."""
    def build(seed: int) -> Case:
        case = GOOD["bert"](seed)
        with torch.no_grad():
            for name, module in case.model.named_modules():
                if isinstance(module, nn.LayerNorm) and (everywhere or name == "bert.embeddings.LayerNorm"):
                    module.weight.zero_()
        return case

    return build


class BagOfEmbeddings(nn.Module):
    """Token embeddings averaged over the sequence, then a linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, HIDDEN)
        self.fc = nn.Linear(HIDDEN, CLASSES)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(ids).mean(1))


def _constant_embedding(seed: int) -> Case:
    model = _seeded(BagOfEmbeddings)
    with torch.no_grad():
        model.emb.weight.fill_(0.1)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=_gen(seed))
    return Case(model, ids, nn.functional.cross_entropy, _classes(seed, BATCH))


def _dead_relu(seed: int) -> Case:
    """A Kaiming MLP whose third Linear (module 4) has bias -5: every unit of ReLU 5 is 0 (batch 4)."""
    model = _seeded(lambda: mlp(nn.ReLU, _kaiming, depth=6))
    with torch.no_grad():
        model[4].bias.fill_(-5.0)
    return _vector_case(model, seed)


def _mixtral_expert_x100(seed: int) -> Case:
    """Mixtral with expert 0 of block 0 scaled x100 in both of its matrices."""
    case = GOOD["mixtral"](seed)
    experts = case.model.model.layers[0].mlp.experts
    with torch.no_grad():
        experts.gate_up_proj[0].mul_(100.0)
        experts.down_proj[0].mul_(100.0)
    return case


FAULTS.update({f.name: f for f in [
    Fault("mixtral_expert_x100", _mixtral_expert_x100, "exploding", "model.layers.0.mlp.experts",
          "one expert's weights x100 in a Mixtral block (fused 3-D expert parameters)"),
    Fault("bert_embedding_ln_zero", _bert_zero_ln(False), "vanishing", "bert.embeddings.LayerNorm",
          "BERT with γ = 0 in the embedding LayerNorm: the output does not depend on the input"),
    Fault("bert_all_ln_zero", _bert_zero_ln(True), "vanishing", "bert.embeddings.LayerNorm",
          "BERT with γ = 0 in every LayerNorm"),
    Fault("constant_embedding", _constant_embedding, "symmetric", "emb", "every embedding entry 0.1"),
    Fault("dead_relu", _dead_relu, "dead", "5", "bias -5 before a ReLU: the whole layer is 0 on the batch"),
]})


def build(name: str, input_seed: int = 0, size: Size = TINY) -> Case:
    """The case ``name`` (a :data:`GOOD` model or a :data:`FAULTS` entry) with inputs from ``input_seed``;
    ``size`` scales a known-good model (faults are built at :data:`TINY`, where their answers hold)."""
    if name in GOOD:
        return GOOD[name](input_seed, size)
    if size != TINY:
        raise ValueError(f"{name} is a planted fault: it is built at the tiny size only")
    return FAULTS[name].build(input_seed)


def names() -> list[str]:
    """Every known-good model's name, then every fault's."""
    return [*GOOD, *FAULTS]



# -- judging a report against the corpus's answers ------------------------------------------------


def serious(report: Any) -> list[Any]:
    """The report's warning and error findings, most severe first."""
    return [f for f in report.findings if f.severity != "info"]


def fault_problems(fault: Fault, report: Any) -> list[str]:
    """What is wrong with ``report`` as the answer to ``fault`` (empty: right kind, right module first)."""
    found = serious(report)
    if not found:
        return [f"missed: verdict {report.verdict}"]
    first = found[0]
    problems = []
    if first.kind != fault.kind:
        problems.append(f"kind {first.kind}, expected {fault.kind}")
    if first.layers[0] != fault.first:
        problems.append(f"names {first.layers[0]} first, expected {fault.first}")
    return problems


def fix_problems(report: Any) -> list[str]:
    """Apply the first serious finding's offered fix; what is wrong with the re-check (empty: none).

    The after-report must be healthy and keep what was deliberate: tied layers stay tied, every weight
    outside the fix keeps its scale (GPT-2's residual projections, T5's query, a zero head, norms and
    gates), and a ``rescale`` multiplies every weight by its factor exactly (every ratio is kept).
    """
    finding = serious(report)[0]
    if finding.scheme is None:
        return []
    after = report.with_fix(finding.scheme, **finding.options).after
    problems = [] if after.verdict == "healthy" else [f"after the fix: {after.verdict}"]
    named = set(finding.options.get("layers", ()))
    factor = finding.options.get("factor", 1.0) if finding.scheme == "rescale" else 1.0
    before_layers = {la.name: la for la in report.layers}
    for la in after.layers:
        old = before_layers.get(la.name)
        if old is None or la.module_name in named:
            continue
        if la.shared_with != old.shared_with:
            problems.append(f"{la.name}: tied to {old.shared_with} before, {la.shared_with} after")
        if old.weight_rms is None or la.weight_rms is None:
            continue
        weighted = old.fan_in is not None or old.lookup
        if weighted and finding.scheme != "rescale" and not named:
            continue  # a whole-model re-init (offered for plain nets only) draws every weight anew
        scaled = factor if weighted and not named else 1.0
        if not math.isclose(la.weight_rms, scaled * old.weight_rms, rel_tol=1e-5, abs_tol=0.0):
            problems.append(f"{la.name}: weight scale {old.weight_rms:.3g} -> {la.weight_rms:.3g}")
    return problems
