"""Datasets written by the simulator load with LeRobot and are reproducible."""

import json

import numpy as np
import pytest
import torch
from sim_test_helpers import load_episode_arrays

from lerobot_policy_act_smooth.sim.dataset import GENERATION_FILE, generate_dataset


def test_dataset_loads_with_action_chunks(sim_dataset):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root, summary = sim_dataset
    fps = 30
    delta = {"action": [i / fps for i in range(-4, 32)]}
    dataset = LeRobotDataset("test/so101_sim", root=root, delta_timestamps=delta)
    assert dataset.fps == fps and dataset.num_episodes == 4
    assert dataset.num_frames == summary["total_frames"]
    item = dataset[20]
    assert item["action"].shape == (36, 6)
    assert item["observation.state"].shape == (6,)
    assert item["observation.environment_state"].shape == (10,)
    assert not item["action_is_pad"][:4].any()  # frame 20 has 4 past actions: none padded
    assert dataset[0]["action_is_pad"][:4].all()  # the episode's first frame has none: all padded
    assert item["task"] == "Pick up the cube and place it on the target."
    assert dataset.meta.features["action"]["names"][-1] == "gripper.pos"
    for key in ("action", "observation.state", "observation.environment_state"):
        assert key in dataset.meta.stats and np.all(np.isfinite(dataset.meta.stats[key]["std"]))
    generation = json.loads((root / "meta" / GENERATION_FILE).read_text())
    assert generation["seed"] == 11 and len(generation["generation"]["episode_records"]) == 4
    assert generation["packages"]["lerobot"]


def test_same_seed_same_arrays(sim_episodes, tmp_path):
    again = tmp_path / "again"
    generate_dataset("test/so101_sim", again, episodes=1, seed=11, progress=False)
    first, second = sim_episodes[:1], load_episode_arrays(again)
    for a, b in zip(first, second, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_tiny_camera_dataset(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path / "cams"
    # 10 fps keeps the episode short: each frame is still a CPU render (decimated arm meshes).
    summary = generate_dataset(
        "test/so101_cams",
        root,
        episodes=1,
        seed=3,
        fps=10,
        cameras={"top": (24, 32)},
        progress=False,
    )
    dataset = LeRobotDataset(
        "test/so101_cams", root=root, delta_timestamps={"action": [i / 10 for i in range(8)]}
    )
    assert dataset.fps == 10
    item = dataset[5]
    assert item["observation.images.top"].shape == (3, 24, 32)
    assert (
        0.0 <= float(item["observation.images.top"].min())
        and float(item["observation.images.top"].max()) <= 1.0
    )
    assert item["action"].shape == (8, 6)
    assert summary["render_mesh_faces"] == 20000  # the default, recorded with the images


def test_overwrite_replaces_only_a_dataset(sim_dataset, tmp_path):
    from lerobot_policy_act_smooth.sim.dataset import DatasetGenerationError

    root = tmp_path / "ds"
    generate_dataset("test/a", root, episodes=1, seed=0, progress=False)
    with pytest.raises(DatasetGenerationError, match="already holds data"):
        generate_dataset("test/a", root, episodes=1, seed=1, progress=False)
    generate_dataset("test/a", root, episodes=1, seed=1, overwrite=True, progress=False)
    assert json.loads((root / "meta" / GENERATION_FILE).read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no leftovers beside it


def test_camera_dataset_is_the_same_with_one_or_two_workers(tmp_path):
    """Episodes recorded in parallel are written in episode order: the same arrays and the same
    video bytes as one process writes (each episode depends only on its seeds)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.datasets.video_utils import decode_video_frames

    roots = {}
    for workers in (1, 2):
        roots[workers] = tmp_path / f"workers{workers}"
        summary = generate_dataset(
            # 5 fps (the lowest) keeps it short: every frame is a CPU render
            "test/so101_cams", roots[workers], episodes=2, seed=3, fps=5,
            cameras={"top": (24, 32)}, use_videos=True, progress=False, workers=workers,
        )
        assert summary["workers"] == workers and summary["frames_per_second"] > 0
    one, two = (load_episode_arrays(roots[w], "test/so101_cams") for w in (1, 2))
    for a, b in zip(one, two, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    videos = {w: sorted((roots[w] / "videos").rglob("*.mp4")) for w in (1, 2)}
    assert [p.relative_to(roots[1]) for p in videos[1]] == [p.relative_to(roots[2]) for p in videos[2]]
    for first, second in zip(videos[1], videos[2], strict=True):
        # SVT-AV1 encodes the same frames to the same bytes here; the decoded frames must match either way
        assert first.read_bytes() == second.read_bytes()
        n = LeRobotDataset("test/so101_cams", root=roots[1]).num_frames
        timestamps = [i / 5 for i in range(n)]  # the two episodes follow each other in one file
        frames = [decode_video_frames(p, timestamps, 1e-4, "pyav", return_uint8=True) for p in (first, second)]
        assert frames[0].shape == (n, 3, 24, 32) and torch.equal(*frames)


def test_workers_must_be_positive(tmp_path):
    from lerobot_policy_act_smooth.sim.dataset import DatasetGenerationError

    with pytest.raises(DatasetGenerationError, match="--workers must be a positive integer"):
        generate_dataset("test/a", tmp_path / "ds", episodes=1, seed=0, workers=0, progress=False)
    assert not (tmp_path / "ds").exists()
