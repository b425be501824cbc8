"""locate_nonfinite(level="op") on CUDA: planted faults named as on the CPU (skips without a GPU)."""

from __future__ import annotations

import pytest
import torch
from test_locate_ops import CASES, Case, batch, line_of, loss_fn, planted

from numstab.monitor import GradientMonitor, locate_nonfinite

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# CUDA's LayerNorm keeps mean and rstd in float32 for float16 inputs: rstd = 1e6 does not overflow there
ON_CUDA = [c for c in CASES if c.name != "layernorm"]


@pytest.mark.parametrize("case", ON_CUDA, ids=lambda c: c.name)
def test_planted_fault_on_cuda(case: Case) -> None:
    model = planted(case).cuda()
    culprit = locate_nonfinite(model, batch().cuda(), loss_fn, level="op")
    assert (culprit.op, culprit.module, culprit.phase, culprit.value) == (
        case.op,
        case.module,
        case.phase,
        case.value,
    )
    assert culprit.source == line_of(case.name) and culprit.reproduced


def test_fp16_autocast_with_grad_scaler_on_cuda() -> None:
    case = CASES[0]  # log of zero
    model = planted(case).cuda()
    scaler = torch.amp.GradScaler("cuda")
    with GradientMonitor(model) as monitor, torch.autocast("cuda", dtype=torch.float16):
        culprit = monitor.locate_nonfinite(batch().cuda(), loss_fn, scaler=scaler, level="op")
    assert (culprit.op, culprit.module, culprit.source) == ("aten.log.default", "fault", line_of("log_zero"))
    assert culprit.reproduced
