"""The closed-loop environment: spaces, determinism, the follower's tracking, cameras."""

import numpy as np
import pytest

from lerobot_policy_act_smooth.sim.env import SO101JointEnv, resolve_cameras


@pytest.fixture(scope="module")
def env():
    env = SO101JointEnv(max_steps=50)
    yield env
    env.close()


def test_observation_and_action_spec(env):
    obs, info = env.reset(seed=3)
    assert set(obs) == {"observation.state", "observation.environment_state"}
    assert obs["observation.state"].shape == (6,) and obs["observation.state"].dtype == np.float32
    assert obs["observation.environment_state"].shape == (10,)
    assert env.action_space.shape == (6,) and env.fps == 30
    assert info["is_success"] is False
    cube, goal = obs["observation.environment_state"][:3], obs["observation.environment_state"][7:]
    assert 0.1 < cube[0] < 0.35 and abs(cube[2] - 0.02) < 1e-3  # on the table, in reach
    assert np.linalg.norm(cube[:2] - goal[:2]) >= 0.08 - 1e-6
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(6, np.nan, dtype=np.float32))


def test_reset_and_steps_are_deterministic_per_seed(env):
    def rollout(seed):
        obs, _ = env.reset(seed=seed)
        target = obs["observation.state"] + np.asarray([5, -5, 5, -5, 5, 10], dtype=np.float32)
        states = [obs["observation.state"]]
        for _ in range(10):
            obs, *_ = env.step(target)
            states.append(obs["observation.state"])
        return np.stack(states), obs["observation.environment_state"]

    a, env_a = rollout(5)
    b, env_b = rollout(5)
    c, env_c = rollout(6)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(env_a, env_b)
    assert not np.array_equal(env_a, env_c)  # another seed, another cube/goal


def test_follower_reaches_a_held_target_with_servo_noise(env):
    obs, _ = env.reset(seed=1)
    target = obs["observation.state"] + np.asarray([10, -8, 8, -6, 15, 20], dtype=np.float32)
    errors = []
    for _ in range(45):
        obs, *_ = env.step(target)
        errors.append(np.abs(obs["observation.state"] - target))
    errors = np.asarray(errors)
    assert errors[0].max() > 3.0  # it lags at first
    # After 1.5 s it holds the target up to gravity sag (<~2 deg) and sensor noise.
    assert errors[-1].max() < 2.5
    resolution = 360.0 / 4096
    steps = obs["observation.state"] / resolution
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)  # quantised like an encoder


def test_truncation_at_max_steps():
    env = SO101JointEnv(max_steps=3)
    obs, _ = env.reset(seed=0)
    flags = [env.step(obs["observation.state"])[3] for _ in range(3)]
    env.close()
    assert flags == [False, False, True]


def test_tiny_cameras_render():
    env = SO101JointEnv(cameras={"top": (24, 32), "wrist": (32, 24)}, max_steps=5)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(obs["observation.state"])
    env.close()
    top, wrist = obs["observation.images.top"], obs["observation.images.wrist"]
    assert top.shape == (24, 32, 3) and wrist.shape == (32, 24, 3) and top.dtype == np.uint8
    assert top.std() > 5  # an actual scene, not a blank frame


@pytest.mark.parametrize(
    "request_, message",
    [
        ({"front": (24, 32)}, "unknown camera"),
        ({"top": (4, 32)}, "out of range"),
        ({"top": (24, 100000)}, "out of range"),
    ],
)
def test_bad_camera_requests(request_, message):
    with pytest.raises(ValueError, match=message):
        resolve_cameras(request_)


def test_default_camera_sizes_are_the_plans():
    assert resolve_cameras(["top", "wrist"]) == {"top": (480, 640), "wrist": (640, 480)}
