"""``actsmooth-dataset``: record simulated SO-101 demonstrations as a LeRobot v3 dataset.

Example:
    actsmooth-dataset --repo_id=local/so101_sim --root=data/so101_sim --episodes=50 --seed=0
    actsmooth-dataset --repo_id=local/so101_cam --root=data/so101_cam --episodes=2 \\
        --cameras=top,wrist --top_size=96x128 --wrist_size=96x128 --workers=2
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import draccus

from lerobot_policy_act_smooth.sim.config_so101_sim import DEFAULT_RENDER_MESH_FACES

# mujoco picks its OpenGL back end when first imported, so nothing here imports it at
# module level: main() sets a headless default first.


@dataclass
class DatasetGenerationConfig:
    # Dataset id stored in the metadata (LeRobot's repo_id; nothing is pushed to a hub).
    repo_id: str = "local/so101_pick_place_sim"
    # Output folder (LeRobot's --dataset.root when training). Required.
    root: str | None = None
    # Number of successful demonstrations to record.
    episodes: int = 50
    # Seed of the whole dataset: same seed, same arrays.
    seed: int = 0
    # Frames per second of the recording (the control rate of the simulated arm).
    fps: int = 30
    # Comma-separated camera names ("top", "wrist"); empty for none.
    cameras: str = ""
    # Size of the top camera's images, HEIGHTxWIDTH.
    top_size: str = "480x640"
    # Size of the wrist camera's images, HEIGHTxWIDTH.
    wrist_size: str = "640x480"
    # Triangles the cameras draw the arm's visual meshes with (decimated copies of the CAD
    # meshes, several times faster to render on a CPU); 0 for the full ~400k-triangle meshes.
    render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES
    # Store images as MP4 video instead of image files (read back with --dataset.video_backend=pyav).
    video: bool = False
    # Replace an existing dataset at --root (only a LeRobot dataset folder is ever removed).
    overwrite: bool = False
    # Processes that record and render episodes at once; default: one per CPU core. The dataset
    # is the same for any number (each episode depends only on its seed; written in order).
    workers: int | None = None


def parse_size(text: str, flag: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag} must be HEIGHTxWIDTH such as 96x128, got {text!r}") from None
    return height, width


def camera_request(cfg: DatasetGenerationConfig) -> dict[str, tuple[int, int]]:
    from lerobot_policy_act_smooth.sim.scene import CAMERA_NAMES

    names = [name.strip() for name in cfg.cameras.split(",") if name.strip()]
    for name in names:
        if name not in CAMERA_NAMES:
            raise ValueError(f"unknown camera {name!r} in --cameras: choose from {', '.join(CAMERA_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--cameras lists a camera twice: {cfg.cameras!r}")
    sizes = {
        "top": parse_size(cfg.top_size, "--top_size"),
        "wrist": parse_size(cfg.wrist_size, "--wrist_size"),
    }
    return {name: sizes[name] for name in names}


def run(cfg: DatasetGenerationConfig) -> dict:
    from lerobot_policy_act_smooth.sim.dataset import generate_dataset

    return generate_dataset(
        repo_id=cfg.repo_id,
        root=cfg.root,
        episodes=cfg.episodes,
        seed=cfg.seed,
        fps=cfg.fps,
        cameras=camera_request(cfg),
        overwrite=cfg.overwrite,
        use_videos=cfg.video,
        config=cfg,
        render_mesh_faces=cfg.render_mesh_faces,
        workers=cfg.workers,
    )


def main(argv: list[str] | None = None) -> int:
    # Offline machines: LeRobot must never try the hub. Headless rendering by default.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
    cfg = draccus.parse(config_class=DatasetGenerationConfig, args=sys.argv[1:] if argv is None else argv)
    from lerobot_policy_act_smooth.sim.dataset import DatasetGenerationError

    try:
        run(cfg)
    except (DatasetGenerationError, ValueError) as exc:
        print(f"actsmooth-dataset: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. the demonstrator failing five times in a row
        print(f"actsmooth-dataset: failed: {exc}; nothing was written to --root", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("actsmooth-dataset: interrupted; nothing was written to --root", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
