"""numstab.integrations: the monitor inside the training frameworks people use, as their callbacks.

- :mod:`numstab.integrations.huggingface`: ``NumstabCallback`` for ``transformers.Trainer`` (``pip install
  numstab[hf]``).
- :mod:`numstab.integrations.lightning`: ``NumstabCallback`` for Lightning's ``Trainer`` (``pip install
  numstab[lightning]``).

Each builds a :class:`~numstab.monitor.GradientMonitor` on the model the framework trains when training
starts (``callback.monitor``), takes the norms before gradient clipping, logs them through the framework's own
loggers, and on a non-finite step replays that step's batch to name the module that produced the fault
(``callback.culprits``). Nothing here is imported by ``import numstab``: a framework is imported only when
its module is.
"""
