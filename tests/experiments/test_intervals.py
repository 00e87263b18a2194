"""The crossed seeds x episodes t intervals against grids whose answer is worked out by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from lerobot_policy_act_smooth.experiments.statistics import (
    Estimate,
    difference_interval,
    mean_interval,
    non_inferior,
    verdict,
)


def test_constant_values_have_a_zero_width_interval():
    est = mean_interval(np.full((3, 10), 2.5))
    assert (est.mean, est.low, est.high) == (2.5, 2.5, 2.5)


def test_seed_dominated_two_by_two_by_hand():
    # rows 1.5, 4.5 -> var 4.5, /S = 2.25; columns 2, 4 -> var 2, /E = 1; residuals +-0.5 ->
    # mean square 1, /(S E) = 0.25. V = 2.25 + 1 - 0.25 = 3; the seed term is 3/4 of it, so
    # df = S - 1 = 1 and the half width is t(0.975, 1) sqrt(3) = 12.7062 * 1.7321.
    est = mean_interval([[1.0, 2.0], [3.0, 6.0]])
    half = 12.706204736174707 * math.sqrt(3.0)
    assert est.mean == 3.0 and est.df == 1.0
    assert est.low == pytest.approx(3.0 - half, rel=1e-12) and est.high == pytest.approx(3.0 + half, rel=1e-12)


def test_episode_dominated_two_by_two_by_hand():
    # rows 3, 4 -> A = 0.5 / 2 = 0.25; columns 1.5, 5.5 -> B = 8 / 2 = 4; residuals 0. V = 4.25,
    # seeds carry 6%: Satterthwaite df = 4.25^2 / (0.25^2 / 1 + 4^2 / 1) = 18.0625 / 16.0625.
    est = mean_interval([[1.0, 5.0], [2.0, 6.0]])
    df = 18.0625 / 16.0625
    assert est.df == pytest.approx(df, rel=1e-12)
    assert est.high - est.mean == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(4.25), rel=1e-12)


def test_one_seed_covers_episodes_only_and_says_so():
    est = mean_interval([[0.0, 1.0, 2.0, 3.0]])  # var 5/3, /4; df 3
    assert not est.seeds_measured and est.df == 3.0
    assert est.high - est.mean == pytest.approx(stats.t.ppf(0.975, 3) * math.sqrt(5 / 3 / 4), rel=1e-12)


def test_paired_difference_removes_the_episode_spread():
    rng = np.random.default_rng(0)
    hardness = rng.normal(0.0, 10.0, size=20)  # episodes differ a lot
    baseline = hardness[None, :] + np.array([[0.0], [0.03], [-0.02]])
    variant = baseline - 0.5 + np.array([[0.01], [-0.01], [0.005]])  # about 0.5 better on every episode
    diff = difference_interval(variant, baseline)
    assert diff.mean == pytest.approx(-0.5 + 0.005 / 3)
    assert diff.high < 0 and verdict(diff, lower_is_better=True) == "better"
    assert verdict(diff, lower_is_better=False) == "worse"
    # Unpaired, each interval carries the episodes' spread (sd 10 over 20 episodes: a standard error
    # of about 2.2), so the two overlap widely and comparing them would call this not distinguishable.
    a, b = mean_interval(variant), mean_interval(baseline)
    episode_se = np.std(hardness, ddof=1) / np.sqrt(20)
    assert 1.5 * episode_se < a.high - a.mean < 3.0 * episode_se
    assert a.low < b.mean < a.high and b.low < a.mean < b.high


def test_direction_of_a_difference_is_variant_minus_baseline():
    a = np.array([[2.0, 3.0, 4.0], [2.2, 3.1, 4.3]])
    b = a - 1.0
    assert difference_interval(a, b).mean == pytest.approx(1.0)
    assert difference_interval(b, a).mean == pytest.approx(-1.0)


def test_shared_checkpoints_pair_seeds_too():
    # Seed effects (sd 3) shared by variant and baseline: paired by seed the interval is the
    # cell-wise difference's (tight); with independent seeds it must carry both seed spreads.
    rng = np.random.default_rng(4)
    base = rng.normal(0, 3.0, (3, 1)) + rng.normal(0, 1.0, (1, 12)) + rng.normal(0, 0.05, (3, 12))
    variant = base - 0.1 + rng.normal(0, 0.02, (3, 12))
    paired = difference_interval(variant, base, paired_seeds=True)
    unpaired = difference_interval(variant, base)
    assert paired.high < 0 and verdict(paired, True) == "better"
    assert unpaired.high - unpaired.low > 20 * (paired.high - paired.low)
    assert verdict(unpaired, True) == "not distinguishable"
    # by hand: the cell-wise difference grid's interval
    assert paired == mean_interval(variant - base)
    with pytest.raises(ValueError, match="same seeds"):
        difference_interval(variant[:2], base, paired_seeds=True)


def test_non_finite_cells_drop_their_episode_from_both_grids():
    a = np.array([[1.0, 2.0, math.nan, 4.0], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[0.0, 1.0, 50.0, 3.0], [0.0, 1.0, 50.0, 3.0]])
    d = difference_interval(a, b)
    assert d.mean == pytest.approx(1.0)  # episode 2 left out of both, not just of a
    assert mean_interval(a).mean == pytest.approx(7.0 / 3.0)
    with pytest.raises(ValueError, match="same episodes"):
        difference_interval(a, b[:, :3])
    with pytest.raises(ValueError, match="non-empty"):
        mean_interval(np.zeros((0, 3)))


def test_verdict_reads_the_interval_side():
    assert verdict(Estimate(-1.0, -2.0, -0.1), lower_is_better=True) == "better"
    assert verdict(Estimate(1.0, 0.1, 2.0), lower_is_better=True) == "worse"
    assert verdict(Estimate(0.2, -0.1, 0.5), lower_is_better=True) == "not distinguishable"
    assert verdict(Estimate(0.2, 0.1, 0.5), lower_is_better=False) == "better"  # success rate up
    assert verdict(Estimate(math.nan, math.nan, math.nan), lower_is_better=True) == "not distinguishable"


def test_non_inferiority_needs_the_whole_interval_inside_the_margin():
    # MAE, lower is better, margin +0.25 deg
    assert non_inferior(Estimate(0.05, -0.10, 0.18), 0.25, lower_is_better=True)
    assert not non_inferior(Estimate(0.05, -0.50, 0.60), 0.25, lower_is_better=True)  # wide: not shown
    assert not non_inferior(Estimate(0.30, 0.20, 0.40), 0.25, lower_is_better=True)
    # success, higher is better, margin -0.05
    assert non_inferior(Estimate(0.02, -0.04, 0.10), -0.05, lower_is_better=False)
    assert not non_inferior(Estimate(0.02, -0.07, 0.10), -0.05, lower_is_better=False)
    assert not non_inferior(Estimate(math.nan, math.nan, math.nan), 0.25, lower_is_better=True)
    with pytest.raises(ValueError, match="must be > 0"):
        non_inferior(Estimate(0, 0, 0), -0.25, lower_is_better=True)
    with pytest.raises(ValueError, match="must be < 0"):
        non_inferior(Estimate(0, 0, 0), 0.05, lower_is_better=False)
