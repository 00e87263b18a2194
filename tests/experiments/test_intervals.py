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


# t quantiles with closed forms: df 1 is Cauchy, t = tan(pi (p - 1/2)); df 2: t = (2p - 1) / sqrt(2p (1 - p)).
T1 = math.tan(0.475 * math.pi)
T2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)


def test_episode_dominated_interval_with_residuals_by_hand():
    # rows 4, 5 -> var 1/2, /S: A = 1/4 (df 1); columns 0.5, 5, 8 -> var 28.5 / 2 = 14.25, /E: B = 4.75
    # (df 2); residuals 0, -0.5, 0.5 and 0, 0.5, -0.5 -> mean square 1 / 2, /(S E): R = 1/12 (df 2).
    # V = 1/4 + 4.75 - 1/12 = 59/12; the seeds carry 5%: Satterthwaite over all three mean squares.
    est = mean_interval([[0.0, 4.0, 8.0], [1.0, 6.0, 8.0]])
    variance = 59 / 12
    df = variance**2 / (0.25**2 / 1 + 4.75**2 / 2 + (1 / 12) ** 2 / 2)
    assert est.mean == 4.5 and est.seeds_measured is True
    assert est.df == pytest.approx(df, rel=1e-12)
    assert est.high - est.mean == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(variance), rel=1e-12)


def test_a_negative_variance_estimate_is_floored_at_its_largest_source():
    # rows 4, 4 -> A = 0 (df 1); columns 1, 4, 7 -> var 9, B = 3 (df 2); residuals -1, 0, 1 and 1, 0, -1
    # -> mean square 4 / 2 = 2, R = 2/6 = 1/3 (df 2). A + B - R = 8/3 is less than the episode term
    # alone, so V = 3; df = 3^2 / (0^2 / 1 + 3^2 / 2 + (1/3)^2 / 2).
    est = mean_interval([[0.0, 4.0, 8.0], [2.0, 4.0, 6.0]])
    df = 9.0 / (4.5 + 1 / 18)
    assert est.df == pytest.approx(df, rel=1e-12)
    assert est.high - est.mean == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(3.0), rel=1e-12)


def test_seeds_carrying_exactly_half_the_variance_use_their_own_df():
    # rows 1, 3 and columns 1, 3: A = B = 1, no residual; V = 2 and the seed share is exactly 1/2:
    # df = S - 1 = 1 (Satterthwaite would give 2^2 / (1 + 1) = 2).
    est = mean_interval([[0.0, 2.0], [2.0, 4.0]])
    assert est.df == 1.0
    assert est.high - est.mean == pytest.approx(T1 * math.sqrt(2.0), rel=1e-12)


def test_degenerate_grids():
    one = mean_interval([[2.0]])  # one cell: no spread to estimate
    assert one.mean == 2.0 and math.isnan(one.low) and math.isnan(one.high) and math.isnan(one.df)
    assert one.seeds_measured is False
    # one episode, two seeds: the seed term alone, var(1, 3) / 2 = 1 on 1 df
    est = mean_interval([[1.0], [3.0]])
    assert (est.mean, est.df, est.seeds_measured) == (2.0, 1.0, True)
    assert est.high == pytest.approx(2.0 + T1, rel=1e-12)
    # a 1-D array is one seed's episodes
    assert mean_interval([0.0, 1.0, 2.0, 3.0]) == mean_interval([[0.0, 1.0, 2.0, 3.0]])
    # no episode finite for every seed: no estimate
    nothing = [[math.nan, 1.0], [2.0, math.nan]]
    for none in (mean_interval(nothing), difference_interval(nothing[:1], nothing[1:])):
        assert math.isnan(none.mean) and math.isnan(none.low) and math.isnan(none.high)
    # constant values: zero width on infinite df, and one seed still says it measured no seeds
    flat = mean_interval(np.full((1, 4), 2.5))
    assert (flat.low, flat.high, flat.df, flat.seeds_measured) == (2.5, 2.5, math.inf, False)


