"""Per-episode smoothness metrics recomputed from the trajectory files an evaluation wrote.

Every evaluation keeps its trajectories next to its metrics (replay: STEM_stitched.csv, read by
:func:`read_stitched_csv`, the one reader of that format; closed loop: STEM_trajectories.csv with the
boundaries in STEM_metrics.json), so a metric added to the scorer
after a run can still be read off that run without re-running the policy: the experiment report
uses this for U_a inside chunks / at boundaries on evaluations older than those keys. The rows
carry every key of :func:`metrics.smoothness_metrics`, so a caller can check them against the
stored U_a before trusting them.

:func:`rescore` recomputes every per-episode metric of an evaluation from its files, exactly as the
evaluation scored it (the same scoring functions on the same float64 values: the CSVs hold
``repr(float)``, read back with round-trip precision): scalars, boundary profiles and, from
STEM_chunks.npz, the replan discontinuity. An evaluation written before the chunks file existed
cannot give the replan discontinuity: asking for it raises :class:`RescoreError` (``replan=False``
gives everything else).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from lerobot_policy_act_smooth.evaluation.metrics import smoothness_metrics


class RescoreError(ValueError):
    """An evaluation cannot be rescored for what was asked; the message names the fix."""


def _smoothness(values: np.ndarray, boundaries: list[int], prefix: str, fps: float = 30.0) -> dict:
    if values.shape[0] < 4:  # as the scorers: too short for the variance of second differences
        return {}
    return {f"{prefix}{k}": float(v) for k, v in smoothness_metrics(values, boundaries, fps=fps).items()}


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
        # C order, as the scorers hold them: numpy's sums along frames round by memory layout
        truth = np.ascontiguousarray(wide["truth"][joints].to_numpy(np.float64))
        out[int(episode)] = (np.ascontiguousarray(stitched), truth, boundaries)
    return out


def read_chunks_npz(path: str | Path) -> dict[int, tuple[list[np.ndarray], list[int]]]:
    """{episode: (chunks, starts)} from an evaluation's STEM_chunks.npz (``ep{e}_chunks`` [n, C, A]
    deg, ``ep{e}_starts`` [n] frames): the chunks as predicted, in placement order."""
    out = {}
    with np.load(path) as data:
        for name in data.files:
            if name.endswith("_chunks"):
                episode = int(name.removeprefix("ep").removesuffix("_chunks"))
                starts = [int(s) for s in data[f"ep{episode}_starts"]]
                out[episode] = (list(data[name]), starts)
    return out


def _first_scored_frame(stitched: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isnan(stitched).all(axis=1))[0])


def replay_rows(stitched_csv: str | Path, fps: float = 30.0) -> list[dict]:
    """One row per episode of a replay's STEM_stitched.csv: the prediction's smoothness metrics
    (plain keys) and the ground truth's (``truth_`` keys) over the scored (``prediction``) frames,
    boundaries (the chunk switches) relative to the first of them, SPARC at ``fps``. Blending's
    crossfade ends are not in the CSV: :func:`rescore` reads them from the settings."""
    rows = []
    for episode, (stitched, truth, boundaries) in read_stitched_csv(stitched_csv).items():
        start = _first_scored_frame(stitched)
        rel = [b - start for b in boundaries]
        rows.append({"episode": episode, **_smoothness(stitched[start:], rel, "", fps),
                     **_smoothness(truth[start:], rel, "truth_", fps)})
    return rows


def _wide_trajectories(trajectories_csv: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{episode: (commanded, observed)} [T, A] from a closed-loop STEM_trajectories.csv (or the
    demonstrator's STEM_reference_trajectories.csv, same columns)."""
    df = pd.read_csv(trajectories_csv, float_precision="round_trip")
    out = {}
    for episode, ep in df.groupby("episode", sort=False):
        wide = ep.pivot(index="frame", columns="joint", values=["commanded", "observed"]).sort_index()
        out[int(episode)] = (np.ascontiguousarray(wide["commanded"].to_numpy(np.float64)),
                             np.ascontiguousarray(wide["observed"].to_numpy(np.float64)))
    return out


def closed_loop_rows(trajectories_csv: str | Path, boundaries: dict[int, list[int]], fps: float = 30.0) -> list[dict]:
    """One row per episode of a closed-loop run that has boundaries (episode -> the switch frames
    its STEM_metrics.json recorded under "boundaries"): ``action_*`` on the commanded actions and
    ``obs_*`` on the observed joints, SPARC at ``fps``."""
    rows = []
    for episode, (commanded, observed) in _wide_trajectories(trajectories_csv).items():
        b = boundaries.get(episode)
        if b is None:
            continue
        rows.append({"episode": episode, **_smoothness(commanded, b, "action_", fps),
                     **_smoothness(observed, b, "obs_", fps)})
    return rows


def _stem(metrics_json: str | Path) -> str:
    name = str(metrics_json)
    if not name.endswith("_metrics.json"):
        raise RescoreError(f"{metrics_json} is not an evaluation's STEM_metrics.json; pass that file")
    return name.removesuffix("_metrics.json")


def _chunks(metrics_json: str | Path, payload: dict, stem: str, command: str) -> dict:
    path = Path(f"{stem}_chunks.npz")
    if "chunks" not in payload.get("files", {}) or not path.is_file():
        raise RescoreError(
            f"{metrics_json} was written before the chunks file existed (no {path}), so its replan discontinuity "
            f"cannot be recomputed; re-run the evaluation with this version ({command}), or rescore with replan=False"
        )
    return read_chunks_npz(path)


