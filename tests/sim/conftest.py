import pytest


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory):
    """A 4-episode dataset from the simulator (no cameras), generated once: (root, summary)."""
    from lerobot_policy_act_smooth.sim.dataset import generate_dataset

    root = tmp_path_factory.mktemp("sim") / "so101_sim"
    summary = generate_dataset("test/so101_sim", root, episodes=4, seed=11, progress=False)
    return root, summary


@pytest.fixture(scope="session")
def sim_episodes(sim_dataset):
    """The fixture dataset's episodes read back through LeRobot's loader (list of array dicts)."""
    from sim_test_helpers import load_episode_arrays

    return load_episode_arrays(sim_dataset[0])
