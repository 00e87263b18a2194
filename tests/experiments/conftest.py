import pytest


@pytest.fixture(scope="session")
def exp_dataset_root(tmp_path_factory):
    """5 episodes x 60 frames (state + env state), the last one held out by the tiny plans."""
    from tiny_dataset import make_tiny_dataset

    root = tmp_path_factory.mktemp("exp_datasets") / "tiny_exp"
    make_tiny_dataset(root, repo_id="test/tiny_exp", num_episodes=5, frames_per_episode=60)
    return root
