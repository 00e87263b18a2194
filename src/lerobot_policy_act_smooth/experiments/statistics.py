"""Intervals for the results table: a crossed seeds x episodes design, t intervals with
Satterthwaite degrees of freedom (docs/statistics.md says why this procedure and what it covers).

A variant's figure is the mean of a metric over its training seeds and the evaluation episodes:
`values` is a [S, E] array, row s the per-episode values of the policy trained with seed s, on
the same E episodes for every seed. Seeds (training randomness) and episodes (which scenes were
drawn) are both random, and they are crossed: every seed sees every episode, so an episode that
is hard is hard for every seed. The model is

    x[s, e] = mu + seed[s] + episode[e] + residual[s, e]

and the variance of the grand mean is var_seed / S + var_episode / E + var_residual / (S E). From
the row means r, the column means c and the residual mean square R of the additive fit,

    V = var(r) / S + var(c) / E - R / (S E)

is unbiased for it (E[var(r)] = var_seed + var_res / E, E[var(c)] = var_episode + var_res / S).
The interval is mean +- t(df) sqrt(V). df: where the seed terms carry at least half of V, the
seed terms' own (S - 1 for one variant); otherwise Satterthwaite's approximation over all the
mean squares. (Satterthwaite alone covers 92-93% with 3 seeds when seeds dominate, because its df
are estimated from the same noisy seed term; the percentile bootstrap this replaces covered
about 80%. tests/experiments/test_interval_coverage.py measures the coverage.)

A difference between two variants is paired on episodes (both were evaluated on the same
episodes), and on seeds too where the two share checkpoints (an evaluation-only stage such as
blending replays the baseline's own checkpoints; a fine-tune continues each seed's baseline):
then it is the interval of the cell-wise difference grid. Independently trained variants have
independent seeds, and

    V = var(r_a) / S_a + var(r_b) / S_b + var(c_a - c_b) / E - R_a / (S_a E) - R_b / (S_b E).

V is floored at its largest positive term (a negative V estimate means that term's noise) so an
interval never collapses below what one of its sources shows. With one seed, seed variance cannot
be estimated: the interval covers episodes only, and :attr:`Estimate.seeds_measured` says so.

Non-finite cells (a NaN spike of an episode without boundaries) drop their whole episode column
(from both grids of a difference), so every seed is averaged over the same episodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval, in the metric's unit."""

    mean: float
    low: float
    high: float
    df: float = math.nan  # degrees of freedom of the t quantile
    seeds_measured: bool = True  # False: one seed, the interval covers episodes only

    def excludes(self, value: float) -> bool:
        return self.low > value or self.high < value


def _as_grid(values) -> np.ndarray:
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim == 1:
        grid = grid[None, :]
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"values must be a non-empty [seeds, episodes] array, got shape {grid.shape}")
    return grid


def _finite_columns(*grids: np.ndarray) -> list[np.ndarray]:
    keep = np.logical_and.reduce([np.isfinite(g).all(axis=0) for g in grids])
    return [g[:, keep] for g in grids]


Term = tuple[float, int, float, bool]  # (coefficient x mean square, its df, sign, is a seed term)


def _residual_term(grid: np.ndarray) -> list[Term]:
    s, e = grid.shape
    if s < 2 or e < 2:
        return []
    resid = grid - grid.mean(axis=1)[:, None] - grid.mean(axis=0)[None, :] + grid.mean()
    return [(float((resid**2).sum()) / ((s - 1) * (e - 1)) / (s * e), (s - 1) * (e - 1), -1.0, False)]


def _seed_term(grid: np.ndarray) -> list[Term]:
    s = grid.shape[0]
    return [(float(np.var(grid.mean(axis=1), ddof=1)) / s, s - 1, 1.0, True)] if s > 1 else []


def _episode_term(column_means: np.ndarray) -> list[Term]:
    e = column_means.shape[0]
    return [(float(np.var(column_means, ddof=1)) / e, e - 1, 1.0, False)] if e > 1 else []


def _satterthwaite(variance: float, terms: list[Term]) -> float:
    denominator = sum(value**2 / df for value, df, *_ in terms)
    return variance**2 / denominator if denominator > 0 else math.inf


