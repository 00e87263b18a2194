"""Metrics and result files of a closed-loop run (see docs/closed_loop.md, "Files").

:class:`EpisodeRecord` is what one episode produced; :func:`write_results` turns the records
into the metric rows (``obs_*`` on the observed joints, ``action_*`` on the commanded actions,
success) and writes every file: the metric files through :mod:`report_files`, the
trajectories CSV, the run metadata and the per-episode plots.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.evaluation.closed_loop_config import SimEvalConfig, output_paths, plot_path
from lerobot_policy_act_smooth.evaluation.metrics import aggregate, smoothness_metrics
from lerobot_policy_act_smooth.evaluation.report_files import TextLayout, fmt, write_metric_files
from lerobot_policy_act_smooth.provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, run_metadata

METRIC_NAMES = ("U_v", "U_a", "U_a_inside", "U_a_boundary", "mu_v", "spike", "spike_boundary_mean", "spike_other_mean")


@dataclass
class EpisodeRecord:
    """One closed-loop episode. Arrays are [T, A] degrees, frame t = the t-th control step."""

    episode: int
    seed: int
    commanded: np.ndarray  # action executed at frame t
    observed: np.ndarray  # observation.state at frame t (before the action at t)
    source: list[int]  # request index whose chunk gave the action at t, -1 = initial hold
    requests: list[dict]
    switch_frames: list[int]  # frames where a chunk takes over, inside the episode
    boundaries: list[int]  # switch frames used by the spike metric (first chunk's left out)
    success: bool
    success_frame: int | None
    terminated: bool
    truncated: bool
    predict_seconds: list[float]

    @property
    def num_frames(self) -> int:
        return int(self.commanded.shape[0])



# -- metrics and files -----------------------------------------------------------------------


def episode_row(record: EpisodeRecord) -> dict:
    """Flat metric row of one episode: ``obs_*`` on the observed joint positions, ``action_*``
    on the commanded actions (U_v deg^2/frame^2, U_a deg^2/frame^4, mu_v deg/frame, spike x)."""
    row: dict = {"episode": record.episode, "seed": record.seed}
    for prefix, values in (("obs", record.observed), ("action", record.commanded)):
        if values.shape[0] >= 4:
            metrics = smoothness_metrics(values, record.boundaries)
        else:  # too short for the variance of second differences (an immediate termination)
            metrics = dict.fromkeys(METRIC_NAMES, math.nan)
        row.update({f"{prefix}_{k}": float(v) for k, v in metrics.items()})
    row["success"] = bool(record.success)
    row["num_frames"] = record.num_frames
    row["num_chunks"] = len(record.requests)
    return row


def summarize(rows: list[dict]) -> dict:
    """aggregate() over episodes plus the headline keys: success_rate, spike_mean/std (the
    observed joints' spike), num_successes."""
    agg = aggregate(rows, exclude=("episode", "seed"))
    agg["success_rate"] = agg.get("success_mean", math.nan)
    agg["num_successes"] = sum(bool(r["success"]) for r in rows)
    agg["spike_mean"] = agg.get("obs_spike_mean", math.nan)
    agg["spike_std"] = agg.get("obs_spike_std", math.nan)
    return agg


def _heading(row: dict) -> str:
    return (
        f"Episode {row['episode']} (seed {row['seed']}): success {'yes' if row['success'] else 'no'}, "
        f"{row['num_frames']} frames, {row['num_chunks']} chunks"
    )


# STEM_results.txt: the observed joints' and the commanded actions' metrics, then the success rate.
RESULTS_LAYOUT = TextLayout(
    groups=(("Observed", "obs_"), ("Commanded", "action_")),
    heading=_heading,
    extra_keys=(),
    footer=lambda agg, rows: [f"  Success rate {fmt(agg['success_rate'])} ({agg['num_successes']}/{len(rows)})"],
)


def format_trajectories_csv(records: list[EpisodeRecord]) -> str:
    """One row per episode, frame and joint: commanded action, observed position, and the
    chunk that supplied the action (-1 = initial hold), so every metric can be recomputed."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["episode", "frame", "joint", "commanded", "observed", "chunk", "chunk_start"])
    for rec in records:
        switches = set(rec.switch_frames)
        for t in range(rec.num_frames):
            for j in range(rec.commanded.shape[1]):
                writer.writerow(
                    [rec.episode, t, j, repr(float(rec.commanded[t, j])), repr(float(rec.observed[t, j])),
                     rec.source[t], int(t in switches)]
                )
    return buf.getvalue()


def validate_results(records: list[EpisodeRecord], rows: list[dict], agg: dict) -> None:
    """Refuse to write numbers that cannot be right (wrong shapes, non-finite trajectories)."""
    for rec in records:
        if rec.commanded.shape != rec.observed.shape or rec.commanded.ndim != 2:
            raise RuntimeError(f"episode {rec.episode}: commanded {rec.commanded.shape} and observed {rec.observed.shape} differ")
        if not (np.isfinite(rec.commanded).all() and np.isfinite(rec.observed).all()):
            raise RuntimeError(f"episode {rec.episode}: the trajectory has non-finite values; results not written")
        if len(rec.source) != rec.num_frames:
            raise RuntimeError(f"episode {rec.episode}: chunk sources do not cover every frame")
    for key in ("obs_U_a_mean", "action_U_a_mean", "spike_mean", "success_rate"):
        if key not in agg:
            raise RuntimeError(f"aggregate lacks {key}")
    if len(rows) != len(records):
        raise RuntimeError("one metric row per episode expected")


def episode_plot_png(record: EpisodeRecord, title: str, joint_names=None) -> bytes:
    """One panel per joint: commanded actions (line), observed joint positions (dots), dashed
    lines where a chunk takes over. Returns PNG bytes."""
    from lerobot_policy_act_smooth.evaluation.plots import trajectories_png

    outcome = "success" if record.success else "no success"
    return trajectories_png(
        record.observed, record.switch_frames, joint_names, f"{title}: {outcome}", line=record.commanded,
        points_label="observed joint", line_label="commanded action",
    )


def write_results(config: SimEvalConfig, records: list[EpisodeRecord], title: str, header_lines: list[str],
                  settings: dict, timing: dict, joint_names=None) -> dict:
    """Check the numbers, render every plot, then write every file atomically; returns the
    STEM_metrics.json object. A failure before the first write leaves no partial results."""
    rows = [episode_row(r) for r in records]
    agg = summarize(rows)
    validate_results(records, rows, agg)
    pngs = {}
    if config.plots:
        for rec in records:
            title = f"{Path(str(config.output)).name} episode {rec.episode} (seed {rec.seed})"
            pngs[plot_path(config.output, rec.episode)] = episode_plot_png(rec, title, joint_names)
    trajectories_text = format_trajectories_csv(records)
    episodes_json = [
        {**row, "success_frame": rec.success_frame, "terminated": rec.terminated, "truncated": rec.truncated,
         "switch_frames": rec.switch_frames, "boundaries": rec.boundaries, "requests": rec.requests}
        for rec, row in zip(records, rows)
    ]
    paths = output_paths(config.output)
    files = {**{k: str(p) for k, p in paths.items()}, "plots": [str(p) for p in pngs]}
    metadata = run_metadata(config=config, seed=config.seed)

    for path, data in pngs.items():
        atomic_write_bytes(path, data)
    atomic_write_text(paths["trajectories"], trajectories_text)
    atomic_write_json(paths["run"], metadata)
    return write_metric_files(
        config.output, rows, title, metadata, header_lines, {"settings": settings, "timing": timing, "files": files},
        agg=agg, layout=RESULTS_LAYOUT, json_episodes=episodes_json,
    )
