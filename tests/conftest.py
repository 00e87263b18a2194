import os
import sys
from pathlib import Path

# Offline machine: never try the hub. Headless rendering for the simulator's cameras.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dataset_root(tmp_path_factory):
    """A 3-episode, 60-frame synthetic dataset with environment state and no camera."""
    from tiny_dataset import make_tiny_dataset

    root = tmp_path_factory.mktemp("datasets") / "tiny_state"
    make_tiny_dataset(root, repo_id="test/tiny_state")
    return root


@pytest.fixture(scope="session")
def tiny_camera_dataset_root(tmp_path_factory):
    """A 2-episode, 60-frame synthetic dataset with one 24x32 camera and no environment state."""
    from tiny_dataset import make_tiny_dataset

    root = tmp_path_factory.mktemp("datasets") / "tiny_camera"
    make_tiny_dataset(root, repo_id="test/tiny_camera", num_episodes=2, camera=(24, 32), env_state_dim=None)
    return root


@pytest.fixture(scope="session")
def tiny_video_dataset_root(tmp_path_factory):
    """A 2-episode, 60-frame synthetic dataset with one 24x32 camera stored as MP4 video."""
    from tiny_dataset import make_tiny_dataset

    root = tmp_path_factory.mktemp("datasets") / "tiny_video"
    make_tiny_dataset(
        root, repo_id="test/tiny_video", num_episodes=2, camera=(24, 32), env_state_dim=None, video=True
    )
    return root
