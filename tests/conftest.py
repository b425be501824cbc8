"""Shared test set-up: single-threaded torch, deterministic, colourless output."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
for _var in ("FORCE_COLOR", "NO_COLOR"):
    os.environ.pop(_var, None)

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def generator() -> torch.Generator:
    """A torch generator seeded with 0."""
    return torch.Generator().manual_seed(0)


# Property tests draw the same examples on every run: a CI failure is reproducible, never a lucky draw.
from hypothesis import settings  # noqa: E402

settings.register_profile("numstab", derandomize=True, deadline=None)
settings.load_profile("numstab")
