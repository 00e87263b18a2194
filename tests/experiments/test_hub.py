"""Hub datasets: a plan that names its dataset by id alone trains on LeRobot's cache
(HF_LEROBOT_HOME/<repo_id>); offline, a dataset missing from the cache is one clear error."""

import shutil

import pytest

from lerobot_policy_act_smooth.experiments.cli import main
from lerobot_policy_act_smooth.experiments.hub import cached_dataset_root
from lerobot_policy_act_smooth.experiments.overrides import apply_dataset_overrides
from lerobot_policy_act_smooth.experiments.plan import PlanError, load_plan, validate_plan
from lerobot_policy_act_smooth.experiments.runner import prepare_dataset
from plan_helpers import plan_text, write_plan

STAGES = "[stages.s]\nsteps = 2\n"


@pytest.fixture
def lerobot_cache(tmp_path, monkeypatch, exp_dataset_root):
    """A temporary HF_LEROBOT_HOME holding test/tiny_exp where LeRobot keeps a dataset by id."""
    home = tmp_path / "lerobot_home"
    shutil.copytree(exp_dataset_root, home / "test" / "tiny_exp")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home / "test" / "tiny_exp"


def test_dataset_found_by_id_alone(lerobot_cache, tmp_path, monkeypatch):
    plan = load_plan(write_plan(tmp_path / "p.toml", plan_text(None, STAGES)))
    assert plan.dataset.from_hub
    validate_plan(plan, tmp_path / "out")
    lines = []
    assert prepare_dataset(plan, tmp_path / "out", lines.append) == lerobot_cache
    assert "from LeRobot's cache" in lines[0]
    # The same folder is what LeRobot itself opens for this id (offline, no root given). LeRobot
    # reads HF_LEROBOT_HOME once at import; setting its constant stands for a fresh process.
    from lerobot.datasets import dataset_metadata
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    monkeypatch.setattr(dataset_metadata, "HF_LEROBOT_HOME", lerobot_cache.parent.parent)
    ds = LeRobotDataset("test/tiny_exp")
    assert ds.root == lerobot_cache and ds.num_episodes == 5


def test_repo_id_flag_alone_means_the_hub_dataset(lerobot_cache, exp_dataset_root):
    plan = load_plan("cpu-small")
    apply_dataset_overrides(plan, None, "test/tiny_exp")
    assert plan.dataset.from_hub and plan.dataset.resolved_root("unused") == lerobot_cache
    plan = load_plan("cpu-small")
    apply_dataset_overrides(plan, str(exp_dataset_root), "me/local")
    assert not plan.dataset.from_hub and plan.dataset.repo_id == "me/local"


def test_not_in_cache_while_offline(lerobot_cache, tmp_path, capsys):
    # An incomplete copy (an interrupted download) does not count as cached.
    next((lerobot_cache / "data").rglob("*.parquet")).unlink()
    assert cached_dataset_root("test/tiny_exp") is None
    plan = write_plan(tmp_path / "p.toml", plan_text(None, STAGES))
    with pytest.raises(PlanError, match="missing dataset: test/tiny_exp is not in LeRobot's cache"):
        validate_plan(load_plan(plan), tmp_path)
    out = tmp_path / "out"
    assert main(["run", f"--plan={plan}", f"--output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--dataset_root=PATH" in err and "HF_HUB_OFFLINE=0" in err
    assert not out.exists()