def _t_interval(mean: float, terms: list[Term], confidence: float, seeds_measured: bool) -> Estimate:
    if not terms:
        return Estimate(mean, math.nan, math.nan, math.nan, seeds_measured)
    largest_source = max((value for value, _, sign, _ in terms if sign > 0), default=0.0)
    variance = max(sum(sign * value for value, _, sign, _ in terms), largest_source)
    if variance == 0.0:
        return Estimate(mean, mean, mean, math.inf, seeds_measured)
    seed_terms = [t for t in terms if t[3]]
    seed_share = sum(t[0] for t in seed_terms) / variance
    # Satterthwaite's df is itself estimated, and with 2-4 seed degrees of freedom it overstates
    # them whenever the seed term happens to come out small: where the seeds carry at least half
    # the variance, the df are the seed terms' own (coverage measured in test_interval_coverage.py).
    df = _satterthwaite(sum(t[0] for t in seed_terms), seed_terms) if seed_share >= 0.5 else _satterthwaite(variance, terms)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(variance)
    return Estimate(mean, mean - half, mean + half, df, seeds_measured)


def mean_interval(values, confidence: float = CONFIDENCE) -> Estimate:
    """Mean of a [S, E] (seeds x episodes) array with its crossed-design t interval."""
    (grid,) = _finite_columns(_as_grid(values))
    if grid.shape[1] == 0:
        return Estimate(math.nan, math.nan, math.nan)
    terms = _seed_term(grid) + _episode_term(grid.mean(axis=0)) + _residual_term(grid)
    return _t_interval(float(grid.mean()), terms, confidence, seeds_measured=grid.shape[0] > 1)


def difference_interval(values, baseline, paired_seeds: bool = False, confidence: float = CONFIDENCE) -> Estimate:
    """mean(values) - mean(baseline), both [S, E] over the same E episodes.

    paired_seeds: row s of both comes from the same checkpoint (an evaluation-only stage on the
    baseline's checkpoints, or a fine-tune of seed s's baseline): the interval of the cell-wise
    difference. Otherwise the seeds are independent (counts may differ) and only episodes pair."""
    a, b = _as_grid(values), _as_grid(baseline)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a paired difference needs the same episodes: {a.shape[1]} vs {b.shape[1]} columns")
    if paired_seeds and a.shape[0] != b.shape[0]:
        raise ValueError(f"seeds paired by checkpoint need the same seeds: {a.shape[0]} vs {b.shape[0]} rows")
    a, b = _finite_columns(a, b)
    if a.shape[1] == 0:
        return Estimate(math.nan, math.nan, math.nan)
    if paired_seeds:
        return mean_interval(a - b, confidence)
    terms = (_seed_term(a) + _seed_term(b) + _episode_term(a.mean(axis=0) - b.mean(axis=0))
             + _residual_term(a) + _residual_term(b))
    return _t_interval(float(a.mean() - b.mean()), terms, confidence,
                       seeds_measured=a.shape[0] > 1 and b.shape[0] > 1)


def verdict(difference: Estimate, lower_is_better: bool) -> str:
    """"better", "worse" or "not distinguishable": whether the interval of (variant - baseline)
    excludes 0, and on which side."""
    if not (math.isfinite(difference.low) and math.isfinite(difference.high)) or not difference.excludes(0.0):
        return "not distinguishable"
    below = difference.high < 0.0
    return "better" if below == lower_is_better else "worse"


def non_inferior(difference: Estimate, margin: float, lower_is_better: bool) -> bool:
    """Whether (variant - baseline) is shown to be no worse than ``margin``: the whole interval lies
    on the good side of the margin. ``margin`` is in the metric's unit and points the bad way: > 0
    for a metric where lower is better (MAE +0.25 deg), < 0 where higher is better (success -0.05).
    An interval that is merely wide does not pass."""
    if lower_is_better and not margin > 0:
        raise ValueError(f"a non-inferiority margin for a lower-is-better metric must be > 0, got {margin}")
    if not lower_is_better and not margin < 0:
        raise ValueError(f"a non-inferiority margin for a higher-is-better metric must be < 0, got {margin}")
    if not (math.isfinite(difference.low) and math.isfinite(difference.high)):
        return False
    return difference.high < margin if lower_is_better else difference.low > margin
