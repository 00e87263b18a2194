"""Samples per second of the CPU profile's training, with the stock loader and with the dataset's
frames held in memory (`python -m lerobot_policy_act_smooth.train`), for one trial alone and for
the whole machine (one trial per core, as the plan runner schedules them).

    .venv/bin/python benchmarks/bench_loader.py --root=data/so101_sim --repo_id=local/so101_sim \
        [--steps=300] [--batch_size=16] [--json=bench_loader.json]

Figures per setting: data_s and updt_s (lerobot-train's own per-step averages over the last log
windows, start-up excluded), samples/s of one trial, samples/s summed over concurrent trials.
Also the cost of one sample read (LeRobotDataset.__getitem__ with act_smooth's 36-frame window).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOG_RE = re.compile(r"updt_s:(\S+) data_s:(\S+)")


def sample_read_ms(root: str, repo_id: str, in_memory: bool, n: int = 500) -> float:
    import numpy as np
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_policy_act_smooth.in_memory_frames import InMemoryFrames

    ds = LeRobotDataset(repo_id, root=root, delta_timestamps={"action": [i / 30 for i in range(-4, 32)]})
    if in_memory:
        ds.reader.hf_dataset = InMemoryFrames(ds.reader.hf_dataset)
    idx = np.random.default_rng(0).integers(0, len(ds), size=n)
    ds[int(idx[0])]
    t0 = time.perf_counter()
    for i in idx:
        ds[int(i)]
    return (time.perf_counter() - t0) / n * 1000


# name -> (frames in memory, extra lerobot-train flags). "sampled" also trains one delay per sample
# instead of all D (a change of what a step computes, not of the samples: reported apart).
SETTINGS = {"stock": (False, []), "in_memory": (True, []),
            "in_memory+sampled": (True, ["--policy.train_delays=sampled"])}


def train_command(args, in_memory: bool, out: Path, seed: int, extra: list[str] = ()) -> list[str]:
    module = "lerobot_policy_act_smooth.train" if in_memory else "lerobot.scripts.lerobot_train"
    return [
        sys.executable, "-m", module, "--policy.type=act_smooth", f"--dataset.repo_id={args.repo_id}",
        f"--dataset.root={args.root}", "--policy.chunk_size=30", "--policy.n_action_steps=30",
        "--policy.use_vae=false", "--policy.length_prefix_past=4", "--policy.length_prefix_future=2",
        "--policy.pretrained_backbone_weights=null", "--policy.dim_model=64", "--policy.n_heads=4",
        "--policy.dim_feedforward=256", "--policy.n_encoder_layers=2", "--policy.n_decoder_layers=1",
        "--policy.device=cpu", "--policy.push_to_hub=false", "--wandb.enable=false", "--num_workers=0",
        f"--steps={args.steps}", f"--save_freq={args.steps}", "--log_freq=50", f"--batch_size={args.batch_size}",
        f"--seed={seed}", f"--output_dir={out}", *extra,
    ]


def run_trials(args, in_memory: bool, concurrent: int, extra: list[str] = ()) -> list[dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    with tempfile.TemporaryDirectory() as tmp:
        procs = [
            subprocess.Popen(train_command(args, in_memory, Path(tmp) / f"t{i}", seed=i, extra=extra), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for i in range(concurrent)
        ]
        results = []
        for p in procs:
            text = p.communicate()[0]
            if p.returncode != 0:
                raise RuntimeError(f"lerobot-train failed:\n{text[-2000:]}")
            windows = [(float(u), float(d)) for u, d in LOG_RE.findall(text)][1:]  # first window: warm-up
            updt = sum(u for u, _ in windows) / len(windows)
            data = sum(d for _, d in windows) / len(windows)
            results.append({"updt_s": updt, "data_s": data, "samples_per_s": args.batch_size / (updt + data)})
        return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--repo_id", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--concurrent", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated, of {', '.join(SETTINGS)}")
    args = ap.parse_args()
    figures = {"machine": f"{os.cpu_count()} CPU cores", "batch_size": args.batch_size, "steps": args.steps}
    for name in args.settings.split(","):
        in_memory, extra = SETTINGS[name]
        read_ms = sample_read_ms(args.root, args.repo_id, in_memory)
        one = run_trials(args, in_memory, 1, extra)[0]
        many = run_trials(args, in_memory, args.concurrent, extra)
        figures[name] = {"sample_read_ms": read_ms, "one_trial": one,
                         "machine_samples_per_s": sum(r["samples_per_s"] for r in many),
                         "concurrent_trials": args.concurrent}
        print(f"{name:17s} sample read {read_ms:.2f} ms | one trial: data_s {one['data_s']:.4f} updt_s "
              f"{one['updt_s']:.4f} -> {one['samples_per_s']:.0f} samples/s | {args.concurrent} trials at once: "
              f"{figures[name]['machine_samples_per_s']:.0f} samples/s", flush=True)
    if "stock" in figures:
        for name in figures.keys() & set(SETTINGS) - {"stock"}:
            speedup = figures[name]["machine_samples_per_s"] / figures["stock"]["machine_samples_per_s"]
            print(f"whole machine, {name}: {speedup:.2f}x the stock loader's samples/s")
            figures[name]["machine_speedup"] = speedup
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
