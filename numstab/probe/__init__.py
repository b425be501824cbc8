"""Diagnose a model's numerical stability in one forward and backward pass: hooks, statistics, verdicts.

- :func:`diagnose` runs the pass and returns a :class:`Report`;
- :mod:`numstab.probe.hooks` captures per-call statistics with hooks that are always removed;
- :mod:`numstab.probe.stats` reduces each tensor to a few float64 numbers, exact at the extremes;
- :mod:`numstab.probe.rules` turns the numbers into :class:`Finding` s with documented thresholds;
- :mod:`numstab.probe.analytic` puts the mean-field prediction beside the measurement.

Examples:
    >>> import torch, numstab
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    >>> numstab.diagnose(net, torch.ones(8, 4)).verdict
    'healthy'
"""

from __future__ import annotations

from numstab.probe.diagnose import diagnose
from numstab.probe.report import Culprit, Finding, FixComparison, LayerReport, NonfiniteOrigin, Report

__all__ = ["diagnose", "Report", "LayerReport", "Finding", "Culprit", "NonfiniteOrigin", "FixComparison"]
