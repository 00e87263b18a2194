"""Normalisation statistics from the training episodes only (issue 17, item 4): the training view
gives LeRobot the subset's statistics, and a checkpoint trained through it carries them."""

import json
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_act_smooth.experiments.training_stats import (
    TrainingStatsError,
    training_subset_stats,
    training_view,
)


def _full_stats(root: Path) -> dict:
    from lerobot.datasets.io_utils import load_stats

    return load_stats(root)


def test_all_episodes_reproduce_the_datasets_own_stats(exp_dataset_root):
    # The aggregation is LeRobot's: over every episode it must give back meta/stats.json.
    full = _full_stats(exp_dataset_root)
    mine = training_subset_stats(exp_dataset_root, [0, 1, 2, 3, 4])
    for feature in ("action", "observation.state", "observation.environment_state"):
        for stat in ("mean", "std", "min", "max"):
            np.testing.assert_allclose(mine[feature][stat], full[feature][stat], rtol=1e-6)


def test_subset_stats_are_the_subsets_own(exp_dataset_root):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    subset = training_subset_stats(exp_dataset_root, [0, 1, 2, 3])
    frames = LeRobotDataset("test/tiny_exp", root=exp_dataset_root, episodes=[0, 1, 2, 3])
    actions = np.asarray(frames.hf_dataset.with_format("numpy")["action"], dtype=np.float64)
    # Computed by hand from the subset's frames (population std, as LeRobot's stats are).
    np.testing.assert_allclose(subset["action"]["mean"], actions.mean(axis=0), rtol=1e-5, atol=1e-4)  # float32 frames
    np.testing.assert_allclose(subset["action"]["std"], actions.std(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(subset["action"]["max"], actions.max(axis=0), rtol=1e-6)
    assert not np.allclose(subset["action"]["mean"], _full_stats(exp_dataset_root)["action"]["mean"])


def test_view_is_read_by_lerobot_with_the_subsets_stats(exp_dataset_root, tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    view = training_view(exp_dataset_root, [0, 1, 2, 3], tmp_path / "views")
    ds = LeRobotDataset("test/tiny_exp", root=view, episodes=[0, 1, 2, 3])
    np.testing.assert_allclose(ds.meta.stats["action"]["mean"],
                               training_subset_stats(exp_dataset_root, [0, 1, 2, 3])["action"]["mean"], rtol=1e-6)
    assert len(ds) == 4 * 60
    # The original dataset is untouched, and the view is reused as it is.
    assert (Path(exp_dataset_root) / "meta" / "stats.json").is_file()
    stamp = (view / "meta" / "stats.json").stat().st_mtime_ns
    assert training_view(exp_dataset_root, [3, 2, 1, 0], tmp_path / "views") == view
    assert (view / "meta" / "stats.json").stat().st_mtime_ns == stamp


def test_unknown_episode_is_refused(exp_dataset_root, tmp_path):
    with pytest.raises(TrainingStatsError, match=r"episodes \[7\] are not in"):
        training_view(exp_dataset_root, [0, 7], tmp_path / "views")
    assert not (tmp_path / "views").exists() or not any((tmp_path / "views").iterdir())


def checkpoint_normaliser_stats(pretrained_model: Path) -> dict[str, np.ndarray]:
    """The statistics a LeRobot checkpoint normalises with: {"action.mean": array, ...}."""
    from safetensors.numpy import load_file

    files = sorted(pretrained_model.glob("policy_preprocessor_step_*_normalizer_processor.safetensors"))
    assert files, f"no normaliser state in {pretrained_model}"
    return load_file(str(files[0]))


def assert_trained_on_subset_stats(pretrained_model: Path, dataset_root: Path, train_episodes: list[int]) -> None:
    saved = checkpoint_normaliser_stats(pretrained_model)
    subset = training_subset_stats(dataset_root, train_episodes)
    full = _full_stats(dataset_root)
    np.testing.assert_allclose(saved["action.mean"], subset["action"]["mean"], rtol=1e-5)
    np.testing.assert_allclose(saved["observation.state.std"], subset["observation.state"]["std"], rtol=1e-5)
    assert not np.allclose(saved["action.mean"], full["action"]["mean"], rtol=1e-3)


def test_lerobot_train_on_the_view_saves_the_subsets_stats(exp_dataset_root, tmp_path):
    import subprocess
    import sys

    view = training_view(exp_dataset_root, [0, 1, 2, 3], tmp_path / "views")
    out = tmp_path / "train"
    cmd = [sys.executable, "-m", "lerobot.scripts.lerobot_train", "--policy.type=act_smooth",
           "--dataset.repo_id=test/tiny_exp", f"--dataset.root={view}", "--dataset.episodes=[0,1,2,3]",
           "--policy.chunk_size=8", "--policy.n_action_steps=8", "--policy.use_vae=false",
           "--policy.dim_model=16", "--policy.n_heads=2", "--policy.dim_feedforward=32",
           "--policy.n_encoder_layers=1", "--policy.n_decoder_layers=1",
           "--policy.length_prefix_past=2", "--policy.length_prefix_future=1",
           "--policy.device=cpu", "--policy.push_to_hub=false", "--wandb.enable=false", "--num_workers=0",
           "--steps=1", "--save_freq=1", "--batch_size=2", f"--output_dir={out}"]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = out / "checkpoints" / "last" / "pretrained_model"
    assert json.loads((model / "train_config.json").read_text())["dataset"]["episodes"] == [0, 1, 2, 3]
    assert_trained_on_subset_stats(model, exp_dataset_root, [0, 1, 2, 3])
