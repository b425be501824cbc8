"""Built-in models for ``numstab check``: each one shows one verdict of the chapter, or a healthy network.

======================  =======================================================================
name                    what it shows
======================  =======================================================================
sigmoid_mlp             20 Linear+Sigmoid layers, torch's default init: gradients vanish
relu_mlp_normal         20 Linear+ReLU layers with N(0, 1) weights (the book's scale 1): explodes
constant_mlp            a ReLU MLP with every weight 0.05: the chapter's symmetry, units identical
tiny_resnet             conv stem, 3 residual blocks with BatchNorm and ReLU(inplace=True): healthy
transformer             a 2-layer torch.nn.TransformerEncoder (d_model 64): healthy
lstm                    a 2-layer LSTM with a linear head: healthy
======================  =======================================================================

Every example is built inside ``torch.random.fork_rng`` from its seed, so the same seed gives the same
weights and inputs and the global RNG is not touched.

Examples:
    >>> model, inputs = build("sigmoid_mlp", seed=0)
    >>> type(model).__name__, tuple(inputs.shape)
    ('Sequential', (128, 64))
    >>> names()[:2]
    ['sigmoid_mlp', 'relu_mlp_normal']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from numstab.errors import UnknownNameError, check_seed

__all__ = ["Example", "EXAMPLES", "build", "names", "get"]


@dataclass(frozen=True)
class Example:
    """A built-in model with inputs for it.

    Attributes:
        name: registry name (what ``numstab check NAME`` takes).
        factory: builds the model (called under a seeded, forked RNG).
        make_inputs: builds a batch of inputs for it (same RNG).
        description: one line: the architecture and what the check should find.
        expected: the verdict ``numstab.diagnose`` gives it.
    """

    name: str
    factory: Callable[[], nn.Module]
    make_inputs: Callable[[], torch.Tensor]
    description: str
    expected: str

    def to_dict(self) -> dict[str, str]:
        """Name, description and expected verdict."""
        return {"name": self.name, "description": self.description, "expected": self.expected}


def _mlp(activation: type[nn.Module], *, depth: int = 20, width: int = 64) -> nn.Sequential:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), activation())])


def _normal_relu_mlp() -> nn.Sequential:
    model = _mlp(nn.ReLU)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 1.0)
            nn.init.zeros_(layer.bias)
    return model


def _constant_mlp() -> nn.Sequential:
    model = _mlp(nn.ReLU, depth=4)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.constant_(layer.weight, 0.05)
            nn.init.zeros_(layer.bias)
    return model


class _Block(nn.Module):
    """conv-bn-relu-conv-bn plus the identity, then ReLU (He et al. 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + x)


class TinyResNet(nn.Module):
    """A 7-layer ResNet for 3×16×16 images: stem, ``blocks`` residual blocks, pooling, linear head."""

    def __init__(self, channels: int = 16, blocks: int = 3, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_Block(channels) for _ in range(blocks)])
        self.head = nn.Linear(channels, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class LSTMRegressor(nn.Module):
    """A 2-layer LSTM over (batch, time, features) with a linear head on every step."""

    def __init__(self, features: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out)


def _transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


EXAMPLES: dict[str, Example] = {
    e.name: e
    for e in (
        Example("sigmoid_mlp", lambda: _mlp(nn.Sigmoid), lambda: torch.randn(128, 64),
                "20 Linear+Sigmoid layers, torch's default init: gradients vanish toward the input",
                "vanishing"),
        Example("relu_mlp_normal", _normal_relu_mlp, lambda: torch.randn(128, 64),
                "20 Linear+ReLU layers with N(0, 1) weights: the signal explodes", "exploding"),
        Example("constant_mlp", _constant_mlp, lambda: torch.randn(128, 64),
                "4 Linear+ReLU layers with every weight 0.05: units identical (symmetry)", "symmetric"),
        Example("tiny_resnet", TinyResNet, lambda: torch.randn(8, 3, 16, 16),
                "conv stem, 3 residual blocks with BatchNorm and ReLU(inplace=True): healthy", "healthy"),
        Example("transformer", _transformer, lambda: torch.randn(8, 16, 64),
                "2-layer torch.nn.TransformerEncoder, d_model 64, 4 heads: healthy", "healthy"),
        Example("lstm", LSTMRegressor, lambda: torch.randn(8, 20, 32),
                "2-layer LSTM (32 -> 64) with a linear head on every step: healthy", "healthy"),
    )
}


def names() -> list[str]:
    """The example names, in the order ``numstab examples`` lists them.

    Examples:
        >>> "tiny_resnet" in names()
        True
    """
    return list(EXAMPLES)


def get(name: str) -> Example:
    """The :class:`Example` called ``name``.

    Raises:
        UnknownNameError: no such example (the message lists them).

    Examples:
        >>> get("lstm").expected
        'healthy'
    """
    if name not in EXAMPLES:
        raise UnknownNameError("example", name, names(), "`numstab examples` lists them")
    return EXAMPLES[name]


def build(name: str, *, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """Build example ``name`` and a batch of inputs from ``seed``, without touching the global RNG.

    Args:
        name: an example name (:func:`names`).
        seed: seed for the weights and the inputs.

    Examples:
        >>> a, _ = build("lstm", seed=1)
        >>> b, _ = build("lstm", seed=1)
        >>> torch.equal(a.head.weight, b.head.weight)
        True
    """
    example = get(name)
    seed = check_seed("seed", seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = example.factory()
        inputs = example.make_inputs()
    return model, inputs
