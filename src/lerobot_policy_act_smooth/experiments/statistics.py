"""Intervals for the results table: a two-level bootstrap over training seeds and episodes.

A variant's figure is the mean of a metric over its training seeds and the evaluation episodes:
`values` is a [S, E] array, row s the per-episode values of the policy trained with seed s on
the same E episodes. Both the seed (training randomness) and the episode (which scenes were
drawn) vary, so an interval resamples both: S seeds with replacement, then E episodes with
replacement, and takes the mean of the selected cells.

A difference between two variants is paired on episodes: every replicate draws one set of
episode indices for both variants (they were evaluated on the same episodes), and seeds
independently for each (their trainings are independent). Pairing removes the spread that
comes from some episodes being harder than others, which is most of it.

Intervals are percentile intervals (2.5th and 97.5th percentile of the replicates for 95%).
Non-finite cells (a NaN spike of an episode without boundaries) are left out of each mean.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
REPLICATES = 4000


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval, in the metric's unit."""

    mean: float
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return self.low > value or self.high < value


def _as_grid(values) -> np.ndarray:
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim == 1:
        grid = grid[None, :]
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"values must be a non-empty [seeds, episodes] array, got shape {grid.shape}")
    return grid


def _resampled_means(grid: np.ndarray, seed_rows: np.ndarray, episode_cols: np.ndarray) -> np.ndarray:
    """Means of grid[seed_rows[b]][:, episode_cols[b]] for every replicate b, NaN cells left out.
    seed_rows: [B, S] ints; episode_cols: [B, E] ints -> [B]."""
    cells = grid[seed_rows[:, :, None], episode_cols[:, None, :]]  # [B, S, E]
    with warnings.catch_warnings():  # a replicate of only NaN cells is NaN, and dropped later
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(cells.reshape(len(cells), -1), axis=1)


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean(values, confidence: float = CONFIDENCE, replicates: int = REPLICATES, seed: int = 0) -> Estimate:
    """Mean of a [S, E] (seeds x episodes) array with a two-level bootstrap interval."""
    grid = _as_grid(values)
    rng = np.random.default_rng(seed)
    s, e = grid.shape
    means = _resampled_means(grid, rng.integers(0, s, (replicates, s)), rng.integers(0, e, (replicates, e)))
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(grid)) if np.isfinite(grid).any() else math.nan
    return Estimate(mean, *_percentiles(means, confidence))


def paired_difference(values, baseline, confidence: float = CONFIDENCE, replicates: int = REPLICATES,
                      seed: int = 0) -> Estimate:
    """mean(values) - mean(baseline), both [S, E] over the same E episodes (seed counts may differ),
    with a bootstrap interval that draws episodes jointly and seeds separately."""
    a, b = _as_grid(values), _as_grid(baseline)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a paired difference needs the same episodes: {a.shape[1]} vs {b.shape[1]} columns")
    rng = np.random.default_rng(seed)
    e = a.shape[1]
    cols = rng.integers(0, e, (replicates, e))
    diff = (_resampled_means(a, rng.integers(0, a.shape[0], (replicates, a.shape[0])), cols)
            - _resampled_means(b, rng.integers(0, b.shape[0], (replicates, b.shape[0])), cols))
    with np.errstate(invalid="ignore"):
        mean = float(np.nanmean(a) - np.nanmean(b))
    return Estimate(mean, *_percentiles(diff, confidence))


def verdict(difference: Estimate, lower_is_better: bool) -> str:
    """"better", "worse" or "not distinguishable": whether the interval of (variant - baseline)
    excludes 0, and on which side."""
    if not (math.isfinite(difference.low) and math.isfinite(difference.high)) or not difference.excludes(0.0):
        return "not distinguishable"
    below = difference.high < 0.0
    return "better" if below == lower_is_better else "worse"
