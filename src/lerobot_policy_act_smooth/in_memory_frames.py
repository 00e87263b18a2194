"""The same samples, read from tensors in memory instead of through the `datasets` library.

A LeRobotDataset reads every sample (a frame plus its delta-timestamp window, e.g. the 36
action frames of an act_smooth sample) from a `datasets.Dataset`. On the CPU profile that read
costs more than the training step of the tiny model: about half of it is `datasets` copying its
feature schema on every row access, not reading numbers. `InMemoryFrames` holds the columns of
the selected episodes as tensors, converted once through LeRobot's own `hf_transform_to_torch`,
and answers the three access patterns LeRobot's `DatasetReader` uses (`ds[i]`, `ds[key][rows]`,
`ds[rows][key]`) with the same values, dtypes and shapes. Everything else (`.data`, `.unique`,
`.features`, ...) is passed to the wrapped dataset.

Only low-dimensional columns are held: a dataset that stores images inside its parquet files is
left as it is (videos are decoded by LeRobot separately and are unaffected either way).
"""

from __future__ import annotations

from typing import Any

import torch


class _Column:
    """`ds[key]`: indexable by a row number or a list of row numbers, like a datasets Column."""

    def __init__(self, values: torch.Tensor | list):
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, rows):
        if isinstance(rows, int):
            return self._values[rows]
        if isinstance(self._values, torch.Tensor):
            return list(self._values[torch.as_tensor(rows, dtype=torch.long)].unbind(0))
        return [self._values[r] for r in rows]


class InMemoryFrames:
    """A read-only, in-memory stand-in for the `datasets.Dataset` inside a LeRobot DatasetReader."""

    def __init__(self, hf_dataset):
        self._dataset = hf_dataset
        batch = hf_dataset[:]  # one pass through LeRobot's transform: the exact values a row read gives
        self._columns: dict[str, torch.Tensor | list] = {}
        for key, values in batch.items():
            if values and all(isinstance(v, torch.Tensor) for v in values):
                self._columns[key] = torch.stack(values)
            else:
                self._columns[key] = list(values)
        self._length = len(hf_dataset)

    @staticmethod
    def holds_only_low_dimensional(hf_dataset) -> bool:
        """True when no column is an image stored in the parquet files (those stay on disk)."""
        from datasets import Image

        return not any(isinstance(feature, Image) for feature in hf_dataset.features.values())

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        if isinstance(index, str):
            return _Column(self._columns[index])
        if isinstance(index, int):
            if not -self._length <= index < self._length:
                raise IndexError(f"row {index} is outside a dataset of {self._length} rows")
            return {key: values[index] for key, values in self._columns.items()}
        if isinstance(index, (list, tuple)):
            return {key: _Column(values)[list(index)] for key, values in self._columns.items()}
        return self._dataset[index]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


def hold_lerobot_datasets_in_memory() -> None:
    """Make every LeRobotDataset opened after this call in this process read its low-dimensional
    frames from memory. Used by `python -m lerobot_policy_act_smooth.train` before lerobot-train."""
    from lerobot.datasets.dataset_reader import DatasetReader

    if getattr(DatasetReader._load_hf_dataset, "_in_memory", False):
        return
    load_from_disk = DatasetReader._load_hf_dataset

    def load_into_memory(self):
        hf_dataset = load_from_disk(self)
        if InMemoryFrames.holds_only_low_dimensional(hf_dataset):
            return InMemoryFrames(hf_dataset)
        return hf_dataset

    load_into_memory._in_memory = True
    DatasetReader._load_hf_dataset = load_into_memory
