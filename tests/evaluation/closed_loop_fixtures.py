"""A tiny act_smooth checkpoint whose inputs match the simulator's observation.

The replay fixtures in conftest.py train on tiny_dataset_root, whose environment state has
4 values; the simulator's has 10, so closed-loop runs need a checkpoint trained on a dataset
of the simulator's shapes. The dataset is the shared synthetic one (tests/tiny_dataset.py)
with the simulator's environment-state size; training is the real lerobot-train, 2 steps.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SIM_TINY_FLAGS = [
    "--policy.type=act_smooth",
    "--policy.length_prefix_past=4",
    "--policy.length_prefix_future=2",
    "--policy.chunk_size=8",
    "--policy.n_action_steps=8",
    "--policy.use_vae=false",
    "--policy.dim_model=32",
    "--policy.n_heads=2",
    "--policy.dim_feedforward=64",
    "--policy.n_encoder_layers=1",
    "--policy.n_decoder_layers=1",
    "--policy.pretrained_backbone_weights=null",
    "--policy.device=cpu",
    "--policy.push_to_hub=false",
    "--wandb.enable=false",
    "--num_workers=0",
    "--batch_size=4",
    "--seed=0",
]
STEPS = 2


@pytest.fixture(scope="session")
def sim_act_smooth_checkpoint(tmp_path_factory):
    """pretrained_model folder of act_smooth (K=4, D=2, C=8) with the simulator's state shapes."""
    from tiny_dataset import make_tiny_dataset

    from lerobot_policy_act_smooth.sim.env import ENV_STATE_DIM

    base = tmp_path_factory.mktemp("closed_loop")
    root = base / "tiny_sim_state"
    make_tiny_dataset(root, repo_id="test/tiny_sim_state", num_episodes=2, frames_per_episode=40, env_state_dim=ENV_STATE_DIM)
    output_dir = base / "train"
    cmd = [
        str(Path(sys.executable).parent / "lerobot-train"),
        "--dataset.repo_id=test/tiny_sim_state",
        f"--dataset.root={root}",
        *SIM_TINY_FLAGS,
        f"--output_dir={output_dir}",
        f"--steps={STEPS}",
        f"--save_freq={STEPS}",
        f"--log_freq={STEPS}",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"lerobot-train failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    path = output_dir / "checkpoints" / f"{STEPS:06d}" / "pretrained_model"
    assert (path / "config.json").is_file(), f"no checkpoint at {path}"
    return path
