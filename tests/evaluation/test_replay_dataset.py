"""Replay's view of a real LeRobotDataset: ground-truth actions by episode, observations as the
policy receives them (images float in [0, 1], channels first)."""

import numpy as np

from lerobot_policy_act_smooth.evaluation.replay import DatasetEpisodes, replay_episode
from replay_stand_ins import StandInPredictor
from tiny_dataset import JOINT_NAMES, synthetic_actions


def test_actions_and_camera_observations(tiny_camera_dataset_root):
    data = DatasetEpisodes("test/tiny_camera", tiny_camera_dataset_root)
    assert data.num_episodes == 2 and data.fps == 30 and data.length(1) == 60
    assert data.action_names == JOINT_NAMES
    # make_tiny_dataset writes synthetic_actions(60, seed=0 * 1000 + episode)
    np.testing.assert_allclose(data.actions(1), synthetic_actions(60, seed=1), rtol=0, atol=1e-5)
    observe = data.observer(1, ["observation.images.top", "observation.state"])
    obs = observe([0, 10, 59])
    img = obs["observation.images.top"]
    assert img.shape == (3, 3, 24, 32) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.1
    # the state lags the action by one frame in the tiny dataset
    np.testing.assert_allclose(obs["observation.state"][1], data.actions(1)[9], atol=1e-5)


def test_replay_reads_observations_of_the_boundary_frames(tiny_camera_dataset_root):
    data = DatasetEpisodes("test/tiny_camera", tiny_camera_dataset_root)
    pred = StandInPredictor("repeat_last", past_length=4, max_delay=2, chunk_size=8, n_action_steps=8, action_dim=6)
    rep = replay_episode(pred, data.actions(0), data.observer(0, ["observation.state"]), mode="gt_prefix")
    states = pred.calls[0]["frames"]  # the stand-in records observation.state[:, 0]
    t = np.array(rep.schedule.observation_frames)
    np.testing.assert_allclose(states, data.actions(0)[t - 1, 0], atol=1e-5)