def test_difference_on_one_episode_and_which_differences_measured_seeds():
    # one episode: the two seed terms only, var(1, 3) / 2 = 1 and var(0, 2) / 2 = 1: V = 2,
    # df = 2^2 / (1^2 / 1 + 1^2 / 1) = 2
    d = difference_interval([[1.0], [3.0]], [[0.0], [2.0]])
    assert d.mean == 1.0 and d.df == pytest.approx(2.0, rel=1e-12)
    assert d.high == pytest.approx(1.0 + T2 * math.sqrt(2.0), rel=1e-12)
    grid = np.array([[1.0, 2.0, 4.0], [2.0, 2.5, 3.0]])
    assert difference_interval(grid, grid[:1] + 1.0).seeds_measured is False  # the baseline has one seed
    assert difference_interval(grid[:1], grid).seeds_measured is False  # the variant has one seed
    assert difference_interval(grid, grid + 1.0).seeds_measured is True


def test_paired_difference_of_success_flags_by_hand():
    # Yes/no per episode; the cell-wise difference is [[0, 1, 0, 0], [1, 0, 0, 0]]: mean 1/4.
    # rows 1/4, 1/4 -> A = 0; columns 1/2, 1/2, 0, 0 -> var 1/12, B = 1/48 (df 3); residuals
    # -1/2, 1/2, 0, 0 and 1/2, -1/2, 0, 0 -> mean square 1/3, R = 1/24 (df 3). A + B - R < 0: V = B,
    # df = B^2 / (B^2 / 3 + R^2 / 3) = 3/5.
    variant = np.array([[True, True, False, True], [True, False, True, True]])
    baseline = np.array([[True, False, False, True], [False, False, True, True]])
    d = difference_interval(variant, baseline, paired_seeds=True)
    assert d.mean == 0.25 and d.df == pytest.approx(0.6, rel=1e-12)
    assert d.high - d.mean == pytest.approx(stats.t.ppf(0.975, 0.6) / math.sqrt(48), rel=1e-12)


def test_paired_difference_uses_the_confidence_asked_for_and_names_the_row_counts():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, (3, 6))
    variant = base + rng.normal(0, 0.1, (3, 6))
    at_90 = difference_interval(variant, base, paired_seeds=True, confidence=0.9)
    assert at_90 == mean_interval(variant - base, confidence=0.9)
    assert at_90.high - at_90.low < mean_interval(variant - base).high - mean_interval(variant - base).low
    with pytest.raises(ValueError, match="need the same seeds: 2 vs 3 rows"):
        difference_interval(variant[:2], base, paired_seeds=True)


def test_an_interval_that_reaches_zero_contains_it():
    # a difference of exactly 0 on every cell is not a finding, whichever way is better
    zero = difference_interval(np.ones((3, 4)), np.ones((3, 4)), paired_seeds=True)
    assert (zero.low, zero.high) == (0.0, 0.0)
    assert verdict(zero, lower_is_better=True) == verdict(zero, lower_is_better=False) == "not distinguishable"
    assert verdict(Estimate(0.5, 0.0, 1.0), lower_is_better=True) == "not distinguishable"
    assert verdict(Estimate(-0.5, -1.0, 0.0), lower_is_better=True) == "not distinguishable"
    # one bound undefined: no verdict, though the other bound excludes 0
    assert verdict(Estimate(1.0, 0.5, math.nan), lower_is_better=True) == "not distinguishable"


def test_non_inferiority_is_strict_at_the_margin_and_a_zero_margin_is_refused():
    assert not non_inferior(Estimate(0.1, 0.0, 0.25), 0.25, lower_is_better=True)  # reaches the margin
    assert not non_inferior(Estimate(0.0, -0.05, 0.1), -0.05, lower_is_better=False)
    assert not non_inferior(Estimate(0.0, math.nan, 0.1), 0.25, lower_is_better=True)  # a bound undefined
    with pytest.raises(ValueError, match="must be > 0, got 0.0"):
        non_inferior(Estimate(0, 0, 0), 0.0, lower_is_better=True)
    with pytest.raises(ValueError, match="must be < 0, got 0.0"):
        non_inferior(Estimate(0, 0, 0), 0.0, lower_is_better=False)
