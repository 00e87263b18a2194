"""Time to generate simulated SO-101 datasets (figures for docs/simulation.md).

    .venv/bin/python benchmarks/bench_dataset.py                       # 50 episodes, then 2 with cameras
    .venv/bin/python benchmarks/bench_dataset.py --episodes 10 --camera_episodes 1

Prints wall time for ``--episodes`` episodes without cameras, and for ``--camera_episodes``
episodes with two 96x128 cameras (top, wrist) extrapolated to ``--episodes``; plus the
recorded actions' smoothness metrics (mean over episodes) next to the real teleop ranges.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402


def _metrics(root: Path, repo_id: str) -> dict[str, float]:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_policy_act_smooth.evaluation.metrics import (
        acceleration_variance,
        mean_abs_velocity,
        velocity_variance,
    )

    table = LeRobotDataset(repo_id, root=root).hf_dataset.with_format("numpy")
    actions, episodes = np.stack(table["action"]), np.asarray(table["episode_index"])
    per_episode = [actions[episodes == ep] for ep in np.unique(episodes)]
    return {
        "U_a": float(np.mean([acceleration_variance(a) for a in per_episode])),
        "U_v": float(np.mean([velocity_variance(a) for a in per_episode])),
        "mu_v": float(np.mean([mean_abs_velocity(a) for a in per_episode])),
        "frames_per_episode": float(np.mean([len(a) for a in per_episode])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--camera_episodes", type=int, default=2, help="0 to skip the camera run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from lerobot_policy_act_smooth.sim.dataset import generate_dataset

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        summary = generate_dataset(
            "bench/state", Path(tmp) / "state", args.episodes, args.seed, progress=False
        )
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        metrics = _metrics(Path(tmp) / "state", "bench/state")
        print(
            f"no cameras: {args.episodes} episodes, {summary['total_frames']} frames in {seconds:.1f} s "
            f"({seconds / args.episodes:.2f} s/episode; process CPU time {cpu_seconds:.1f} s"
            f"); load average {os.getloadavg()[0]:.1f}; "
            f"{len(summary['failed_attempts'])} failed demonstrations retried"
        )
        print(
            f"actions at 30 fps (mean over episodes): U_a {metrics['U_a']:.3f} deg^2/frame^4 "
            "(real 0.09-0.17), "
            f"U_v {metrics['U_v']:.2f} deg^2/frame^2 (real 1.1-1.8), mu_v {metrics['mu_v']:.3f} deg/frame "
            f"(real 0.30-0.37); {metrics['frames_per_episode']:.0f} frames/episode"
        )
        if args.camera_episodes > 0:
            cameras = {"top": (96, 128), "wrist": (96, 128)}
            start, cpu_start = time.perf_counter(), time.process_time()
            summary = generate_dataset(
                "bench/cams",
                Path(tmp) / "cams",
                args.camera_episodes,
                args.seed,
                cameras=cameras,
                progress=False,
            )
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            per_episode = seconds / args.camera_episodes
            per_frame_ms = 1000 * seconds / summary["total_frames"]
            print(
                f"two 96x128 cameras ({os.environ.get('MUJOCO_GL')}): "
                f"{args.camera_episodes} episodes in {seconds:.1f} s "
                f"({per_episode:.1f} s/episode, {per_frame_ms:.0f} ms/frame; CPU time {cpu_seconds:.1f} s); "
                f"{args.episodes} episodes would take about {per_episode * args.episodes / 60:.0f} min"
            )


if __name__ == "__main__":
    main()
