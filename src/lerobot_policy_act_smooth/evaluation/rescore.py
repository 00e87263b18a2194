"""Per-episode smoothness metrics recomputed from the trajectory files an evaluation wrote.

Every evaluation keeps its trajectories next to its metrics (replay: STEM_stitched.csv, read by
:func:`read_stitched_csv`, the one reader of that format; closed loop: STEM_trajectories.csv with the
boundaries in STEM_metrics.json), so a metric added to the scorer
after a run can still be read off that run without re-running the policy: the experiment report
uses this for U_a inside chunks / at boundaries on evaluations older than those keys. The rows
carry every key of :func:`metrics.smoothness_metrics`, so a caller can check them against the
stored U_a before trusting them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from lerobot_policy_act_smooth.evaluation.metrics import smoothness_metrics


def _smoothness(values: np.ndarray, boundaries: list[int], prefix: str) -> dict:
    if values.shape[0] < 4:  # as the scorers: too short for the variance of second differences
        return {}
    return {f"{prefix}{k}": float(v) for k, v in smoothness_metrics(values, boundaries).items()}


def read_stitched_csv(source) -> dict[int, tuple[np.ndarray, np.ndarray, list[int]]]:
    """{episode: (stitched, truth, boundaries)} from a replay's STEM_stitched.csv (a path or a file
    object): [N, A] arrays over the episode's frames 0 .. N-1, stitched NaN on the ground-truth
    prefix rows; a boundary is a prediction frame whose chunk differs from the previous one."""
    df = pd.read_csv(source, float_precision="round_trip")  # the writer stores repr(float): read it back exactly
    out = {}
    for episode, ep in df.groupby("episode", sort=False):
        joints = list(dict.fromkeys(ep["joint"]))
        frames = range(int(ep["frame"].max()) + 1)
        wide = ep.pivot(index="frame", columns="joint", values=["truth", "prediction"]).reindex(frames)
        chunk = (ep[ep["source"] == "prediction"].drop_duplicates("frame").set_index("frame")["chunk"]
                 .reindex(frames, fill_value=-1).to_numpy())
        predicted = chunk >= 0
        stitched = np.where(predicted[:, None], wide["prediction"][joints].to_numpy(np.float64), np.nan)
        at = np.flatnonzero(predicted)
        boundaries = [int(f) for f, g in zip(at[1:], at[:-1]) if chunk[f] != chunk[g]]
        out[int(episode)] = (stitched, wide["truth"][joints].to_numpy(np.float64), boundaries)
    return out


def replay_rows(stitched_csv: str | Path) -> list[dict]:
    """One row per episode of a replay's STEM_stitched.csv: the prediction's smoothness metrics
    (plain keys) and the ground truth's (``truth_`` keys) over the scored (``prediction``) frames,
    boundaries relative to the first of them, exactly as the replay scored them."""
    rows = []
    for episode, (stitched, truth, boundaries) in read_stitched_csv(stitched_csv).items():
        start = int(np.flatnonzero(~np.isnan(stitched).all(axis=1))[0])
        rel = [b - start for b in boundaries]
        rows.append({"episode": episode, **_smoothness(stitched[start:], rel, ""),
                     **_smoothness(truth[start:], rel, "truth_")})
    return rows


def closed_loop_rows(trajectories_csv: str | Path, boundaries: dict[int, list[int]]) -> list[dict]:
    """One row per episode of a closed-loop run that has boundaries (episode -> the switch frames
    its STEM_metrics.json recorded under "boundaries"): ``action_*`` on the commanded actions and
    ``obs_*`` on the observed joints."""
    df = pd.read_csv(trajectories_csv, float_precision="round_trip")
    rows = []
    for episode, ep in df.groupby("episode", sort=False):
        b = boundaries.get(int(episode))
        if b is None:
            continue
        wide = ep.pivot(index="frame", columns="joint", values=["commanded", "observed"]).sort_index()
        rows.append({"episode": int(episode),
                     **_smoothness(wide["commanded"].to_numpy(np.float64), b, "action_"),
                     **_smoothness(wide["observed"].to_numpy(np.float64), b, "obs_")})
    return rows


def same_value(a, b, rel: float = 1e-9) -> bool:
    """Equal as the scorers' floats (NaN equals NaN)."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
