"""Seeded train / validation index splits of the write-ups (not tied to one dataset's layout).

- :func:`split_indices`: a seeded 8:2 shuffle split (002's DACON inpainting, :mod:`labkit.data.inpainting`);
- :func:`kfold_split`: 001's 10-fold split of the flare photos (:mod:`labkit.data.flare`);
- :func:`half_split`: 004's split of GoPro's test set into validation / test halves (:mod:`labkit.data.gopro`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_indices", "kfold_split", "half_split"]


def split_indices(n: int, val_fraction: float = 0.2, *, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """A seeded shuffle of ``range(n)`` cut into (train, val) index arrays; 0.2 = the 8:2 split.

    Raises ValueError: ``n < 2`` or ``val_fraction`` outside (0, 1).
    """
    if n < 2:
        raise ValueError(f"split_indices: need at least 2 items, got {n}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_indices: val_fraction must be in (0, 1), got {val_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(n * val_fraction))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def kfold_split(n: int, folds: int = 10, valid_fold: int = 0, *, seed: int = 42) -> tuple[list[int], list[int]]:
    """001's k-fold split of ``n`` images: ``(train_indices, valid_indices)`` for one fold.

    The indices are shuffled with ``seed`` (numpy ``default_rng``) and dealt into ``folds``
    nearly equal folds (sizes differ by at most one, like scikit-learn's ``KFold(shuffle=True)``);
    fold ``valid_fold`` is the validation set. Split *images* before cutting patches, so that no
    photo has patches on both sides. 001 used 10 folds, fold 0 for validation.

    Raises:
        ValueError: ``folds < 2``, ``folds > n``, or ``valid_fold`` outside ``[0, folds)``.
    """
    n, folds, valid_fold = int(n), int(folds), int(valid_fold)
    if folds < 2 or folds > n:
        raise ValueError(f"folds must be in [2, n={n}], got {folds}")
    if not 0 <= valid_fold < folds:
        raise ValueError(f"valid_fold must be in [0, {folds}), got {valid_fold}")
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    valid = sorted(int(i) for i in parts[valid_fold])
    train = sorted(int(i) for k, part in enumerate(parts) if k != valid_fold for i in part)
    return train, valid


def half_split(n: int) -> tuple[list[int], list[int]]:
    """Write-up 004's split of GoPro's test set: the first half (rounded up) validation, the rest test.

    ``half_split(1111) -> (range 0..555 as a list of 556, 555 indices)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    k = (int(n) + 1) // 2
    return list(range(k)), list(range(k, int(n)))
