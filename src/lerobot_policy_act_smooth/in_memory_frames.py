"""The same samples, read from tensors in memory instead of through the `datasets` library.

A LeRobotDataset reads every sample (a frame plus its delta-timestamp window, e.g. the 36
action frames of an act_smooth sample) from a `datasets.Dataset`. On the CPU profile that read
costs more than the training step of the tiny model: about half of it is `datasets` copying its
feature schema on every row access, not reading numbers. `InMemoryFrames` holds the columns of
the selected episodes as tensors, converted once through LeRobot's own `hf_transform_to_torch`,
and answers the three access patterns LeRobot's `DatasetReader` uses (`ds[i]`, `ds[key][rows]`,
`ds[rows][key]`) with the same values, dtypes and shapes. Everything else (`.data`, `.unique`,
`.features`, ...) is passed to the wrapped dataset.

Camera frames are held too, as uint8 (a quarter of float32's memory) and converted to float32
in [0, 1] when a sample is read, as LeRobot converts them: images stored in the parquet files
(LeRobot's `ToTensor`: uint8 / 255) and videos, which `InMemoryVideos` decodes once, frame by
frame, with LeRobot's own decoder and the dataset's video backend, and then answers
`DatasetReader._query_videos` from memory (nearest frame in time within the tolerance, uint8 when
the dataset was opened with `return_uint8`, as lerobot-train does). A dataset with depth maps is
left as it is (read by LeRobot, from disk).
Memory: height x width x 3 bytes per frame and camera (30,000 frames of a 96x128 camera: 1.1 GB).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames as LeRobot reads them: float32 in [0, 1] (its ToTensor and video decoders)."""
    return frames.type(torch.float32) / 255


class _Column:
    """`ds[key]`: indexable by a row number or a list of row numbers, like a datasets Column.
    image: the values are uint8 frames, returned as float32 in [0, 1]."""

    def __init__(self, values: torch.Tensor | list, image: bool = False):
        self._values = values
        self._image = image

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, rows):
        if isinstance(rows, int):
            value = self._values[rows]
            return _to_float(value) if self._image else value
        if isinstance(self._values, torch.Tensor):
            values = self._values[torch.as_tensor(rows, dtype=torch.long)]
            return list((_to_float(values) if self._image else values).unbind(0))
        return [self._values[r] for r in rows]


class InMemoryFrames:
    """A read-only, in-memory stand-in for the `datasets.Dataset` inside a LeRobot DatasetReader."""

    def __init__(self, hf_dataset):
        from datasets import Image

        self._dataset = hf_dataset
        self._images = {key for key, feature in hf_dataset.features.items() if isinstance(feature, Image)}
        self._columns: dict[str, torch.Tensor | list] = {}
        # the low-dimensional columns in one pass through LeRobot's transform: the exact values a row read gives
        batch = hf_dataset.select_columns([k for k in hf_dataset.column_names if k not in self._images])[:]
        for key, values in batch.items():
            if values and all(isinstance(v, torch.Tensor) for v in values):
                self._columns[key] = torch.stack(values)
            else:
                self._columns[key] = list(values)
        for key in self._images:  # decoded PNGs, kept as uint8 [rows, C, H, W]
            images = np.stack(hf_dataset.select_columns([key]).with_format("numpy")[key])
            self._columns[key] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self._length = len(hf_dataset)

    @staticmethod
    def holds_only_low_dimensional(hf_dataset) -> bool:
        """True when no column is an image stored in the parquet files."""
        from datasets import Image

        return not any(isinstance(feature, Image) for feature in hf_dataset.features.values())

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        if isinstance(index, str):
            return _Column(self._columns[index], index in self._images)
        if isinstance(index, int):
            if not -self._length <= index < self._length:
                raise IndexError(f"row {index} is outside a dataset of {self._length} rows")
            return {key: _Column(values, key in self._images)[index] for key, values in self._columns.items()}
        if isinstance(index, (list, tuple)):
            return {key: _Column(values, key in self._images)[list(index)] for key, values in self._columns.items()}
        return self._dataset[index]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


