"""Streaming tensor statistics, exact at the extremes.

Each tensor a hook sees is reduced here to a :class:`TensorStats` of a few numbers and then released,
so :func:`numstab.diagnose` never holds every activation at once.

Why not ``torch.linalg.vector_norm`` or ``x.std()`` on the tensor as it is: torch's float32 reductions
square the entries without rescaling, so entries of 1e-23 give a norm of 0 and a vector of 1e19s gives
``inf``; over 10^8 entries a float32 norm is also off by 1% (measured on VGG-16's 25088x4096 weight). The
layers this tool exists for live exactly there. The sums below run in float64: a float32 (or
float16/bfloat16) value squared in float64 can neither overflow (3.4e38² ≈ 1.2e77) nor flush
(1.4e-45² ≈ 2e-90), and its square is exact (24 + 24 bits < 53), so a gradient of 1e-30 is reported as
1e-30 and a finite 1e25 is never called non-finite. float64 inputs are multiplied by a power of two near
their largest magnitude first (exact), the trick LAPACK's ``dnrm2`` uses (Blue 1978).

Cost: :func:`_sums` converts one chunk of 2^18 entries at a time into a reused float64 buffer that stays
in cache and reduces it there (``sum`` and a BLAS ``dot``): one read of the tensor, no float64 copy of it.
Casting on the fly (``torch.sum(x, dtype=torch.float64)``, ``vector_norm(x, dtype=torch.float64)``) took
~9x longer on CPU; on VGG-16 those reductions were more than half of ``diagnose``'s time. The parts whose
result is exact whoever computes it (a minimum, a maximum, a count) run in numpy on CPU, where its
reductions and comparisons are 2-5x torch's on one thread; everything summed stays in torch, so every
reported number is the same bit for bit. Per tensor: one min/max, the float64 sums, and ``|x|``
compared with the flush thresholds that count anything (:func:`_nonzero_at_or_below`).

Statistics cover the finite entries; the non-finite ones are counted apart.

.. math::

    \\bar x = \\frac1n \\sum_i x_i, \\qquad
    \\sigma^2 = \\frac1n \\sum_i (x_i - \\bar x)^2, \\qquad
    m_2 = \\sigma^2 + \\bar x^2 = \\frac1n \\sum_i x_i^2

Two partial summaries combine exactly with Chan, Golub and LeVeque's (1979) pairwise update, so a
module returning several tensors (an LSTM's output and states) is summarized as one.

Examples:
    >>> import torch
    >>> tiny = torch.full((4, 3), 2.0**-100)  # ~7.9e-31
    >>> float(torch.linalg.vector_norm(tiny)), summarize(tiny).second_moment == 2.0**-200
    (0.0, True)
    >>> summarize(torch.full((2, 2), 1e25)).nonfinite
    0
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

__all__ = [
    "TensorStats",
    "summarize",
    "merge",
    "norm",
    "dead_fraction",
    "duplicate_rows",
    "unit_census",
    "range_fractions",
    "RANGE_FORMATS",
]

#: The formats whose range the report checks: every :func:`numstab.precision.formats` name, so a layer's
#: ``out_of_range`` has the keys of ``formats()`` (the public contract). float32 and float64 cost nothing in
#: the common case (the finite maximum is below their threshold) and say when a float64 model's values
#: would not survive a cast to float32.
RANGE_FORMATS: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64", "float8_e4m3fn", "float8_e5m2")


@dataclass(frozen=True)
class TensorStats:
    """Summary of the values of one or more tensors.

    Attributes:
        count: number of entries summarized (finite and non-finite).
        mean: mean of the finite entries (0.0 when there are none).
        std: population standard deviation of the finite entries.
        second_moment: mean of the squared finite entries, ``std**2 + mean**2``.
        max_abs: largest finite magnitude.
        nonfinite: number of NaN or infinite entries.
        overflow: ``{format: fraction}`` of entries whose magnitude exceeds the format's largest value
            (non-finite entries included).
        underflow: ``{format: fraction}`` of non-zero entries that the format flushes to zero.
        headroom_log2: ``{format: log2(format max / max_abs)}``, the powers of two left before overflow
            (``inf`` for an all-zero tensor).
    """

    count: int
    mean: float
    std: float
    second_moment: float
    max_abs: float
    nonfinite: int
    overflow: dict[str, float] = field(default_factory=dict)
    underflow: dict[str, float] = field(default_factory=dict)
    headroom_log2: dict[str, float] = field(default_factory=dict)

    @property
    def out_of_range(self) -> dict[str, float]:
        """``{format: fraction}`` that would overflow or flush to zero in the format."""
        return {k: self.overflow[k] + self.underflow.get(k, 0.0) for k in self.overflow}

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain Python values."""
        return {**asdict(self), "out_of_range": self.out_of_range}


