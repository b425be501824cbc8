"""Products of random matrices: the chapter's exploding product and the lecture's prod_random_matrices.

The book multiplies a 4x4 N(0, 1) matrix by 100 more (``M = torch.mm(M, torch.normal(0, 1, size=(4, 4)))``)
and prints entries near 1e22; the lecture's ``prod_random_matrices(scale, K)`` starts from the identity
and multiplies 100 K x K matrices with N(0, scale**2) entries: scale 0.5 gives entries near 1e-6,
scale 0.7 near 1e9 - 1e10. :func:`matrix_products` runs thousands of such products at once and sets
the measured growth beside the top Lyapunov exponent (Newman 1986), which is zero at the critical
scale exp(-(ln 2 + psi(k/2)) / 2) (0.572 for k = 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.special
import torch

from numstab.errors import check_int_at_least, check_seed
from numstab.lab._result import LabResult
from numstab.lab._validate import scales_tuple
from numstab.lab.comparison import Comparison
from numstab.notation import power10
from numstab.resources import check_memory

__all__ = [
    "matrix_products",
    "MatrixProducts",
    "BookProduct",
    "CHAPTER_SCALES",
    "frobenius_offset",
    "log_norm_std",
]

#: The lecture's two scales, 1.0 (the book's N(0, 1)), and a sweep through the critical scale 0.572 (k = 4).
CHAPTER_SCALES = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0)
_LN10 = math.log(10.0)


@dataclass(frozen=True, repr=False)
class BookProduct(LabResult):
    """The book's cell: one N(0, 1) k x k matrix times ``n`` more (n + 1 factors), scale 1.

    Attributes:
        factors: number of N(0, 1) factors (n + 1: the starting matrix is one).
        example_log10_abs: log10 |entries| of the first trial's product, shape (k, k): the printed run.
        example_sign: signs of those entries, shape (k, k).
        example_log10_frobenius: log10 ||M||_F of that first trial.
        mean_log10_frobenius: mean over trials of log10 ||M||_F.
        std_log10_frobenius: its standard deviation over trials.
        theory_lyapunov_log10: factors * lambda / ln 10, the Lyapunov exponent alone (24.47 for k=4, n=100).
        theory_mean_log10_frobenius: that plus the Frobenius offset (see :func:`frobenius_offset`).
        theory_std_log10: sqrt(factors * psi'(k/2) / 4) / ln 10, the exact spread of log10 ||M v||.
    """

    factors: int
    example_log10_abs: np.ndarray
    example_sign: np.ndarray
    example_log10_frobenius: float
    mean_log10_frobenius: float
    std_log10_frobenius: float
    theory_lyapunov_log10: float
    theory_mean_log10_frobenius: float
    theory_std_log10: float


@dataclass(frozen=True, repr=False)
class MatrixProducts(LabResult):
    """Result of :func:`matrix_products`; per-scale arrays have shape (S,) in the order of ``scales``.

    Attributes:
        k: matrix size.
        n: number of factors of the lecture's product (it starts from the identity).
        trials: independent products per scale.
        seed: seed of the torch generator.
        common_random_numbers: True: every scale reuses the same standard normal draws Z, so the product
            at scale s is exactly s**n times the product at scale 1 (computed that way, in log space).
        scales: the standard deviations of the entries.
        mean_log10_frobenius: mean over trials of log10 ||Y||_F after n factors.
        std_log10_frobenius: its spread (standard deviation over trials); the same for every scale.
        median_log10_abs_entry: median over trials and entries of log10 |Y_ij| (the "1e-6" of the lecture).
        example_log10_abs: the first trial's log10 |Y_ij|, shape (S, k, k).
        growth_rate: measured log-growth per product, mean over trials of ln ||Y e_1|| / n.
        growth_rate_stderr: its standard error (standard deviation / sqrt(trials)).
        lyapunov: theory: the top Lyapunov exponent ln s + (ln 2 + psi(k/2)) / 2 (Newman 1986).
        theory_mean_log10_frobenius: (n * lyapunov + frobenius_offset(k)) / ln 10.
        theory_std_log10: sqrt(n * psi'(k/2) / 4) / ln 10.
        critical_scale: the scale with lyapunov == 0.
        path_mean_log10: mean log10 ||Y_t||_F for t = 0..n, shape (S, n + 1).
        path_std_log10: its spread over trials, shape (n + 1,).
        book: the book's cell (:class:`BookProduct`), from the same draws with one more factor.
    """

    k: int
    n: int
    trials: int
    seed: int
    common_random_numbers: bool
    scales: np.ndarray
    mean_log10_frobenius: np.ndarray
    std_log10_frobenius: np.ndarray
    median_log10_abs_entry: np.ndarray
    example_log10_abs: np.ndarray
    growth_rate: np.ndarray
    growth_rate_stderr: np.ndarray
    lyapunov: np.ndarray
    theory_mean_log10_frobenius: np.ndarray
    theory_std_log10: float
    critical_scale: float
    path_mean_log10: np.ndarray
    path_std_log10: np.ndarray
    book: BookProduct

    def comparisons(self) -> list[Comparison]:
        """The book's cell, the lecture's scales 0.5 and 0.7, the critical scale and the growth rate.

        Agreement: a mean log10 Frobenius norm is within 4 standard errors of the theory's, plus 0.05 for
        the large-n approximation of :func:`frobenius_offset`: ``|mean - theory| < 4 sd / sqrt(trials) +
        0.05`` with the exact sd of :func:`log_norm_std`; the measured critical scale exp(-(growth - ln s))
        is within ``4 stderr + 1e-3`` (relative) of exp(-(ln 2 + psi(k/2)) / 2); every scale's growth rate
        is within 4 standard errors of the Lyapunov exponent.

        Examples:
            >>> [row.verdict for row in matrix_products((0.5, 0.7), trials=200).comparisons()]
            ['agrees', 'agrees', 'agrees', 'agrees', 'agrees']
        """
        b = self.book
        rows = [
            Comparison(
                f"book: log10 ||M||_F, N(0,1) {self.k}x{self.k}, {b.factors} factors",
                "entries ~1e22 (one run)",
                f"{b.mean_log10_frobenius:.2f} +- {b.std_log10_frobenius:.2f} "
                f"(first run {b.example_log10_frobenius:.1f})",
                f"{b.theory_lyapunov_log10:.2f} (lambda only); "
                f"{b.theory_mean_log10_frobenius:.2f} +- {b.theory_std_log10:.2f}",
                agrees=self._norm_agrees(
                    b.mean_log10_frobenius, b.theory_mean_log10_frobenius, b.theory_std_log10
                ),
            )
        ]
        for scale, chapter in ((0.5, "~1e-6"), (0.7, "~1e9 - 1e10")):
            rows += self._scale_rows(scale, chapter)
        measured_critical = math.exp(-(self.growth_rate[0] - math.log(self.scales[0])))
        gap = abs(measured_critical / self.critical_scale - 1)
        rows.append(
            Comparison(
                "critical scale (growth 0)", "-", f"{measured_critical:.4f}", f"{self.critical_scale:.4f}",
                agrees=gap < 4 * self.growth_rate_stderr[0] + 1e-3,
            )
        )
        worst = np.max(np.abs(self.growth_rate - self.lyapunov) / np.maximum(self.growth_rate_stderr, 1e-12))
        rows.append(
            Comparison(
                "growth per product vs Lyapunov", "-", f"max |gap| = {worst:.1f} standard errors",
                "ln s + (ln 2 + psi(k/2))/2", agrees=bool(worst < 4),
            )
        )
        return rows

    def _norm_agrees(self, mean_log10: float, theory_log10: float, theory_sd_log10: float) -> bool:
        return bool(abs(mean_log10 - theory_log10) < 4 * theory_sd_log10 / math.sqrt(self.trials) + 0.05)

    def _scale_rows(self, scale: float, chapter: str) -> list[Comparison]:
        """The lecture's row for ``scale``, if the result ran it."""
        hits = np.flatnonzero(np.isclose(self.scales, scale))
        if not len(hits):
            return []
        i = hits[0]
        return [
            Comparison(
                f"scale {scale:g}: {self.n} products of {self.k}x{self.k}",
                chapter,
                f"entries ~{power10(self.median_log10_abs_entry[i])}, "
                f"||Y||_F ~{power10(self.mean_log10_frobenius[i])}",
                f"||Y||_F ~{power10(self.theory_mean_log10_frobenius[i])}",
                agrees=self._norm_agrees(
                    self.mean_log10_frobenius[i], self.theory_mean_log10_frobenius[i], self.theory_std_log10
                ),
            )
        ]


def frobenius_offset(k: int) -> float:
    """Return E[ln ||P||_F - ln ||P e_1||] for a long product P of Gaussian k x k matrices, in nats.

    A long product is nearly rank one, P ~ s_1 u v^T with v uniform on the sphere (rotation invariance),
    so the offset is E[-ln |v_1|] with v_1^2 ~ Beta(1/2, (k - 1)/2):

    .. math::
        \\tfrac12\\,(\\psi(k/2) - \\psi(1/2))

    Examples:
        >>> round(frobenius_offset(4), 6)   # (1 + 2 ln 2) / 2
        1.193147
    """
    return 0.5 * float(scipy.special.digamma(k / 2) - scipy.special.digamma(0.5))


def log_norm_std(k: int, n: int) -> float:
    """Return the exact standard deviation of ln ||P v|| for n Gaussian k x k factors and a unit vector v.

    Each factor multiplies ||P v|| by an independent scale * chi_k variable (Cohen & Newman 1984),
    so ln ||P v|| is a sum of n i.i.d. terms of variance psi'(k/2) / 4:

    .. math::
        \\operatorname{sd} = \\sqrt{n\\,\\psi'(k/2)/4}

    Examples:
        >>> round(log_norm_std(4, 101) / math.log(10), 3)   # the issue's "+- 1.7"
        1.753
    """
    return math.sqrt(n * float(scipy.special.polygamma(1, k / 2)) / 4.0)


def matrix_products(
    scales: Iterable[float] | float = CHAPTER_SCALES,
    k: int = 4,
    n: int = 100,
    *,
    trials: int = 2000,
    seed: int = 0,
) -> MatrixProducts:
    """Multiply ``n`` random k x k matrices with N(0, scale**2) entries, ``trials`` products at once.

    The top Lyapunov exponent of such products is (Newman 1986):

    .. math::
        \\lambda(s) = \\ln s + \\tfrac12\\left(\\ln 2 + \\psi(k/2)\\right), \\qquad
        \\mathbb{E}\\ln\\|Y_n e_1\\| = n\\,\\lambda(s)

    Every step renormalizes the products and carries the logarithm of the scale in float64, so no
    product overflows or flushes to zero whatever ``n``. One run of ``n + 1`` factors at scale 1 serves
    every scale (common random numbers, exact: scale s multiplies the product by s**n) and the book's cell.

    Args:
        scales: standard deviations of the entries (> 0); the default sweeps through the critical 0.572.
        k: matrix size (the chapter: 4).
        n: factors of the lecture's product (the chapter: 100).
        trials: products per scale.
        seed: seed of the torch generator.

    Raises:
        InvalidArgumentError: a scale <= 0, or k, n, trials < 1.

    Examples:
        >>> r = matrix_products((0.5, 0.7), trials=200)
        >>> [round(float(x)) for x in r.median_log10_abs_entry]   # typical entries; lecture: ~1e-6
        [-6, 8]
        >>> [round(float(x)) for x in r.mean_log10_frobenius]     # norms; lecture: ~1e9 - 1e10 at 0.7
        [-5, 9]
    """
    scale_values = np.asarray(scales_tuple("scales", scales), dtype=np.float64)
    k = check_int_at_least("k", k, 1)
    n = check_int_at_least("n", n, 1)
    trials = check_int_at_least("trials", trials, 1)
    seed = check_seed("seed", seed)
    # the paths (trials, n + 2) twice, ~6 (trials, k, k) products alive in a step, the per-scale outputs
    need = 8.0 * trials * (2 * (n + 2) + 6 * k * k) + 16.0 * scale_values.size * (n + 1 + k * k)
    check_memory(f"trials={trials}, k={k}, n={n}", need, "pass fewer trials, a smaller k or a smaller n")
    gen = torch.Generator().manual_seed(seed)
    log_fro, log_col, kept = _unit_scale_paths(k, n + 1, trials, gen)
    shift = np.log(scale_values) / _LN10  # log10 s per factor
    lam = _lyapunov(k, scale_values)
    steps = np.arange(n + 1)
    rel, log_scale = kept[n]
    entries = np.log10(np.abs(rel)) + log_scale[:, None, None] / _LN10  # (trials, k, k)
    ones = np.ones(len(scale_values))
    return MatrixProducts(
        k=k,
        n=n,
        trials=trials,
        seed=int(seed),
        common_random_numbers=True,
        scales=scale_values,
        mean_log10_frobenius=log_fro[:, n].mean() / _LN10 + n * shift,
        std_log10_frobenius=ones * _std(log_fro[:, n]) / _LN10,
        median_log10_abs_entry=np.median(entries) + n * shift,
        example_log10_abs=entries[0][None] + n * shift[:, None, None],
        growth_rate=log_col[:, n].mean() / n + np.log(scale_values),
        growth_rate_stderr=ones * _std(log_col[:, n]) / n / math.sqrt(trials),
        lyapunov=lam,
        theory_mean_log10_frobenius=(n * lam + frobenius_offset(k)) / _LN10,
        theory_std_log10=log_norm_std(k, n) / _LN10,
        critical_scale=float(math.exp(-_lyapunov(k, np.array([1.0]))[0])),
        path_mean_log10=log_fro[:, : n + 1].mean(axis=0)[None] / _LN10 + steps[None] * shift[:, None],
        path_std_log10=log_fro[:, : n + 1].std(axis=0) / _LN10,
        book=_book(k, n + 1, log_fro, kept),
    )


def _unit_scale_paths(
    k: int, factors: int, trials: int, gen: torch.Generator
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run Y_t = W_t Y_{t-1}, Y_0 = I, W ~ N(0, 1), renormalized every step (log scale in float64).

    Returns ln ||Y_t||_F and ln ||Y_t e_1|| for t = 0..factors (each (trials, factors + 1)), and
    {t: (Y_t / ||Y_t||_F, ln ||Y_t||_F)} for the last two steps.
    """
    y = torch.eye(k, dtype=torch.float64).expand(trials, k, k).clone()  # (trials, k, k)
    log_scale = torch.zeros(trials, dtype=torch.float64)
    log_fro = torch.empty(trials, factors + 1, dtype=torch.float64)
    log_col = torch.empty(trials, factors + 1, dtype=torch.float64)
    kept = {}
    for t in range(factors + 1):
        if t:
            y = torch.randn(trials, k, k, generator=gen, dtype=torch.float64) @ y
        norm = torch.linalg.matrix_norm(y)  # Frobenius, (trials,)
        y = y / norm[:, None, None]
        log_scale = log_scale + norm.log()
        log_fro[:, t] = log_scale
        log_col[:, t] = log_scale + torch.linalg.vector_norm(y[:, :, 0], dim=1).log()
        if t >= factors - 1:
            kept[t] = (y.numpy().copy(), log_scale.numpy().copy())
    return log_fro.numpy(), log_col.numpy(), kept


def _book(k: int, factors: int, log_fro: np.ndarray, kept: dict) -> BookProduct:
    lam = _lyapunov(k, np.array([1.0]))[0]
    rel, log_scale = kept[factors]
    return BookProduct(
        factors=factors,
        example_log10_abs=np.log10(np.abs(rel[0])) + log_scale[0] / _LN10,
        example_sign=np.sign(rel[0]),
        example_log10_frobenius=float(log_fro[0, factors] / _LN10),
        mean_log10_frobenius=float(log_fro[:, factors].mean() / _LN10),
        std_log10_frobenius=_std(log_fro[:, factors]) / _LN10,
        theory_lyapunov_log10=float(factors * lam / _LN10),
        theory_mean_log10_frobenius=float((factors * lam + frobenius_offset(k)) / _LN10),
        theory_std_log10=log_norm_std(k, factors) / _LN10,
    )


def _std(values: np.ndarray) -> float:
    """Sample standard deviation (0 for a single value)."""
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def _lyapunov(k: int, scales: np.ndarray) -> np.ndarray:
    from numstab import theory  # pure numpy/scipy

    return np.array([theory.lyapunov_exponent(k, float(s)) for s in scales], dtype=np.float64)
