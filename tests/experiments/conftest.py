import pytest


@pytest.fixture(scope="session")
def exp_dataset_root(tmp_path_factory):
    """5 episodes x 60 frames (state + env state), the last one held out by the tiny plans."""
    from tiny_dataset import make_tiny_dataset

    root = tmp_path_factory.mktemp("exp_datasets") / "tiny_exp"
    make_tiny_dataset(root, repo_id="test/tiny_exp", num_episodes=5, frames_per_episode=60)
    return root


@pytest.fixture(scope="module")
def local_ray():
    """A quiet local Ray with the dev machine's 2 CPUs, for the tests that run tiny plans on it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()