class InMemoryVideos:
    """Every frame of a DatasetReader's RGB videos for its selected episodes, decoded once with
    LeRobot's `decode_video_frames` (the reader's backend and tolerance) and held as uint8
    [frames, C, H, W] per camera and episode; `frames` answers `DatasetReader._query_videos`."""

    def __init__(self, reader, hf_dataset):
        from lerobot.datasets.video_utils import decode_video_frames

        meta = reader._meta
        episode_of_row = hf_dataset.data.column("episode_index").to_numpy()
        timestamp_of_row = hf_dataset.data.column("timestamp").to_numpy()
        self._timestamps: dict[int, np.ndarray] = {}
        self._frames: dict[str, dict[int, torch.Tensor]] = {key: {} for key in meta.video_keys}
        self._tolerance_s = reader._tolerance_s
        for episode in sorted(set(episode_of_row.tolist())):
            timestamps = timestamp_of_row[episode_of_row == episode]
            self._timestamps[episode] = timestamps
            for key in meta.video_keys:
                start = meta.episodes[episode][f"videos/{key}/from_timestamp"]
                self._frames[key][episode] = decode_video_frames(
                    reader.root / meta.get_video_file_path(episode, key),
                    [start + float(t) for t in timestamps],
                    reader._tolerance_s,
                    reader._video_backend,
                    return_uint8=True,
                )

    @staticmethod
    def can_hold(reader) -> bool:
        """True when the reader has videos and every video file of its episodes is on disk."""
        meta = reader._meta
        if not meta.video_keys:
            return False
        episodes = reader.episodes if reader.episodes is not None else range(meta.total_episodes)
        return all(
            (reader.root / meta.get_video_file_path(episode, key)).is_file()
            for episode in episodes
            for key in meta.video_keys
        )

    def frames(self, query_timestamps: dict[str, list[float]], episode: int, return_uint8: bool) -> dict:
        """What `DatasetReader._query_videos(query_timestamps, episode)` returns, from memory."""
        stored = self._timestamps[episode]
        out = {}
        for key, timestamps in query_timestamps.items():
            # numpy, not torch: tiny torch ops cost milliseconds each on busy cores (thread hand-offs)
            distance = np.abs(np.asarray(timestamps, dtype=stored.dtype)[:, None] - stored[None, :])
            nearest = distance.argmin(1)
            if not (distance[np.arange(len(nearest)), nearest] < self._tolerance_s).all():
                raise ValueError(
                    f"{key}: no frame of episode {episode} within {self._tolerance_s} s of {timestamps}; "
                    "the dataset's timestamps do not match its video frames"
                )
            frames = torch.stack([self._frames[key][episode][i] for i in nearest.tolist()])
            out[key] = (frames if return_uint8 else _to_float(frames)).squeeze(0)
        return out


def hold_lerobot_datasets_in_memory() -> None:
    """Make every LeRobotDataset opened after this call in this process read its frames from
    memory: the parquet columns (InMemoryFrames) and the decoded videos (InMemoryVideos). Used by
    `python -m lerobot_policy_act_smooth.train` before lerobot-train."""
    from lerobot.datasets.dataset_reader import DatasetReader

    if getattr(DatasetReader._load_hf_dataset, "_in_memory", False):
        return
    load_from_disk = DatasetReader._load_hf_dataset
    query_videos = DatasetReader._query_videos

    def load_into_memory(self):
        hf_dataset = load_from_disk(self)
        if self._meta.depth_keys:
            return hf_dataset
        # the video files may not be on disk yet (a hub dataset): then LeRobot fetches them and loads again
        self._in_memory_videos = InMemoryVideos(self, hf_dataset) if InMemoryVideos.can_hold(self) else None
        return InMemoryFrames(hf_dataset)

    def query_videos_in_memory(self, query_timestamps, ep_idx):
        videos = getattr(self, "_in_memory_videos", None)
        if videos is None:
            return query_videos(self, query_timestamps, ep_idx)
        return videos.frames(query_timestamps, ep_idx, self._return_uint8)

    load_into_memory._in_memory = True
    DatasetReader._load_hf_dataset = load_into_memory
    DatasetReader._query_videos = query_videos_in_memory
