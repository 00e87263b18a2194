"""Tiny plan files for the experiment tests: LeRobot's `act` with tiny dims on the synthetic
dataset of tests/tiny_dataset.py, so that a trial takes seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_POLICY = """
[policy]
type = "act"
chunk_size = 10
n_action_steps = 10
use_vae = false
dim_model = 16
dim_feedforward = 32
n_heads = 2
n_encoder_layers = 1
n_decoder_layers = 1
pretrained_backbone_weights = "null"
push_to_hub = false
"""


def plan_text(dataset_root: Path | None, stages: str, batch_size: int = 4, save_freq: int = 2, heldout: int = 1,
              evaluation: str = 'replay_modes = []', name: str = "tiny", extra_policy: str = "") -> str:
    """dataset_root None: the dataset is given by its id alone (LeRobot's cache)."""
    root = f'root = "{dataset_root}"' if dataset_root is not None else ""
    return f"""
name = "{name}"
seed = 7
[dataset]
repo_id = "test/tiny_exp"
{root}
heldout_episodes = {heldout}
[train]
batch_size = {batch_size}
save_freq = {save_freq}
log_freq = 1
num_workers = 0
"wandb.enable" = false
{TINY_POLICY}{extra_policy}
[selection]
final_loss_window = 2
divergence_factor = 100.0
[evaluation]
{evaluation}
{stages}
"""


def write_plan(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_cli(args: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "lerobot_policy_act_smooth.experiments.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, **kw)


def popen_cli(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    f = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "lerobot_policy_act_smooth.experiments.cli", *args],
                            stdout=f, stderr=subprocess.STDOUT, env=env)


def trainer_pids_for(path: Path) -> list[int]:
    """Pids of live lerobot-train processes whose command line mentions `path`."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next((ln for ln in (p / "status").read_text().splitlines() if ln.startswith("State:")), "")
        except OSError:
            continue
        if "lerobot_train" in cmd and str(path) in cmd and "Z (zombie)" not in state:
            pids.append(int(p.name))
    return pids
