"""Wall time of gt_prefix replay: all boundaries of an episode batched vs one chunk at a time.

Both runs replay the same episodes over the same boundaries with the same checkpoint, in the
same process (observation loading included: it is the same work in both). Without a
checkpoint it makes a synthetic dataset and a 1-step act_smooth checkpoint at the cpu-small
plan's model size (weights do not change the time).

    .venv/bin/python benchmarks/bench_replay.py                       # synthetic, cpu-small size
    .venv/bin/python benchmarks/bench_replay.py --policy_path=.../pretrained_model \
        --repo_id=sim/x --root=data/x --episodes=0,1,2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
CPU_SMALL_MODEL = [
    "--policy.chunk_size=30", "--policy.n_action_steps=30", "--policy.use_vae=false",
    "--policy.length_prefix_past=4", "--policy.length_prefix_future=2",
    "--policy.dim_model=64", "--policy.n_heads=4", "--policy.dim_feedforward=256",
    "--policy.n_encoder_layers=2", "--policy.n_decoder_layers=1",
]


def make_inputs(work: Path, frames: int) -> tuple[Path, str, Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_dataset import make_tiny_dataset

    root = work / "dataset"
    make_tiny_dataset(root, repo_id="bench/replay", num_episodes=3, frames_per_episode=frames)
    cmd = [
        str(Path(sys.executable).parent / "lerobot-train"), "--policy.type=act_smooth",
        "--dataset.repo_id=bench/replay", f"--dataset.root={root}", *CPU_SMALL_MODEL,
        "--policy.pretrained_backbone_weights=null", "--policy.device=cpu", "--policy.push_to_hub=false",
        "--wandb.enable=false", "--num_workers=0", "--batch_size=4", "--steps=1", "--save_freq=1",
        f"--output_dir={work / 'train'}",
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return root, "bench/replay", work / "train" / "checkpoints" / "000001" / "pretrained_model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy_path")
    parser.add_argument("--repo_id")
    parser.add_argument("--root")
    parser.add_argument("--episodes", default="0,1,2")
    parser.add_argument("--frames", type=int, default=450, help="episode length of the synthetic dataset")
    parser.add_argument("--advance", type=int, default=None, help="default: the policy's n_action_steps")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np
    import torch

    from lerobot_policy_act_smooth.evaluation.replay import DatasetEpisodes, replay_episode
    from lerobot_policy_act_smooth.inference import load_chunk_predictor

    with tempfile.TemporaryDirectory() as tmp:
        if args.policy_path:
            root, repo_id, ckpt = args.root, args.repo_id, args.policy_path
        else:
            print("making a synthetic dataset and a cpu-small-size act_smooth checkpoint ...", flush=True)
            root, repo_id, ckpt = make_inputs(Path(tmp), args.frames)
        predictor = load_chunk_predictor(ckpt)
        data = DatasetEpisodes(repo_id, root)
        episodes = [int(e) for e in args.episodes.split(",")]
        keys = list(predictor.input_features)
        inputs = [(e, data.actions(e), data.observer(e, keys)) for e in episodes]

        def run(batch_size: int):
            start = time.perf_counter()
            reps = [replay_episode(predictor, truth, observe, "gt_prefix", advance=args.advance,
                                   batch_size=batch_size, episode=e) for e, truth, observe in inputs]
            return time.perf_counter() - start, reps

        run(64)  # warm-up
        batched, loop = [], []
        for _ in range(args.repeats):
            t, reps_b = run(10_000)
            batched.append(t)
            t, reps_l = run(1)
            loop.append(t)
        for a, b in zip(reps_b, reps_l, strict=True):
            np.testing.assert_allclose(a.stitched, b.stitched, rtol=1e-4, atol=1e-3, equal_nan=True)
        chunks = sum(len(r.schedule.observation_frames) for r in reps_b)
        tb, tl = min(batched), min(loop)
        print(f"torch threads {torch.get_num_threads()}, policy {predictor.policy_type} C={predictor.chunk_size} "
              f"K={predictor.past_length} D={predictor.max_delay}, {len(episodes)} episodes, {chunks} chunks "
              f"(advance {reps_b[0].schedule.advance})")
        print(f"batched (one predict call per episode): {tb:.3f} s  (best of {args.repeats})")
        print(f"one chunk at a time ({chunks} predict calls):  {tl:.3f} s  (best of {args.repeats})")
        print(f"speed-up: {tl / tb:.1f}x")


if __name__ == "__main__":
    main()
