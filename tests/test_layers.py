"""numstab.layers: fan layouts (torch's and HF Conv1D's), first owners of shared parameters, scan."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from numstab import layers
from numstab.errors import BadInputError


def test_fans_in_both_layouts_and_a_bad_shape():
    conv = torch.empty(16, 3, 5, 5)
    assert layers.fans(conv) == nn.init._calculate_fan_in_and_fan_out(conv) == (75, 400)
    assert layers.fans(torch.empty(768, 2304), transposed=True) == (768, 2304)  # GPT-2's c_attn: in 768
    with pytest.raises(BadInputError, match=r"shape \(5,\)"):
        layers.fans(torch.empty(5), transposed=True)


def test_hf_conv1d_and_its_subclasses_are_recognized_by_class():
    pytorch_utils = pytest.importorskip("transformers.pytorch_utils")

    class Scaled(pytorch_utils.Conv1D):
        pass

    conv = pytorch_utils.Conv1D(8, 5)
    assert layers.is_hf_conv1d(conv) and layers.is_hf_conv1d(Scaled(8, 5))
    assert not layers.is_hf_conv1d(nn.Conv1d(5, 8, 1)) and not layers.is_hf_conv1d(nn.Linear(5, 8))
    found, unknown = layers.scan(nn.Sequential(conv))
    assert [(la.name, la.transposed, la.weights, la.biases) for la in found] == [
        ("0", True, ("weight",), ("bias",))]
    assert unknown == []


def test_a_look_alike_named_conv1d_is_not_taken_for_hf_s():
    class Conv1D(nn.Module):  # same name, weight (out, in): not transformers' class
        def __init__(self) -> None:
            super().__init__()
            self.nf = 3
            self.weight = nn.Parameter(torch.ones(3, 2))

    assert not layers.is_hf_conv1d(Conv1D())
    assert layers.scan(nn.Sequential(Conv1D()))[1] == [("0", "Conv1D")]


def test_importing_numstab_does_not_import_transformers():
    code = "import sys, numstab, numstab.init, numstab.layers; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_owners_are_first_in_named_modules_order_and_a_shared_module_counts_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Embedding(10, 4), shared, nn.Tanh(), shared, nn.Linear(4, 10))
    model[4].weight = model[0].weight  # tied head
    owner = layers.owners(model)
    assert owner[id(model[4].weight)] == "0" and owner[id(model[4].bias)] == "4"
    assert owner[id(shared.weight)] == "1"
    found, unknown = layers.scan(model)
    assert [(la.name, la.weights, la.biases) for la in found] == [
        ("1", ("weight",), ("bias",)), ("4", (), ("bias",))]
    assert unknown == []


def test_scan_sorts_known_lookup_and_unknown_modules():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ConvTranspose1d(2, 3, 3), nn.EmbeddingBag(5, 3), nn.Bilinear(3, 3, 2),
        nn.LayerNorm(3), nn.MultiheadAttention(8, 2), nn.MultiheadAttention(8, 2, kdim=4, vdim=6, bias=False),
    )
    found, unknown = layers.scan(model)
    assert [(la.name, la.weights, la.biases, la.blocks) for la in found] == [
        ("0", ("weight",), ("bias",), 1),
        ("1", ("weight",), ("bias",), 1),
        ("5", ("in_proj_weight",), ("in_proj_bias",), 3),
        ("5.out_proj", ("weight",), ("bias",), 1),
        ("6", ("q_proj_weight", "k_proj_weight", "v_proj_weight"), (), 1),
        ("6.out_proj", ("weight",), (), 1),
    ]
    assert unknown == [("3", "Bilinear")]  # the embedding bag has no fans; the norm's weight is 1-D