def summarize(t: torch.Tensor, *, formats: tuple[str, ...] = ()) -> TensorStats:
    """Reduce a floating-point tensor to a :class:`TensorStats`, in float64 (see the module docstring).

    Args:
        t: any floating-point tensor; it is read, never modified, and no reference is kept.
        formats: :func:`numstab.precision.formats` names whose overflow and flush-to-zero fractions
            and headroom to compute (none by default; :data:`RANGE_FORMATS` is what diagnose uses).

    Examples:
        >>> s = summarize(torch.tensor([1.0, -1.0, float("inf")]))
        >>> (s.count, s.mean, s.std, s.nonfinite)
        (3, 0.0, 1.0, 1)
    """
    with torch.no_grad():
        x = t.detach().reshape(-1)
        extremes = _extremes(x)
        values, nonfinite = _finite_part(x, extremes)
        moments = _moments(values, None if nonfinite else extremes)
        ranges = ({}, {}, {})
        if formats:
            ranges = range_fractions(x, formats, max_abs=moments[3], extremes=extremes)
    return TensorStats(x.numel(), *moments, nonfinite, *ranges)


def _extremes(x: torch.Tensor) -> tuple[float, float]:
    """(min, max) of all entries, NaN when one is NaN ((0, 0) for an empty tensor).

    On CPU, float32 and float64 are reduced by numpy (twice as fast as ``torch.aminmax`` on one thread;
    a minimum is exact whoever takes it).
    """
    if x.numel() == 0:
        return 0.0, 0.0
    if x.device.type == "cpu" and x.dtype in _NUMPY_EXACT:
        values = x.numpy()
        return float(values.min()), float(values.max())
    lo, hi = torch.aminmax(x)
    return float(lo), float(hi)


#: dtypes that numpy holds as they are (a view, no conversion).
_NUMPY_EXACT = frozenset({torch.float32, torch.float64})


def _finite_part(x: torch.Tensor, extremes: tuple[float, float]) -> tuple[torch.Tensor, int]:
    """(finite entries, non-finite count) given ``x``'s (min, max): min and max are finite only if no
    entry is inf, and NaN propagates into them, so an all-finite tensor costs no pass here."""
    if all(math.isfinite(v) for v in extremes):
        return x, 0
    finite = torch.isfinite(x)
    values = x[finite]
    return values, x.numel() - values.numel()


def _moments(values: torch.Tensor, extremes: tuple[float, float] | None = None) -> tuple[float, ...]:
    """(mean, std, second moment, max |x|) of finite values, accumulated in float64."""
    if values.numel() == 0:
        return 0.0, 0.0, 0.0, 0.0
    lo, hi = extremes if extremes is not None else (float(v) for v in torch.aminmax(values))
    max_abs = max(-lo, hi)
    if max_abs == 0.0:
        return 0.0, 0.0, 0.0, 0.0
    scale = _scale(values, max_abs)
    n = values.numel()
    total, squares = _sums(values, scale)
    mean, second = total / n, squares / n
    var = max(second - mean * mean, 0.0)
    if var <= 1e-6 * mean * mean:  # near-constant: the one-pass formula cancels; take the second pass
        var = _sums(values, scale, shift=mean)[1] / n
        second = var + mean * mean
    return mean * scale, math.sqrt(var) * scale, second * scale * scale, max_abs


#: Entries per chunk of :func:`_sums`: a 2 MiB float64 buffer, cache-resident, and few Python iterations.
_CHUNK = 1 << 18


def _scale(x: torch.Tensor, max_abs: float) -> float:
    """1 for float32 and narrower (their squares fit float64); for float64 the power of two at ``max_abs``."""
    return 1.0 if x.dtype != torch.float64 else math.ldexp(1.0, math.frexp(max_abs)[1])


