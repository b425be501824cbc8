"""Memory a computation may use: refuse, with the estimate and the limit, before allocating too much.

A size argument that cannot fit (``trials=10**9``, a 100000-wide layer, a grid step of 1e-12) should be
a clear error before any work starts, not an allocator failure after minutes, or the machine swapping.
Each experiment estimates its peak memory from its arguments and calls :func:`check_memory`; the limit
is the memory available now (Linux ``MemAvailable``, capped by the cgroup limit when there is one).

Examples:
    >>> check_memory("trials=10", 8 * 10, "pass fewer trials")      # 80 bytes: fine anywhere
    >>> format_bytes(3.5e9)
    '3.5 GB'
"""

from __future__ import annotations

import math
import os

from numstab.errors import InsufficientMemoryError

__all__ = ["available_memory", "check_memory", "format_bytes"]

_CGROUP = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current")


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_room() -> int | None:
    try:
        with open(_CGROUP[0], encoding="ascii") as limit, open(_CGROUP[1], encoding="ascii") as used:
            text = limit.read().strip()
            return None if text == "max" else max(0, int(text) - int(used.read().strip()))
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory available to this process now; None where the platform does not say.

    Examples:
        >>> room = available_memory()
        >>> room is None or room >= 0
        True
    """
    rooms = [room for room in (_meminfo_available(), _cgroup_room()) if room is not None]
    return min(rooms) if rooms else None


def format_bytes(nbytes: float) -> str:
    """A byte count in decimal units with two significant digits at most ('3.5 GB', '640 MB', 'inf').

    Examples:
        >>> format_bytes(1.28e11), format_bytes(640e6), format_bytes(512)
        ('130 GB', '640 MB', '512 B')
    """
    if not math.isfinite(nbytes):
        return "inf"
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{float(f'{nbytes / size:.2g}'):g} {unit}"
    return f"{int(nbytes)} B"


def check_memory(what: str, nbytes: float, fix: str, *, limit: int | None = None) -> None:
    """Raise :class:`InsufficientMemoryError` when ``nbytes`` exceeds the memory available.

    Args:
        what: the arguments that ask for the memory, as the user wrote them (``"trials=1000000000"``).
        nbytes: the estimated peak memory of the computation, in bytes (inf for an unbounded request).
        fix: what to do instead (``"pass fewer trials"``).
        limit: the limit in bytes (default: :func:`available_memory`; no check where that is unknown).

    Raises:
        InsufficientMemoryError: the message gives the estimate, the limit and ``fix``.

    Examples:
        >>> check_memory("width=100000", 4e10, "use a smaller width", limit=10**9)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        numstab.errors.InsufficientMemoryError: width=100000 needs about 40 GB of memory, more than...
    """
    room = available_memory() if limit is None else limit
    if room is not None and not nbytes <= room:
        need = f"about {format_bytes(nbytes)} of" if math.isfinite(nbytes) else "unbounded"
        raise InsufficientMemoryError(
            f"{what} needs {need} memory, more than the {format_bytes(room)} available: {fix}"
        )
