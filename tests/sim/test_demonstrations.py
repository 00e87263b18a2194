"""The human-like demonstrator and the recorded demonstrations."""

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import (
    acceleration_variance,
    mean_abs_velocity,
    velocity_variance,
)
from lerobot_policy_act_smooth.sim.dataset import record_demonstration, replay_actions
from lerobot_policy_act_smooth.sim.demonstrator import min_jerk
from lerobot_policy_act_smooth.sim.env import SO101JointEnv

# Real SO-101 teleoperation at 30 fps (research plan): U_a 0.09-0.17 deg^2/frame^4,
# U_v 1.1-1.8 deg^2/frame^2, mu_v 0.30-0.37 deg/frame.
REAL = {"U_a": (0.09, 0.17), "U_v": (1.1, 1.8), "mu_v": (0.30, 0.37)}
FACTOR = 1.5  # "same order": within 1.5x of the real range's ends, averaged over episodes


@pytest.fixture(scope="module")
def env():
    env = SO101JointEnv(max_steps=700)
    yield env
    env.close()


def test_min_jerk_profile():
    tau = np.linspace(0, 1, 101)
    s = min_jerk(tau)
    assert s[0] == 0 and s[-1] == 1 and np.all(np.diff(s) >= 0)
    v = np.gradient(s, tau)
    assert abs(v[0]) < 1e-3 and abs(v[-1]) < 1e-3 and abs(v[50] - 1.875) < 1e-2


def test_same_seed_same_demonstration(env):
    a = record_demonstration(env, 1234)
    b = record_demonstration(env, 1234)
    assert a.success and len(a.actions) > 200
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.env_states, b.env_states)


def test_follower_follows_the_leader_with_bounded_lag(sim_episodes):
    for episode in sim_episodes:
        action, state = (
            episode["action"][:, :5],
            episode["state"][:, :5],
        )  # arm joints; the jaw stalls on the cube
        lags = range(0, 9)
        residual = [np.sqrt(np.mean((state[k:] - action[: len(action) - k]) ** 2)) for k in lags]
        best = int(np.argmin(residual))
        assert 1 <= best <= 6, f"state lags action by {best} frames"
        # Bounded error: the follower stays within a few degrees (gravity sag, servo lag).
        assert residual[best] < 3.0
        assert np.max(np.abs(state - action)) < 15.0


def test_replaying_recorded_actions_reaches_the_goal(sim_dataset, sim_episodes, env):
    _, summary = sim_dataset
    episodes = sim_episodes
    successes = 0
    for record, episode in zip(summary["episode_records"], episodes, strict=True):
        replay = replay_actions(env, record["episode_seed"], episode["action"])
        successes += replay.success
        # Open-loop replay reproduces the recorded follower exactly (same physics, same noise).
        np.testing.assert_array_equal(replay.states, episode["state"])
    assert successes >= 0.9 * len(episodes)


def test_recorded_actions_are_human_like(sim_episodes):
    episodes = sim_episodes
    measured = {
        "U_a": np.mean([acceleration_variance(e["action"]) for e in episodes]),
        "U_v": np.mean([velocity_variance(e["action"]) for e in episodes]),
        "mu_v": np.mean([mean_abs_velocity(e["action"]) for e in episodes]),
    }
    for name, (low, high) in REAL.items():
        assert low / FACTOR <= measured[name] <= high * FACTOR, f"{name} = {measured[name]:.3f}"
    lengths = [len(e["action"]) for e in episodes]
    assert all(240 <= n <= 480 for n in lengths), lengths  # 8-16 s like teleop pick-and-place
