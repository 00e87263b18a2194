"""Per-episode smoothness metrics recomputed from the trajectory files an evaluation wrote.

Every evaluation keeps its trajectories next to its metrics (replay: STEM_stitched.csv; closed loop:
STEM_trajectories.csv with the boundaries in STEM_metrics.json), so a metric added to the scorer
after a run can still be read off that run without re-running the policy: the experiment report
uses this for U_a inside chunks / at boundaries on evaluations older than those keys. The rows
carry every key of :func:`metrics.smoothness_metrics`, so a caller can check them against the
stored U_a before trusting them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lerobot_policy_act_smooth.evaluation.metrics import smoothness_metrics


def _smoothness(values: np.ndarray, boundaries: list[int], prefix: str) -> dict:
    if values.shape[0] < 4:  # as the scorers: too short for the variance of second differences
        return {}
    return {f"{prefix}{k}": float(v) for k, v in smoothness_metrics(values, boundaries).items()}


def replay_rows(stitched_csv: str | Path) -> list[dict]:
    """One row per episode of a replay's STEM_stitched.csv: the prediction's smoothness metrics
    (plain keys) and the ground truth's (``truth_`` keys) over the scored (``prediction``) frames,
    boundaries where the chunk index changes, exactly as the replay scored them."""
    df = pd.read_csv(stitched_csv)
    df = df[df["source"] == "prediction"]
    rows = []
    for episode, ep in df.groupby("episode", sort=False):
        joints = list(dict.fromkeys(ep["joint"]))
        wide = ep.pivot(index="frame", columns="joint", values=["prediction", "truth", "chunk"]).sort_index()
        prediction = wide["prediction"][joints].to_numpy(np.float64)
        truth = wide["truth"][joints].to_numpy(np.float64)
        chunk = wide["chunk"][joints[0]].to_numpy()
        boundaries = [int(i) for i in np.flatnonzero(chunk[1:] != chunk[:-1]) + 1]
        rows.append({"episode": int(episode), **_smoothness(prediction, boundaries, ""),
                     **_smoothness(truth, boundaries, "truth_")})
    return rows


def closed_loop_rows(trajectories_csv: str | Path, metrics_json: str | Path) -> list[dict]:
    """One row per episode of a closed-loop run: ``action_*`` on the commanded actions and
    ``obs_*`` on the observed joints, with the boundaries its STEM_metrics.json recorded."""
    episodes = json.loads(Path(metrics_json).read_text())["episodes"]
    boundaries = {int(e["episode"]): [int(b) for b in e["boundaries"]] for e in episodes}
    df = pd.read_csv(trajectories_csv)
    rows = []
    for episode, ep in df.groupby("episode", sort=False):
        wide = ep.pivot(index="frame", columns="joint", values=["commanded", "observed"]).sort_index()
        b = boundaries.get(int(episode))
        if b is None:
            continue
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
