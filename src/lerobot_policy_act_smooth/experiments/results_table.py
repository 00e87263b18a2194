"""The results table with intervals: every variant's metrics as mean [95% interval] over its
training seeds and the reported (test) episodes, its difference from the baseline paired on the
same episodes (and on seeds where the two share checkpoints), and a sentence per variant
generated from those intervals.

Input: the per-episode rows of each trial's evaluation files (`eval/<name>_metrics.json`,
key "episodes"), grouped by variant; a variant's seeds form the rows of a [seeds, episodes]
grid (statistics.py). Replay metrics use the test episodes (held-out minus validation);
closed-loop metrics use every closed-loop episode (simulator seeds no trial chose on).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .statistics import Estimate, difference_interval, mean_interval, verdict


@dataclass(frozen=True)
class Metric:
    evaluation: str  # gt_prefix, self_chaining, closed_loop
    key: str  # column of the per-episode rows
    label: str
    lower_is_better: bool = True


METRICS = [
    Metric("gt_prefix", "U_a", "gt U_a"),
    Metric("gt_prefix", "spike", "gt spike"),
    Metric("gt_prefix", "mae", "gt MAE"),
    Metric("self_chaining", "U_a", "sc U_a"),
    Metric("self_chaining", "spike", "sc spike"),
    Metric("self_chaining", "mae", "sc MAE"),
    Metric("closed_loop", "obs_U_a", "CL obs U_a"),
    Metric("closed_loop", "action_U_a", "CL act U_a"),
    Metric("closed_loop", "action_spike", "CL act spike"),
    Metric("closed_loop", "success", "CL success", lower_is_better=False),
]
# The metrics a verdict sentence speaks of, in order.
# sc MAE is there because a smoother self-chained trajectory that drifts away from the task is no gain.
HEADLINE = ["sc U_a", "sc spike", "CL act spike", "gt U_a", "gt MAE", "sc MAE", "CL success"]


def episode_rows(trial_dir: Path, done: dict | None, evaluation: str) -> list[dict] | None:
    """The per-episode rows of one evaluation of a finished trial, or None when it has none.
    Read-only: the same list is handed to every caller until the file changes."""
    ev = (done or {}).get("evaluations", {}).get(evaluation)
    if not ev or ev.get("status") != "ok":
        return None
    try:
        path = trial_dir / ev["metrics"]
        stat = path.stat()
        return _read_episodes(str(path), stat.st_mtime_ns, stat.st_size)
    except (OSError, json.JSONDecodeError, KeyError):
        return None


@functools.lru_cache(maxsize=1024)
def _read_episodes(path: str, mtime_ns: int, size: int) -> list[dict] | None:
    # A report builds dozens of grids from the same evaluation files (one per metric, profile and
    # table); keyed by modification time and size, a rewritten file is read again.
    return json.loads(Path(path).read_text()).get("episodes")


# Where the U_a sits (issue 11): inside chunks (the +-2-frame boundary windows left out) and in
# those windows alone, for the goal's two settings.
SPLIT_METRICS = [
    Metric("self_chaining", "U_a_inside", "sc U_a inside"),
    Metric("self_chaining", "U_a_boundary", "sc U_a boundary"),
    Metric("closed_loop", "action_U_a_inside", "CL act U_a inside"),
    Metric("closed_loop", "action_U_a_boundary", "CL act U_a boundary"),
]
_TRAJECTORY_FILES = {"self_chaining": "_stitched.csv", "gt_prefix": "_stitched.csv", "closed_loop": "_trajectories.csv"}


def split_rows(trial_dir: Path, done: dict | None, evaluation: str) -> list[dict] | None:
    """episode_rows with the U_a split. Evaluations scored before the split existed get it
    recomputed from their trajectory file (evaluation/rescore.py); those rows are used only when
    they reproduce every stored U_a and spike exactly (else None: the file is not what was scored)."""
    rows = episode_rows(trial_dir, done, evaluation)
    prefix = "action_" if evaluation == "closed_loop" else ""
    if rows is None or all(f"{prefix}U_a_inside" in r for r in rows):
        return rows
    from lerobot_policy_act_smooth.evaluation.rescore import closed_loop_rows, replay_rows, same_value

    metrics_file = trial_dir / done["evaluations"][evaluation]["metrics"]
    trajectories = Path(str(metrics_file).removesuffix("_metrics.json") + _TRAJECTORY_FILES.get(evaluation, ""))
    try:
        recomputed = (closed_loop_rows(trajectories, {r["episode"]: r["boundaries"] for r in rows})
                      if evaluation == "closed_loop" else replay_rows(trajectories))
    except (OSError, KeyError, ValueError):
        return None
    by_episode = {r["episode"]: r for r in recomputed}
    out = []
    for row in rows:
        again = by_episode.get(row["episode"])
        checked = [k for k in (f"{prefix}U_a", f"{prefix}spike") if k in row]
        if again is None or not checked or not all(k in again and same_value(again[k], row[k]) for k in checked):
            return None
        out.append({**again, **row})
    return out


def seed_episode_cells(seed_rows: list[list[dict] | None], key: str, episodes: list[int] | None) -> list[list] | None:
    """The raw values of `key`, one list per seed over the episodes; None unless every seed has every
    episode. episodes: keep only these episode indices (None: all, in the order of the first seed)."""
    if not seed_rows or any(rows is None for rows in seed_rows):
        return None
    order = episodes if episodes is not None else [r["episode"] for r in seed_rows[0]]
    if not order:
        return None
    cells = []
    for rows in seed_rows:
        by_episode = {r["episode"]: r for r in rows}
        if any(e not in by_episode or key not in by_episode[e] for e in order):
            return None
        cells.append([by_episode[e][key] for e in order])
    return cells


def metric_grid(seed_rows: list[list[dict] | None], key: str, episodes: list[int] | None) -> np.ndarray | None:
    """[seeds, episodes] values of `key` (see :func:`seed_episode_cells`), None values as NaN."""
    cells = seed_episode_cells(seed_rows, key, episodes)
    if cells is None:
        return None
    return np.asarray([[math.nan if v is None else float(v) for v in row] for row in cells], dtype=np.float64)


def fmt_estimate(est: Estimate | None, digits: int = 3) -> str:
    if est is None or not math.isfinite(est.mean):
        return "-"
    if not (math.isfinite(est.low) and math.isfinite(est.high)):
        return f"{est.mean:.{digits}g}"
    return f"{est.mean:.{digits}g} [{est.low:.{digits}g}, {est.high:.{digits}g}]"


def fmt_difference(est: Estimate | None, digits: int = 2) -> str:
    if est is None or not math.isfinite(est.mean):
        return "-"
    return f"{est.mean:+.{digits}g} [{est.low:+.{digits}g}, {est.high:+.{digits}g}]"


def variant_estimates(grids: dict[str, np.ndarray | None]) -> dict[str, Estimate | None]:
    return {label: (mean_interval(g) if g is not None else None) for label, g in grids.items()}


def differences(grids: dict[str, np.ndarray | None], baseline: dict[str, np.ndarray | None],
                paired_seeds: bool = False) -> dict[str, Estimate | None]:
    """variant - baseline per metric label, paired on episodes; on seeds too when row s of every
    grid comes from the same checkpoint as the baseline's row s (``paired_seeds``)."""
    out = {}
    for label, g in grids.items():
        b = baseline.get(label)
        if g is None or b is None or g.shape[1] != b.shape[1] or (paired_seeds and g.shape[0] != b.shape[0]):
            out[label] = None
        else:
            out[label] = difference_interval(g, b, paired_seeds=paired_seeds)
    return out


def verdict_sentence(name: str, diffs: dict[str, Estimate | None], baseline_name: str) -> str:
    """"<name> vs <baseline>: better on sc U_a (-0.41 [-0.6, -0.2]); not distinguishable on ..."""
    by_word: dict[str, list[str]] = {}
    for label in HEADLINE:
        est = diffs.get(label)
        if est is None or not math.isfinite(est.mean):
            continue
        metric = next(m for m in METRICS if m.label == label)
        word = verdict(est, metric.lower_is_better)
        by_word.setdefault(word, []).append(f"{label} ({fmt_difference(est)})")
    if not by_word:
        return f"{name}: no metric to compare with {baseline_name}."
    parts = [f"{word} on {', '.join(items)}" for word, items in by_word.items()]
    return f"{name} vs {baseline_name}: " + "; ".join(parts) + "."
