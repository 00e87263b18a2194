"""Session fixtures for evaluation tests: tiny checkpoints trained by the real lerobot-train.

`sim_state_dataset_root` is a synthetic dataset (3 episodes x 60 frames, no camera) with the
simulator's observation shapes, so one checkpoint serves offline replay and closed-loop
evaluation. `tiny_act_smooth_checkpoint` trains on it; `tiny_act_checkpoint` (LeRobot's act)
trains on the shared `tiny_dataset_root`, whose environment state has 4 values: replay runs on
both shapes, and closed loop has a real checkpoint the simulator must refuse. Both have
chunk_size 8 and tiny dimensions and return the `pretrained_model` folder; about 20-40 s
each on 2 CPU cores.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY_MODEL_FLAGS = [
    "--policy.chunk_size=8",
    "--policy.n_action_steps=8",
    "--policy.use_vae=false",
    "--policy.dim_model=32",
    "--policy.n_heads=2",
    "--policy.dim_feedforward=64",
    "--policy.n_encoder_layers=1",
    "--policy.n_decoder_layers=1",
    "--policy.optimizer_lr=1e-3",
    "--policy.optimizer_lr_backbone=1e-3",
    "--policy.pretrained_backbone_weights=null",
    "--policy.device=cpu",
    "--policy.push_to_hub=false",
    "--wandb.enable=false",
    "--num_workers=0",
    "--batch_size=4",
    "--seed=0",
]


def train_tiny_checkpoint(output_dir: Path, dataset_root: Path, repo_id: str, policy_flags: list[str], steps: int = 10) -> Path:
    """Run lerobot-train for a few steps and return <output_dir>/checkpoints/<steps>/pretrained_model."""
    lerobot_train = Path(sys.executable).parent / "lerobot-train"
    cmd = [
        str(lerobot_train),
        f"--dataset.repo_id={repo_id}",
        f"--dataset.root={dataset_root}",
        *policy_flags,
        *TINY_MODEL_FLAGS,
        f"--output_dir={output_dir}",
        f"--steps={steps}",
        f"--save_freq={steps}",
        f"--log_freq={steps}",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"lerobot-train failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    path = output_dir / "checkpoints" / f"{steps:06d}" / "pretrained_model"
    assert (path / "config.json").is_file(), f"no checkpoint at {path}"
    return path


SIM_STATE_DATASET = "test/tiny_sim_state"


@pytest.fixture(scope="session")
def sim_state_dataset_root(tmp_path_factory):
    """Like tiny_dataset_root (3 episodes x 60 frames, no camera), with the simulator's
    environment-state size; repo_id SIM_STATE_DATASET."""
    from tiny_dataset import make_tiny_dataset

    from lerobot_policy_act_smooth.sim.env import ENV_STATE_DIM

    root = tmp_path_factory.mktemp("datasets") / "tiny_sim_state"
    make_tiny_dataset(root, repo_id=SIM_STATE_DATASET, env_state_dim=ENV_STATE_DIM)
    return root


@pytest.fixture(scope="session")
def tiny_act_smooth_checkpoint(tmp_path_factory, sim_state_dataset_root):
    """act_smooth, K=4, D=2, C=8, trained 10 steps on sim_state_dataset_root."""
    out = tmp_path_factory.mktemp("train") / "act_smooth"
    flags = ["--policy.type=act_smooth", "--policy.length_prefix_past=4", "--policy.length_prefix_future=2"]
    return train_tiny_checkpoint(out, sim_state_dataset_root, SIM_STATE_DATASET, flags)


@pytest.fixture(scope="session")
def tiny_act_checkpoint(tmp_path_factory, tiny_dataset_root):
    """LeRobot's own act, C=8, trained 10 steps on tiny_dataset_root."""
    out = tmp_path_factory.mktemp("train") / "act"
    return train_tiny_checkpoint(out, tiny_dataset_root, "test/tiny_state", ["--policy.type=act"])
