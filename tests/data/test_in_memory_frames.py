"""The in-memory frame store gives LeRobot exactly the samples the datasets library gives."""

import pytest
import torch

from lerobot_policy_act_smooth.in_memory_frames import InMemoryFrames, hold_lerobot_datasets_in_memory

FPS = 30
# An act_smooth sample: K=4 past, D=2 committed, C=30 target actions; an earlier observation too.
DELTA_TIMESTAMPS = {
    "action": [i / FPS for i in range(-4, 32)],
    "observation.state": [-30 / FPS, 0.0],
}


def _open(root, repo_id, episodes=None):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(repo_id, root=root, episodes=episodes, delta_timestamps=DELTA_TIMESTAMPS)


def _assert_same_sample(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def test_every_sample_equals_the_datasets_library_one(tiny_dataset_root):
    on_disk = _open(tiny_dataset_root, "test/tiny_state", episodes=[0, 2])
    in_memory = _open(tiny_dataset_root, "test/tiny_state", episodes=[0, 2])
    in_memory.reader.hf_dataset = InMemoryFrames(in_memory.reader.hf_dataset)
    assert len(in_memory) == len(on_disk) == 120
    for i in range(len(on_disk)):
        _assert_same_sample(on_disk[i], in_memory[i])
    # the window is padded at the episode ends, the same way
    assert in_memory[0]["action_is_pad"][:4].all() and not in_memory[0]["action_is_pad"][4:].any()
    assert in_memory[59]["action_is_pad"][-1]


def test_out_of_range_row_is_an_index_error(tiny_dataset_root):
    frames = InMemoryFrames(_open(tiny_dataset_root, "test/tiny_state").reader.hf_dataset)
    with pytest.raises(IndexError, match="outside"):
        frames[len(frames)]


def test_launcher_patch_loads_low_dimensional_datasets_into_memory_only(
    tiny_dataset_root, tiny_camera_dataset_root, monkeypatch
):
    from lerobot.datasets.dataset_reader import DatasetReader

    monkeypatch.setattr(DatasetReader, "_load_hf_dataset", DatasetReader._load_hf_dataset)  # restored after
    hold_lerobot_datasets_in_memory()
    hold_lerobot_datasets_in_memory()  # idempotent: not wrapped twice
    assert isinstance(_open(tiny_dataset_root, "test/tiny_state").reader.hf_dataset, InMemoryFrames)
    # images stored in the parquet files stay with the datasets library
    camera = _open(tiny_camera_dataset_root, "test/tiny_camera")
    assert not isinstance(camera.reader.hf_dataset, InMemoryFrames)
