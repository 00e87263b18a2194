"""Tiny synthetic LeRobot v3 datasets for tests, written with LeRobot's own dataset API.

Stands in for the simulator's recordings where a test needs a dataset but not the
physics: smooth sinusoidal joint trajectories (degrees), a state that lags the action by
one frame, an optional environment state and optional tiny camera images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

JOINT_NAMES = [
    "shoulder_pan.pos",
    "shoulder_lift.pos",
    "elbow_flex.pos",
    "wrist_flex.pos",
    "wrist_roll.pos",
    "gripper.pos",
]


def synthetic_actions(num_frames: int, seed: int, fps: int = 30) -> np.ndarray:
    """[num_frames, 6] smooth joint targets in degrees."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    freq = rng.uniform(0.2, 0.6, size=6)
    amp = rng.uniform(10.0, 30.0, size=6)
    phase = rng.uniform(0, 2 * np.pi, size=6)
    offset = rng.uniform(-20.0, 20.0, size=6)
    return (offset + amp * np.sin(2 * np.pi * freq * t[:, None] + phase)).astype(np.float32)


def make_tiny_dataset(
    root: str | Path,
    repo_id: str = "test/tiny",
    num_episodes: int = 3,
    frames_per_episode: int = 60,
    fps: int = 30,
    camera: tuple[int, int] | None = None,
    env_state_dim: int | None = 4,
    seed: int = 0,
    video: bool = False,
):
    """Write a dataset to ``root`` (must not exist) and return the LeRobotDataset.

    camera: (height, width) of one camera named ``observation.images.top``, or None.
    env_state_dim: size of ``observation.environment_state``, or None for no such feature.
    video: store the camera as MP4 video (LeRobot's encoder) instead of image files.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": JOINT_NAMES},
        "action": {"dtype": "float32", "shape": (6,), "names": JOINT_NAMES},
    }
    if env_state_dim is not None:
        features["observation.environment_state"] = {
            "dtype": "float32",
            "shape": (env_state_dim,),
            "names": [f"env_{i}" for i in range(env_state_dim)],
        }
    if camera is not None:
        h, w = camera
        features["observation.images.top"] = {
            "dtype": "video" if video else "image",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        }
    dataset = LeRobotDataset.create(
        repo_id=repo_id, fps=fps, features=features, root=root, robot_type="so101", use_videos=video
    )
    rng = np.random.default_rng(seed)
    for episode in range(num_episodes):
        actions = synthetic_actions(frames_per_episode, seed=seed * 1000 + episode, fps=fps)
        states = np.concatenate([actions[:1], actions[:-1]], axis=0)
        for i in range(frames_per_episode):
            frame = {
                "observation.state": states[i],
                "action": actions[i],
                "task": "move the arm",
            }
            if env_state_dim is not None:
                frame["observation.environment_state"] = np.full(
                    env_state_dim, float(episode) / max(num_episodes, 1), dtype=np.float32
                )
            if camera is not None:
                frame["observation.images.top"] = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            dataset.add_frame(frame)
        dataset.save_episode()
    dataset.finalize()
    return dataset