def rescore_replay(metrics_json: str | Path, replan: bool = True) -> list[dict]:
    """The per-episode JSON objects of an ``actsmooth-replay`` run recomputed from its
    STEM_stitched.csv (and STEM_chunks.npz for ``replan_mean`` / ``replan_max``): every key
    :func:`replay.score_episode` gives (scalars, ``num_chunks``, profile lists), with the run's fps
    and, with blending, both ends of every crossfade as boundaries. Raises RescoreError when
    ``replan`` is asked of a run without a chunks file."""
    from lerobot_policy_act_smooth.evaluation.replay import score_episode

    stem = _stem(metrics_json)
    payload = json.loads(Path(metrics_json).read_text())
    settings = payload["settings"]
    blend_overlap = int(settings["chunk_size"]) - int(settings["advance"]) if settings.get("blend") else 0
    chunks = _chunks(metrics_json, payload, stem, "actsmooth-replay") if replan else {}
    out = []
    for episode, (stitched, truth, switches) in read_stitched_csv(f"{stem}_stitched.csv").items():
        start = _first_scored_frame(stitched)
        episode_chunks, starts = chunks.get(episode, (None, None))
        if replan and episode_chunks is None:
            raise RescoreError(f"{stem}_chunks.npz has no chunks of episode {episode}; re-run the evaluation")
        row, profiles = score_episode(
            episode, stitched[start:], truth[start:], [b - start for b in switches], blend_overlap, settings["fps"],
            episode_chunks, None if starts is None else [s - start for s in starts],
        )
        out.append({**row, **profiles})
    return out


def rescore_closed_loop(metrics_json: str | Path, replan: bool = True) -> list[dict]:
    """Per-episode metrics of an ``actsmooth-sim-eval`` run recomputed from its
    STEM_trajectories.csv at the boundaries its STEM_metrics.json recorded, with the scorer's own
    functions (closed_loop_results): ``obs_*`` / ``action_*`` scalars and profile lists,
    ``replan_*`` from STEM_chunks.npz, and ``demo_obs_*`` / ``demo_action_*`` from
    STEM_reference_trajectories.csv when the run has a reference. Raises RescoreError when
    ``replan`` is asked of a run without a chunks file."""
    from lerobot_policy_act_smooth.evaluation.closed_loop_results import (
        METRIC_NAMES,
        episode_profiles,
        episode_replan,
    )

    def scalars(values: np.ndarray, boundaries: list[int], prefix: str) -> dict:
        if values.shape[0] >= 4:
            found = smoothness_metrics(values, boundaries, fps=fps)
        else:  # as the scorer: too short for the variance of second differences
            found = dict.fromkeys(METRIC_NAMES, math.nan)
        return {f"{prefix}{k}": float(v) for k, v in found.items()}

    stem = _stem(metrics_json)
    payload = json.loads(Path(metrics_json).read_text())
    fps = float(payload["settings"]["fps"])
    recorded = {int(e["episode"]): e for e in payload["episodes"]}
    chunks = _chunks(metrics_json, payload, stem, "actsmooth-sim-eval") if replan else {}
    reference_csv = Path(f"{stem}_reference_trajectories.csv")
    reference = _wide_trajectories(reference_csv) if reference_csv.is_file() else {}
    out = []
    for episode, (commanded, observed) in _wide_trajectories(f"{stem}_trajectories.csv").items():
        b = list(recorded[episode]["boundaries"])
        row = {"episode": episode, **scalars(observed, b, "obs_"), **scalars(commanded, b, "action_"),
               **episode_profiles(observed, b, "obs_"), **episode_profiles(commanded, b, "action_")}
        if replan:
            episode_chunks, starts = chunks[episode]
            row.update(episode_replan(np.stack(episode_chunks), starts, commanded.shape[0]))
        if episode in reference and "demo_boundaries" in recorded[episode]:
            demo_actions, demo_states = reference[episode]
            db = list(recorded[episode]["demo_boundaries"])
            row.update({**scalars(demo_states, db, "demo_obs_"), **scalars(demo_actions, db, "demo_action_"),
                        **episode_profiles(demo_states, db, "demo_obs_"),
                        **episode_profiles(demo_actions, db, "demo_action_")})
        out.append(row)
    return out


def rescore(metrics_json: str | Path, replan: bool = True) -> list[dict]:
    """Per-episode metrics of any evaluation (offline replay or closed loop, told apart by its
    trajectory file) recomputed from its files; see :func:`rescore_replay` and :func:`rescore_closed_loop`."""
    stem = _stem(metrics_json)
    if Path(f"{stem}_stitched.csv").is_file():
        return rescore_replay(metrics_json, replan)
    if Path(f"{stem}_trajectories.csv").is_file():
        return rescore_closed_loop(metrics_json, replan)
    raise RescoreError(
        f"{metrics_json} has neither {stem}_stitched.csv nor {stem}_trajectories.csv next to it; "
        "keep an evaluation's files together to rescore it"
    )


def same_value(a, b, rel: float = 1e-9) -> bool:
    """Equal as the scorers' floats (NaN equals NaN)."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
