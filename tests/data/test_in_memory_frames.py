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


# act_smooth with the own-prediction prefix: the camera is read at two frames, t0 - 30 and t0.
CAMERA_DELTA_TIMESTAMPS = {**DELTA_TIMESTAMPS, "observation.images.top": [-30 / FPS, 0.0]}


def _open_cameras(root, repo_id, episodes=None, return_uint8=False):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset(repo_id, root=root, episodes=episodes, delta_timestamps=CAMERA_DELTA_TIMESTAMPS,
                          video_backend="pyav", return_uint8=return_uint8)


@pytest.fixture
def in_memory_patch(monkeypatch):
    """hold_lerobot_datasets_in_memory for one test; LeRobot's reader is restored after it."""
    from lerobot.datasets.dataset_reader import DatasetReader

    for name in ("_load_hf_dataset", "_query_videos"):
        monkeypatch.setattr(DatasetReader, name, getattr(DatasetReader, name))
    hold_lerobot_datasets_in_memory()
    hold_lerobot_datasets_in_memory()  # idempotent: not wrapped twice


def test_launcher_patch_loads_every_dataset_into_memory(tiny_dataset_root, tiny_camera_dataset_root, in_memory_patch):
    assert isinstance(_open(tiny_dataset_root, "test/tiny_state").reader.hf_dataset, InMemoryFrames)
    camera = _open(tiny_camera_dataset_root, "test/tiny_camera")
    assert isinstance(camera.reader.hf_dataset, InMemoryFrames)
    assert camera.reader.hf_dataset._columns["observation.images.top"].dtype == torch.uint8  # held small


@pytest.mark.parametrize("video", [False, True], ids=["images", "video"])
@pytest.mark.parametrize("return_uint8", [False, True], ids=["float", "uint8"])
def test_camera_samples_equal_lerobots_decoder(
    video, return_uint8, tiny_camera_dataset_root, tiny_video_dataset_root, request
):
    """Every sample, images included, is exactly LeRobot's: held frames are the decoder's own output
    (LeRobot's decode_video_frames, the same backend), converted to float as LeRobot converts them."""
    root, repo_id = (tiny_video_dataset_root, "test/tiny_video") if video else (tiny_camera_dataset_root, "test/tiny_camera")
    on_disk = _open_cameras(root, repo_id, episodes=[1], return_uint8=return_uint8)
    request.getfixturevalue("in_memory_patch")
    in_memory = _open_cameras(root, repo_id, episodes=[1], return_uint8=return_uint8)
    assert isinstance(in_memory.reader.hf_dataset, InMemoryFrames)
    assert (getattr(in_memory.reader, "_in_memory_videos", None) is not None) == video
    assert len(in_memory) == len(on_disk) == 60
    for i in range(len(on_disk)):
        _assert_same_sample(on_disk[i], in_memory[i])
    image = in_memory[45]["observation.images.top"]
    # images in parquet files are always float (LeRobot's ToTensor); videos follow return_uint8
    assert image.shape == (2, 3, 24, 32) and image.dtype == (torch.uint8 if video and return_uint8 else torch.float32)
    assert in_memory[5]["observation.images.top_is_pad"].tolist() == [True, False]