def _sums(x: torch.Tensor, scale: float = 1.0, *, shift: float = 0.0) -> tuple[float, float]:
    """``(Σ y, Σ y²)`` in float64 for ``y = x / scale - shift``, one cache-sized chunk at a time.

    ``scale`` is a power of two, so dividing by it is exact. Each chunk is converted into one reused
    float64 buffer and reduced there (pairwise ``sum``, BLAS ``dot``); chunk results add up in Python
    floats (float64).

    Examples:
        >>> _sums(torch.tensor([1.0, 2.0, 3.0]))
        (6.0, 14.0)
    """
    flat = x.detach().reshape(-1)
    n = flat.numel()
    buffer = torch.empty(min(_CHUNK, n), dtype=torch.float64, device=flat.device)
    total = squares = 0.0
    for start in range(0, n, _CHUNK):
        part = flat[start : start + _CHUNK]
        y = buffer[: part.numel()]
        y.copy_(part)
        if scale != 1.0:
            y.div_(scale)
        if shift:
            y.sub_(shift)
        total += float(y.sum())
        squares += float(torch.dot(y, y))
    return total, squares


def norm(t: torch.Tensor) -> float:
    """Euclidean norm of all entries, accumulated in float64 (float64 inputs scaled by their max first).

    Non-finite entries make it ``inf`` or ``nan``, as they should.

    Examples:
        >>> big = torch.full((1024,), 2.0**64)  # 1.8e19 each
        >>> norm(big) == 2.0**69, float(torch.linalg.vector_norm(big))
        (True, inf)
    """
    x = t.detach()
    if x.numel() == 0:
        return 0.0
    if x.dtype != torch.float64:
        return math.sqrt(_sums(x)[1])  # inf or nan when an entry is, as it should be
    lo, hi = (float(v) for v in torch.aminmax(x))
    top = max(-lo, hi)
    if top == 0.0 or not math.isfinite(top):
        return top if not math.isnan(lo + hi) else math.nan
    scale = _scale(x, top)
    return math.sqrt(_sums(x, scale)[1]) * scale


def merge(a: TensorStats | None, b: TensorStats) -> TensorStats:
    """Combine two summaries into the summary of all their entries (Chan, Golub & LeVeque 1979).

    .. math::

        \\bar x = \\frac{n_a \\bar x_a + n_b \\bar x_b}{n}, \\qquad
        n\\sigma^2 = n_a\\sigma_a^2 + n_b\\sigma_b^2 + \\frac{n_a n_b}{n}(\\bar x_a - \\bar x_b)^2

    Args:
        a: the running summary, or None for the first tensor.
        b: the summary to add.

    Examples:
        >>> m = merge(summarize(torch.tensor([1.0, 1.0])), summarize(torch.tensor([-1.0, -1.0])))
        >>> (m.count, m.mean, m.std)
        (4, 0.0, 1.0)
    """
    if a is None:
        return b
    na, nb = a.count - a.nonfinite, b.count - b.nonfinite
    n = na + nb
    if n == 0:
        mean = var = 0.0
    else:
        mean = (na * a.mean + nb * b.mean) / n
        var = (na * a.std**2 + nb * b.std**2 + na * nb / n * (a.mean - b.mean) ** 2) / n
    count = a.count + b.count

    def weighted(x: dict[str, float], y: dict[str, float]) -> dict[str, float]:
        return {k: (x[k] * a.count + y.get(k, 0.0) * b.count) / count for k in x}

    headroom = {k: min(v, b.headroom_log2.get(k, math.inf)) for k, v in a.headroom_log2.items()}
    return replace(
        a,
        count=count,
        mean=mean,
        std=math.sqrt(var),
        second_moment=var + mean * mean,
        max_abs=max(a.max_abs, b.max_abs),
        nonfinite=a.nonfinite + b.nonfinite,
        overflow=weighted(a.overflow, b.overflow),
        underflow=weighted(a.underflow, b.underflow),
        headroom_log2=headroom,
    )


