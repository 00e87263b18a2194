"""The intervals earn their 95%: simulated seed x episode grids with a known mean, in the two
regimes a results table meets (training seeds dominant, episodes dominant), with 3 and 5 seeds.
Each interval must hold the true value in at least 93% of the simulated grids."""

import numpy as np
import pytest

from lerobot_policy_act_smooth.experiments.statistics import difference_interval, mean_interval

EPISODES = 12
SIMULATIONS = 2000  # standard error of a 95% coverage: 0.5 points
REGIMES = {"seeds dominant": (1.0, 0.3, 0.3), "episodes dominant": (0.1, 1.0, 0.3)}  # sd of seed, episode, residual


def _grid(rng, seeds, sd_seed, sd_episode_effect, sd_residual, episode_effect=None):
    episode = rng.normal(0, sd_episode_effect, EPISODES) if episode_effect is None else episode_effect
    return rng.normal(0, sd_seed, (seeds, 1)) + episode[None, :] + rng.normal(0, sd_residual, (seeds, EPISODES)), episode


@pytest.mark.parametrize("seeds", [3, 5])
@pytest.mark.parametrize("regime", list(REGIMES))
def test_coverage_of_means_and_differences(regime, seeds):
    sd_seed, sd_episode, sd_residual = REGIMES[regime]
    rng = np.random.default_rng(seeds * 100 + len(regime))
    held = {"mean": 0, "independent difference": 0, "paired difference": 0}
    for _ in range(SIMULATIONS):
        a, episode = _grid(rng, seeds, sd_seed, sd_episode, sd_residual)
        # an independently trained variant with the same true mean on the same (correlated) episodes
        b, _ = _grid(rng, seeds, sd_seed, sd_episode, sd_residual, episode + rng.normal(0, sd_episode / 2, EPISODES))
        # an evaluation of the same checkpoints (shared seed effects), no true difference
        c = a + rng.normal(0, 0.2, (seeds, 1)) + rng.normal(0, 0.2, (seeds, EPISODES))
        for name, est in (("mean", mean_interval(a)), ("independent difference", difference_interval(a, b)),
                          ("paired difference", difference_interval(c, a, paired_seeds=True))):
            held[name] += est.low <= 0.0 <= est.high
    coverage = {k: v / SIMULATIONS for k, v in held.items()}
    assert all(v >= 0.93 for v in coverage.values()), coverage
    assert all(v <= 0.995 for v in coverage.values()), coverage  # and not vacuously wide
