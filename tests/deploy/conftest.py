"""Session fixture: a tiny act_smooth checkpoint trained by the real lerobot-train on a synthetic
dataset with the simulator's feature shapes (state [6], environment state [10])."""

from importlib import util
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def _evaluation_fixtures():
    """tests/evaluation/conftest.py, loaded under its own name (train_tiny_checkpoint lives there)."""
    spec = util.spec_from_file_location("evaluation_conftest", TESTS / "evaluation" / "conftest.py")
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sim_shaped_checkpoint(tmp_path_factory):
    """act_smooth K=4, D=2, C=8, 10 training steps (about 15 s on 2 CPU cores)."""
    from tiny_dataset import make_tiny_dataset

    from lerobot_policy_act_smooth.sim.env import ENV_STATE_DIM

    root = tmp_path_factory.mktemp("deploy_data") / "tiny_sim_state"
    make_tiny_dataset(root, repo_id="test/tiny_sim_state", env_state_dim=ENV_STATE_DIM)
    out = tmp_path_factory.mktemp("deploy_train") / "act_smooth"
    flags = ["--policy.type=act_smooth", "--policy.length_prefix_past=4", "--policy.length_prefix_future=2"]
    return _evaluation_fixtures().train_tiny_checkpoint(out, root, "test/tiny_sim_state", flags)