def range_fractions(
    x: torch.Tensor, formats: tuple[str, ...], *, max_abs: float, extremes: tuple[float, float] | None = None
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Fractions of ``x`` that overflow or flush to zero in each format, and the headroom left.

    The boundaries are :func:`numstab.precision.categorize`'s (round to nearest even, decided on the
    exact value before any cast): overflow from the format's ``overflow_threshold`` (strictly above it
    for a format without infinity), flush to zero at or below half the smallest subnormal. Each format
    costs a comparison over ``|x|``, made one cache-sized chunk at a time in a reused buffer (no copy of
    the tensor); overflow is counted only when the maximum or a non-finite entry says there is some, and
    flushing only for formats whose threshold lies above ``x``'s own smallest subnormal. The thresholds of
    the narrow formats are short dyadic numbers, exact in float32, so float32 and float64 inputs are
    compared in their own dtype and narrower ones in float32.
    A threshold beyond float32's range (float32's own, float64's) rounds to ``inf`` there, which
    is still exact: no finite float32 value reaches it. Non-finite entries count as overflow.

    Args:
        x: the values (any floating dtype).
        formats: :func:`numstab.precision.formats` names.
        max_abs: the largest finite magnitude of ``x`` (for the headroom).
        extremes: ``x``'s (min, max) when the caller has them (NaN if an entry is); else computed here.

    Returns:
        ``(overflow, underflow, headroom_log2)``, each a dict keyed by format name.

    Examples:
        >>> over, under, room = range_fractions(torch.tensor([1e5, 1e-9, 1.0, 0.0]), ("float16",),
        ...                                     max_abs=1e5)
        >>> over["float16"], under["float16"], round(room["float16"], 3)
        (0.25, 0.25, -0.61)
    """
    n = max(x.numel(), 1)
    flat = x.detach().reshape(-1)
    specs, flushes = _range_specs(tuple(formats), flat.dtype)
    lo, hi = extremes if extremes is not None else _extremes(flat)
    finite = math.isfinite(lo) and math.isfinite(hi)  # NaN and inf both fail
    nan = 0 if finite else int(torch.isnan(flat).sum())
    at_or_below = _nonzero_at_or_below(flat, flushes)
    overflow: dict[str, float] = {}
    underflow: dict[str, float] = {}
    headroom: dict[str, float] = {}
    for name, fmt in zip(formats, specs, strict=True):
        threshold = fmt.overflow_threshold
        if finite and max_abs < threshold:  # the common case: nothing to count
            overflow[name] = 0.0
        else:
            mag = flat.abs() if flat.dtype in (torch.float32, torch.float64) else flat.float().abs()
            over = (mag >= threshold) if fmt.has_inf else (mag > threshold)
            overflow[name] = (int(over.sum()) + nan) / n
        flush = fmt.smallest_subnormal / 2
        underflow[name] = at_or_below.get(flush, 0) / n
        headroom[name] = math.log2(fmt.max / max_abs) if max_abs > 0 else math.inf
    return overflow, underflow, headroom


@functools.cache
def _range_specs(formats: tuple[str, ...], dtype: torch.dtype) -> tuple[tuple[Any, ...], tuple[float, ...]]:
    """The formats' specs, and the flush thresholds to count for values of ``dtype``: those at or above
    its own smallest subnormal (ascending)."""
    from numstab import precision

    specs = tuple(precision.get_format(name) for name in formats)
    tiny = torch.finfo(dtype).smallest_normal * torch.finfo(dtype).eps  # dtype's smallest subnormal
    return specs, tuple(sorted({f.smallest_subnormal / 2 for f in specs if f.smallest_subnormal / 2 >= tiny}))


#: The integer dtype whose patterns are a float dtype's bits.
_BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def _nonzero_at_or_below(flat: torch.Tensor, thresholds: tuple[float, ...]) -> dict[float, int]:
    """``{t: #{i : 0 < |x_i| <= t}}`` for each threshold, one chunk of ``|x|`` at a time.

    For non-negative IEEE numbers the order of the bit patterns, read as integers, is the order of the
    values (NaN's patterns lie above every finite one), so ``|x| <= t`` is ``bits(|x|) <= bits(t)``, and
    ``|x| = 0`` is ``bits(|x|) = 0``: each count is ``#{bits <= bits(t)} - #zeros``. The thresholds are
    counted from the highest down; once one counts nothing, none below it can (usually only the float8
    ones count anything). On CPU the comparisons run in numpy, ~5x faster than torch's there.
    """
    counts = dict.fromkeys(thresholds, 0)
    if not thresholds:
        return counts
    work = torch.float64 if flat.dtype == torch.float64 else torch.float32
    limits = _bit_limits(work, thresholds)
    buffer = torch.empty(min(_CHUNK, flat.numel()), dtype=work, device=flat.device)
    scratch = _Scratch(buffer.numel()) if flat.device.type == "cpu" else None
    for start in range(0, flat.numel(), _CHUNK):
        part = flat[start : start + _CHUNK]
        magnitudes = buffer[: part.numel()]
        if part.dtype == work:
            torch.abs(part, out=magnitudes)
        else:
            magnitudes.copy_(part).abs_()
        bits = magnitudes.view(_BITS[work])
        values = bits if scratch is None else bits.numpy()
        zeros = part.numel() - _count(values)
        for t, limit in reversed(limits):
            below = _count(values, limit, scratch) - zeros
            if not below:
                break
            counts[t] += below
    return counts


class _Scratch:
    """A reused boolean numpy buffer for :func:`_count`'s comparisons."""

    def __init__(self, n: int) -> None:
        import numpy as np

        self.mask = np.empty(n, dtype=bool)


def _count(values: Any, limit: int | None = None, scratch: _Scratch | None = None) -> int:
    """``#{i : values_i != 0}`` (no ``limit``) or ``#{i : values_i <= limit}``, for a torch tensor or (with
    ``scratch``, or for the non-zero count) a numpy array."""
    import numpy as np

    if limit is None:
        return int(np.count_nonzero(values) if isinstance(values, np.ndarray) else values.count_nonzero())
    if scratch is None:
        return int(torch.count_nonzero(values <= limit))
    mask = scratch.mask[: values.size]
    return int(np.count_nonzero(np.less_equal(values, limit, out=mask)))


@functools.cache
def _bit_limits(work: torch.dtype, thresholds: tuple[float, ...]) -> tuple[tuple[float, int], ...]:
    """``(t, bits(t))`` for each threshold in ``work``'s bit patterns (ascending, as ``thresholds``)."""
    ints = _BITS[work]
    return tuple((t, int(torch.tensor(t, dtype=work).view(ints))) for t in thresholds)


def dead_fraction(t: torch.Tensor, unit_dim: int) -> float:
    """Fraction of units whose value is exactly 0 for every sample and position.

    A unit is one index along ``unit_dim`` (features of a dense layer, channels of a convolution).
    A ReLU unit that is dead here gets no gradient, so it never recovers.

    Args:
        t: the layer's output.
        unit_dim: the dimension that indexes units.

    Examples:
        >>> dead_fraction(torch.tensor([[0.0, 1.0], [0.0, 2.0]]), 1)
        0.5
    """
    with torch.no_grad():
        alive = _alive(t, unit_dim)
    return 1.0 - float(alive.sum()) / max(alive.numel(), 1)


def unit_census(t: torch.Tensor, unit_dim: int) -> tuple[float, int]:
    """``(dead_fraction(t, unit_dim), duplicate_rows(unit_rows(t, unit_dim)))`` with one pass for both:
    which units hold a non-zero is computed once, and the unit rows are never copied.

    Examples:
        >>> unit_census(torch.tensor([[0.0, 1.0, 1.0, 3.0], [0.0, 2.0, 2.0, 4.0]]), 1)  # unit 0 dead, 2 = 1
        (0.25, 1)
    """
    with torch.no_grad():
        x = t.detach()
        if x.dim() < 2:  # a unit is one value: the rows' own test of "non-zero" (NaN is not) applies
            return dead_fraction(x, unit_dim), duplicate_rows(_unit_rows(x, unit_dim))
        alive = _alive(x, unit_dim)
        dead = 1.0 - float(alive.sum()) / max(alive.numel(), 1)
        return dead, duplicate_rows(x.movedim(unit_dim, 0), alive=alive)


def _alive(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """Per unit: is any of its values non-zero? (max |x| over the other dims, fast in any layout)."""
    x = t.detach()
    if x.dim() == 0:
        return x.reshape(1).ne(0)
    others = [d for d in range(x.dim()) if d != unit_dim % x.dim()]
    if not others:
        return x.ne(0)
    return (x.amax(dim=others) > 0) | (x.amin(dim=others) < 0)  # two reductions, no |x| copy


def duplicate_rows(rows: torch.Tensor, *, skip_zero: bool = True, alive: torch.Tensor | None = None) -> int:
    """Number of rows equal to an earlier row (bit for bit): ``rows - distinct rows``.

    This is the chapter's symmetry: units initialized alike get the same gradient and stay alike, so a
    layer of ``n`` units computes like one. All-zero rows (dead units) are skipped by default, so a dead
    layer is not also called symmetric.

    Each row is hashed by a random linear form of the bit patterns of its first 64 entries, in wrapping
    int64 arithmetic (exact and independent of summation order); only rows whose hashes collide are
    compared, exactly and in full. Nothing else is copied: ``rows`` may be a strided view.

    Args:
        rows: a tensor of one or more dimensions, one row per index of its first (a weight matrix, or a
            layer's output with its unit dimension moved first: row ``u`` is everything unit ``u`` holds).
        skip_zero: ignore rows that are all zero.
        alive: when ``rows`` has two or more dimensions, the caller's ``_alive(rows, 0)`` (which rows hold
            a non-zero), so that it is not computed twice.

    Examples:
        >>> duplicate_rows(torch.tensor([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [0.0, 0.0]]))
        1
    """
    with torch.no_grad():
        r = rows.detach()
        if r.dim() < 2:
            r, alive = r.reshape(r.shape[0], -1), None
        if skip_zero:
            keep = (_alive(r, 0) if alive is None else alive).nonzero().flatten()
        else:
            keep = torch.arange(r.shape[0], device=r.device)
        if keep.numel() < 2:
            return 0
        every = keep.numel() == r.shape[0]
        leading = _leading(r, _HASHED_COLUMNS)  # copies 64 entries of each row only
        hashes = _row_hashes(leading if every else leading[keep])
        sorted_hashes, by_hash = torch.sort(hashes)  # one sort gives both
        same = (sorted_hashes[1:] == sorted_hashes[:-1]).nonzero().flatten()
        if not same.numel():
            return 0
        order = by_hash if every else keep[by_hash]
        return _equal_pairs(r, order[same], order[same + 1])


def _equal_pairs(r: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> int:
    """How many of the row pairs ``(r[a[i]], r[b[i]])`` are equal entry for entry (``torch.equal``'s rule:
    NaN equals nothing, -0.0 equals 0.0), compared a cache-sized batch of pairs at a time."""
    step = max(1, _CHUNK // max(math.prod(r.shape[1:]), 1))
    equal = 0
    for start in range(0, a.numel(), step):
        i, j = a[start : start + step], b[start : start + step]
        equal += int((r[i] == r[j]).flatten(1).all(dim=1).sum())
    return equal


def _leading(r: torch.Tensor, n: int) -> torch.Tensor:
    """The first ``n`` entries of each row of ``r`` (row ``u``: ``r[u]`` in row-major order), as a
    ``(rows, <= n)`` tensor, copying only the slab of ``r`` that holds them.

    Examples:
        >>> _leading(torch.arange(24.0).reshape(2, 3, 4), 5)
        tensor([[ 0.,  1.,  2.,  3.,  4.],
                [12., 13., 14., 15., 16.]])
    """
    view = r
    for d in range(1, r.dim()):
        inner = math.prod(r.shape[d + 1 :])
        if inner == 0:
            break
        need = -(-n // inner)  # indices of dim d that hold the first n entries
        view = view.narrow(d, 0, min(need, r.shape[d]))
        if need > 1:
            break
    return view.reshape(r.shape[0], -1)[:, :n]


_INT_OF_SIZE = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
#: Rows are hashed on their first columns only: equal rows agree there, and rows that agree there are
#: then compared in full, so this only bounds the cost.
_HASHED_COLUMNS = 64


def _row_hashes(r: torch.Tensor) -> torch.Tensor:
    """One int64 per row: sum of (bit pattern × fixed random odd multiplier), wrapping."""
    bits = r.contiguous().view(_INT_OF_SIZE[r.element_size()]).to(torch.int64)
    return (bits * _hash_weights(bits.shape[1], r.device)).sum(dim=1)


@functools.cache
def _hash_weights(columns: int, device: torch.device) -> torch.Tensor:
    """The fixed random odd multipliers of :func:`_row_hashes` (seeded, so every call draws the same)."""
    gen = torch.Generator(device=device).manual_seed(0x5EED)
    return torch.randint(-(2**62), 2**62, (columns,), generator=gen, device=device) | 1


def unit_rows(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """View ``t`` as ``(units, samples)``: row ``u`` holds every value of unit ``u``.

    Examples:
        >>> unit_rows(torch.zeros(8, 3, 5, 5), 1).shape
        torch.Size([3, 200])
    """
    return _unit_rows(t, unit_dim)


def _unit_rows(t: torch.Tensor, unit_dim: int) -> torch.Tensor:
    x = t.detach()
    if x.dim() == 0:
        return x.reshape(1, 1)
    return x.movedim(unit_dim, 0).reshape(x.shape[unit_dim], -1)
