"""The bootstrap intervals against cases whose answer is worked out by hand."""

import math

import numpy as np
import pytest

from lerobot_policy_act_smooth.experiments.statistics import Estimate, bootstrap_mean, paired_difference, verdict


def test_constant_values_have_a_zero_width_interval():
    est = bootstrap_mean(np.full((3, 10), 2.5))
    assert (est.mean, est.low, est.high) == (2.5, 2.5, 2.5)


def test_two_episodes_one_seed_matches_the_enumerated_bootstrap():
    # Resampling 2 episodes of values 0 and 1: the replicate mean is 0, 0.5 or 1 with
    # probabilities 1/4, 1/2, 1/4, so the 2.5th percentile is 0 and the 97.5th is 1.
    est = bootstrap_mean([[0.0, 1.0]], replicates=20000)
    assert est.mean == 0.5
    assert est.low == 0.0 and est.high == 1.0
    # at 40% confidence (30th..70th percentile) the interval is the middle value only
    narrow = bootstrap_mean([[0.0, 1.0]], confidence=0.4, replicates=20000)
    assert narrow.low == narrow.high == 0.5


def test_seeds_are_resampled_too():
    # Every episode agrees within a seed; the seeds disagree (0 vs 1): the interval must span
    # the seeds' disagreement, which an episode-only bootstrap would report as zero width.
    est = bootstrap_mean([[0.0] * 8, [1.0] * 8], replicates=20000)
    assert est.mean == 0.5 and est.low == 0.0 and est.high == 1.0


def test_paired_difference_removes_the_episode_spread():
    rng = np.random.default_rng(0)
    hardness = rng.normal(0.0, 10.0, size=20)  # episodes differ a lot
    baseline = hardness[None, :]
    variant = baseline - 0.5  # uniformly 0.5 better on every episode
    diff = paired_difference(variant, baseline)
    assert diff.mean == pytest.approx(-0.5)
    assert diff.low == pytest.approx(-0.5) and diff.high == pytest.approx(-0.5)
    assert verdict(diff, lower_is_better=True) == "better"
    assert verdict(diff, lower_is_better=False) == "worse"
    # the unpaired intervals overlap widely, so comparing them would call this not distinguishable
    a, b = bootstrap_mean(variant), bootstrap_mean(baseline)
    assert a.high > b.low


def test_paired_difference_with_seed_noise_and_nan_cells():
    base = np.array([[1.0, 2.0, math.nan, 4.0], [1.0, 2.0, 3.0, 4.0]])
    same = paired_difference(base, base)
    assert same.mean == pytest.approx(0.0)
    assert verdict(same, lower_is_better=True) == "not distinguishable"
    with pytest.raises(ValueError, match="same episodes"):
        paired_difference(base, base[:, :3])


def test_verdict_reads_the_interval_side():
    assert verdict(Estimate(-1.0, -2.0, -0.1), lower_is_better=True) == "better"
    assert verdict(Estimate(1.0, 0.1, 2.0), lower_is_better=True) == "worse"
    assert verdict(Estimate(0.2, -0.1, 0.5), lower_is_better=True) == "not distinguishable"
    assert verdict(Estimate(0.2, 0.1, 0.5), lower_is_better=False) == "better"  # success rate up
    assert verdict(Estimate(math.nan, math.nan, math.nan), lower_is_better=True) == "not distinguishable"


def test_same_seed_same_interval_and_bad_shape():
    values = np.random.default_rng(3).normal(size=(3, 12))
    assert bootstrap_mean(values, seed=7) == bootstrap_mean(values, seed=7)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_mean(np.zeros((0, 3)))
