"""numstab.precision.quantize against torchao's own MX, NVFP4 and float8 code (skipped without torchao).

torchao (pytorch/ao, 0.18) implements the OCP MX conversion (``to_mx``, FLOOR scale mode), NVFP4
(``nvfp4_quantize``) and per-tensor float8 scaling (``amax_to_scale`` + ``to_fp8_saturated``); its
emulated paths run on CPU. Where the two are meant to agree they must agree bit for bit. Where they
differ on purpose, the difference is asserted, so a change on either side shows up:

- MX: a block of float32-subnormal values gets the E8M0 scale 2**-127 (the spec's floor) here, and
  2**-126 in torchao (a workaround for Triton, see its comment in ``to_mx``);
- MX: a block holding ±inf gets the NaN scale here (the whole block reads back NaN); torchao 0.18 only
  does so for NaN, and scales the inf to the largest element instead;
- NVFP4: an all-zero tensor reads back as zeros here; torchao's tensor scale is 0 and gives NaN.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from numstab.precision import quantize

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    mx_tensor = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor")
    nvfp4_tensor = pytest.importorskip("torchao.prototype.mx_formats.nvfp4_tensor")
    float8_utils = pytest.importorskip("torchao.float8.float8_utils")

from test_precision_recipes import adversarial, assert_same_bits  # noqa: E402

FLOAT32_SUBNORMAL_ROW = 2
INF_ROWS = (5, 6)


def torchao_mx(x: torch.Tensor, elem_dtype: torch.dtype) -> torch.Tensor:
    scale, data = mx_tensor.to_mx(x.contiguous(), elem_dtype, 32)
    return mx_tensor.to_dtype(data, scale, elem_dtype, 32, torch.float32)


def torchao_nvfp4(x: torch.Tensor) -> torch.Tensor:
    per_tensor_scale = nvfp4_tensor.per_tensor_amax_to_scale(x.abs().max())
    t = nvfp4_tensor.NVFP4Tensor.to_nvfp4(x, per_tensor_scale=per_tensor_scale)
    return t.dequantize(torch.float32)


def torchao_float8(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    scale = float8_utils.amax_to_scale(x.abs().max(), dtype)
    return float8_utils.to_fp8_saturated(x.float() * scale, dtype).to(torch.float32) / scale


@pytest.mark.parametrize(("recipe", "dtype"), [("mxfp8_e4m3", torch.float8_e4m3fn),
                                               ("mxfp8_e5m2", torch.float8_e5m2)])
def test_mx_equals_torchao_to_mx(recipe, dtype, generator):
    x = adversarial(generator)
    rows = [r for r in range(x.shape[0]) if r != FLOAT32_SUBNORMAL_ROW and r not in INF_ROWS]
    assert_same_bits(quantize(x[rows], recipe), torchao_mx(x[rows], dtype))
    # the two documented differences, each confined to its block
    sub = x[FLOAT32_SUBNORMAL_ROW : FLOAT32_SUBNORMAL_ROW + 1]
    ours, theirs = quantize(sub, recipe), torchao_mx(sub, dtype)
    assert torch.equal(ours[:, 32:], theirs[:, 32:]) and not torch.equal(ours[:, :32], theirs[:, :32])
    inf_row = x[INF_ROWS[0] : INF_ROWS[0] + 1]
    assert quantize(inf_row, recipe)[0, 32:64].isnan().all()
    assert not torchao_mx(inf_row, dtype)[0, 32:64].isnan().any()


def test_nvfp4_equals_torchao(generator):
    x = adversarial(generator)
    rows = [r for r in range(x.shape[0]) if r not in (4, *INF_ROWS)]  # a NaN or inf makes all NaN
    assert_same_bits(quantize(x[rows], "nvfp4"), torchao_nvfp4(x[rows]))
    wide = torch.randn(64, 256, generator=generator) * torch.exp2(torch.randint(-20, 20, (64, 1),
                                                                                generator=generator).float())
    assert_same_bits(quantize(wide, "nvfp4"), torchao_nvfp4(wide))
    assert torch.equal(quantize(torch.zeros(2, 32), "nvfp4"), torch.zeros(2, 32))
    assert torchao_nvfp4(torch.zeros(2, 32)).isnan().all()
    nan = x[4:5]
    assert quantize(nan, "nvfp4").isnan().all() and torchao_nvfp4(nan).isnan().all()
    assert math.isnan(float(nan.sum()))


@pytest.mark.parametrize(("recipe", "dtype"), [("e4m3_tensor", torch.float8_e4m3fn),
                                               ("e5m2_tensor", torch.float8_e5m2)])
def test_per_tensor_scaling_equals_torchao_float8(recipe, dtype, generator):
    x = adversarial(generator)[[r for r in range(24) if r not in (4, 5, 6)]]
    assert_same_bits(quantize(x, recipe), torchao_float8(x, dtype))
