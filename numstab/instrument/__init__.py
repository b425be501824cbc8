"""Instrumentation of torch models, shared by :mod:`numstab.probe`, :mod:`numstab.monitor` and
:func:`numstab.init.lsuv_`: one way to leave a model as found, to walk nested outputs, to hook module calls
and gradients (surviving in-place ops), and to name the first non-finite value's origin.

- :mod:`numstab.instrument.state`: :func:`preserved` / :class:`ModelState` (modes, parameters written in
  forward, buffers including rebound ones, ``.grad``, ``requires_grad``, the RNG);
- :mod:`numstab.instrument.tensors`: :func:`float_tensors`, :func:`all_finite`, :func:`max_abs`;
- :mod:`numstab.instrument.calls`: :class:`ModuleCalls`, hooks on every module call;
- :mod:`numstab.instrument.origin`: :class:`Culprit` and :func:`find_origin`, the one rule for where the
  first NaN/inf came from;
- :mod:`numstab.instrument.compiled`: :func:`unwrap_compiled`, the eager module inside ``torch.compile``;
- :mod:`numstab.instrument.inputs`: how a batch is passed (:func:`~numstab.instrument.inputs.as_call`) and the
  checks every pass makes first (empty batch, NaN/inf, a signature that does not fit, the loss).

Layer: below ``init`` (which uses it for ``lsuv_``), beside ``theory``; it imports only torch and
:mod:`numstab.errors`.
"""

from numstab.instrument.calls import ROOT, ModuleCalls
from numstab.instrument.compiled import unwrap_compiled
from numstab.instrument.origin import Culprit, find_origin
from numstab.instrument.state import ModelState, preserved
from numstab.instrument.tensors import all_finite, float_tensors, max_abs

__all__ = [
    "ROOT",
    "ModuleCalls",
    "Culprit",
    "find_origin",
    "ModelState",
    "preserved",
    "all_finite",
    "float_tensors",
    "max_abs",
    "unwrap_compiled",
]
