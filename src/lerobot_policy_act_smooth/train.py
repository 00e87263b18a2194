"""LeRobot's own `lerobot-train`, with the dataset's frames held in memory (columns and camera frames).

    python -m lerobot_policy_act_smooth.train --policy.type=act_smooth --dataset.repo_id=... [any lerobot-train flag]

Same flags, same training loop, same samples (see in_memory_frames.py and its test); only where
the numbers are read from changes. On the CPU profile this removes most of the data-loading time
of a step (benchmarks/bench_loader.py; with cameras, benchmarks/bench_camera_loader.py). The experiment runner uses it when a plan sets
`[dataset] in_memory = true`.
"""

from __future__ import annotations

from lerobot_policy_act_smooth.in_memory_frames import hold_lerobot_datasets_in_memory


def main() -> None:
    hold_lerobot_datasets_in_memory()
    from lerobot.scripts.lerobot_train import main as lerobot_train_main

    lerobot_train_main()


if __name__ == "__main__":
    main()
