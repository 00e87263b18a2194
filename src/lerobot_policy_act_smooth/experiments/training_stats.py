"""Normalisation statistics from the training episodes only.

lerobot-train normalises with the dataset's ``meta/stats.json``, which covers every episode, and
``--dataset.episodes`` selects the training subset without recomputing it: a trial trained on
episodes 0..N-21 would be normalised with means and deviations that include its held-out
episodes. LeRobot keeps each episode's own statistics in ``meta/episodes`` and reads the
normalisation from ``meta/stats.json`` of the dataset root it is given, so a trial is handed a
*training view*: a dataset root whose files are the original dataset's (symbolic links, nothing
copied) and whose ``meta/stats.json`` is LeRobot's own ``aggregate_stats`` over the training
episodes' statistics. The stock lerobot-train then reads that root as it reads any other.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

STATS_FILE = "stats.json"
VIEW_FILE = "training_view.json"  # in the view's meta/: what it was made from


class TrainingStatsError(ValueError):
    """A dataset whose per-episode statistics cannot give the training subset's."""


def episode_stats(root: str | Path, episodes: list[int]) -> list[dict[str, dict[str, np.ndarray]]]:
    """Each listed episode's own statistics, as LeRobot stored them in meta/episodes
    (``stats/<feature>/<stat>`` columns): one ``{feature: {stat: array}}`` per episode."""
    import pandas as pd

    files = sorted((Path(root) / "meta" / "episodes").glob("**/*.parquet"))
    if not files:
        raise TrainingStatsError(f"{root} has no meta/episodes/*.parquet: not a LeRobot v3 dataset root")
    table = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).set_index("episode_index")
    columns = [c for c in table.columns if c.startswith("stats/")]
    if not columns:
        raise TrainingStatsError(f"{root}/meta/episodes has no per-episode statistics (stats/... columns); "
                                 "recompute them with LeRobot's dataset tools before training on a subset")
    missing = sorted(set(episodes) - set(table.index))
    if missing:
        raise TrainingStatsError(f"episodes {missing} are not in {root} ({len(table)} episodes)")
    out = []
    for e in episodes:
        row = table.loc[e]
        stats: dict[str, dict[str, np.ndarray]] = {}
        for column in columns:
            _, feature, stat = column.split("/", 2)
            stats.setdefault(feature, {})[stat] = _as_array(row[column])
        out.append(stats)
    return out


def _as_array(value) -> np.ndarray:
    """A parquet cell as a float array: image statistics ([3, 1, 1]) come back as nested object arrays."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.stack([_as_array(v) for v in value])
    return np.asarray(value)


def training_subset_stats(root: str | Path, episodes: list[int]) -> dict[str, dict[str, np.ndarray]]:
    """The normalisation statistics of ``episodes`` alone, aggregated the way LeRobot aggregates a
    whole dataset's (count-weighted means, pooled deviations, min of mins, max of maxes)."""
    from lerobot.datasets.compute_stats import aggregate_stats

    if not episodes:
        raise TrainingStatsError("no training episodes given")
    return aggregate_stats(episode_stats(root, sorted(set(int(e) for e in episodes))))


def _episodes_key(episodes: list[int]) -> str:
    return hashlib.sha1(",".join(map(str, sorted(episodes))).encode()).hexdigest()[:10]


def _view_is_current(view: Path, source: Path, episodes: list[int]) -> bool:
    try:
        made_from = json.loads((view / "meta" / VIEW_FILE).read_text())
    except (OSError, ValueError):
        return False
    return made_from.get("source") == str(source) and made_from.get("episodes") == sorted(episodes)


def training_view(root: str | Path, episodes: list[int], views_dir: str | Path) -> Path:
    """A dataset root under ``views_dir`` that is ``root`` with the training episodes' own
    ``meta/stats.json``. Made once per (dataset, episode set), atomically; re-used after that."""
    from lerobot.datasets.io_utils import write_stats

    source = Path(root).resolve()
    episodes = sorted(set(int(e) for e in episodes))
    view = Path(views_dir) / f"train_{len(episodes)}eps_{_episodes_key(episodes)}"
    if _view_is_current(view, source, episodes):
        return view
    if view.exists():  # made from another dataset under the same name: nothing in it is a result
        shutil.rmtree(view)
    stats = training_subset_stats(source, episodes)
    partial = view.with_name(view.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "meta").mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != "meta":
            os.symlink(entry, partial / entry.name)
    for entry in (source / "meta").iterdir():
        if entry.name not in (STATS_FILE, VIEW_FILE):
            os.symlink(entry, partial / "meta" / entry.name)
    write_stats(stats, partial)
    (partial / "meta" / VIEW_FILE).write_text(json.dumps({"source": str(source), "episodes": episodes}) + "\n")
    partial.rename(view)
    return view
