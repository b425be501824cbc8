"""The real data of the training lab: scikit-learn's handwritten digits, split and standardized.

``sklearn.datasets.load_digits`` ships its 1797 8x8 images inside the package (no download). The split
is stratified and fixed by ``seed``; features are standardized with the *training* mean and standard
deviation (pixels that are constant in the training set keep scale 1), so the test set never leaks
into the preprocessing.

Examples:
    >>> from numstab.lab._digits import load
    >>> data = load(seed=0)
    >>> tuple(data.x_train.shape), tuple(data.x_test.shape), data.n_classes
    ((1437, 64), (360, 64), 10)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from numstab.errors import InvalidArgumentError, check_int_at_least

__all__ = ["Digits", "load", "batch_indices"]


@dataclass(frozen=True)
class Digits:
    """A fixed train/test split of the digits, standardized by the training statistics.

    Attributes:
        x_train: float32 features, shape (n_train, 64).
        y_train: int64 labels in 0..9, shape (n_train,).
        x_test: float32 features, shape (n_test, 64).
        y_test: int64 labels, shape (n_test,).
        seed: the seed of the split.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    seed: int

    @property
    def n_classes(self) -> int:
        """Number of classes (10)."""
        return 10

    @property
    def n_features(self) -> int:
        """Number of input features (64)."""
        return int(self.x_train.shape[1])


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


@functools.lru_cache(maxsize=8)
def load(*, test_fraction: float = 0.2, seed: int = 0) -> Digits:
    """Load the digits, split them (stratified, fixed by ``seed``) and standardize the features.

    Args:
        test_fraction: share of the 1797 images held out for testing, in (0, 1).
        seed: seed of the split (``sklearn.model_selection.train_test_split``'s ``random_state``).

    Examples:
        >>> d = load(seed=1)
        >>> round(float(d.x_train.mean()), 6), round(float(d.x_train[:, 20].std(unbiased=False)), 4)
        (0.0, 1.0)
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise InvalidArgumentError(
            f"test_fraction must be in (0, 1), got {test_fraction!r}: e.g. test_fraction=0.2"
        )
    from sklearn.model_selection import train_test_split

    x, y = _raw()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # pixels that never light up in training keep scale 1
    as_x = lambda a: torch.from_numpy(((a - mean) / std).astype(np.float32))  # noqa: E731
    return Digits(as_x(x_tr), torch.from_numpy(y_tr), as_x(x_te), torch.from_numpy(y_te), seed)


def batch_indices(n: int, batch_size: int, steps: int, *, generator: torch.Generator) -> torch.Tensor:
    """Return the minibatch of every step: shape (steps, batch_size), epochs of fresh permutations.

    Permutations of ``range(n)`` from ``generator`` are concatenated and cut into batches, so each
    epoch visits every training example once (a batch may straddle two epochs).

    Args:
        n: number of training examples.
        batch_size: examples per step, 1..n.
        steps: number of steps.
        generator: the torch generator that fixes the order.

    Examples:
        >>> idx = batch_indices(10, 5, 4, generator=torch.Generator().manual_seed(0))
        >>> tuple(idx.shape), sorted(idx[:2].flatten().tolist()) == list(range(10))
        ((4, 5), True)
    """
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("steps", steps, 1)
    if batch_size > n:
        raise InvalidArgumentError(f"batch_size must be <= {n} (the training set), got {batch_size}")
    epochs = -(-steps * batch_size // n)
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs)])
    return order[: steps * batch_size].view(steps, batch_size)
