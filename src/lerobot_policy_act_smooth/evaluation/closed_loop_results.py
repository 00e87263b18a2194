"""Metrics and result files of a closed-loop run (see docs/closed_loop.md, "Files").

:class:`EpisodeRecord` is what one episode produced (with the scripted demonstrator's run on
the same scene, when asked for); :func:`write_results` turns the records into the metric rows
(``obs_*`` on the observed joints, ``action_*`` on the commanded actions, ``replan_*`` from the
chunks, ``demo_obs_*`` / ``demo_action_*`` on the demonstrator's, success) and writes every
file: the metric files through :mod:`report_files`, the trajectories CSV, the raw chunks, the
demonstrator's trajectories, the run metadata and the per-episode plots.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lerobot_policy_act_smooth.evaluation.closed_loop_config import SimEvalConfig, output_paths, plot_path
from lerobot_policy_act_smooth.evaluation.metrics import (
    aggregate,
    boundary_profile_lists,
    replan_summary,
    smoothness_metrics,
)
from lerobot_policy_act_smooth.evaluation.report_files import (
    SMOOTHNESS_KEYS,
    SPIKE_KEYS,
    TextLayout,
    fmt,
    write_metric_files,
)
from lerobot_policy_act_smooth.provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, run_metadata

if TYPE_CHECKING:
    from lerobot_policy_act_smooth.sim.dataset import Demonstration

METRIC_NAMES = ("U_v", "U_a", "U_a_inside", "U_a_boundary", "mu_v", "spike", "spike_boundary_mean", "spike_other_mean",
                "spike_transition", "sparc", "ldlj")


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
    # [n_requests, C, A] deg: every request's whole chunk, placed at its switch frame (requests[i]).
    chunks: np.ndarray | None = None
    # observation.environment_state at the reset (cube pose, target): the scene of the episode.
    initial_environment_state: np.ndarray | None = None
    # The scripted demonstrator on the same scene (same seed), when a reference was asked for.
    reference: Demonstration | None = None
    # The scalar metrics' boundaries when they differ from ``boundaries``: with overlap blending,
    # each crossfade's end as well (the boundary profiles stay locked to the switches).
    kinks: list[int] | None = None

    @property
    def metric_frames(self) -> list[int]:
        return self.boundaries if self.kinks is None else self.kinks

    @property
    def num_frames(self) -> int:
        return int(self.commanded.shape[0])

    @property
    def chunk_starts(self) -> list[int]:
        return [int(r["switch_frame"]) for r in self.requests]

    @property
    def reference_boundaries(self) -> list[int]:
        """The policy's boundaries inside the demonstrator's episode: the reference is scored at
        the same frames as the policy (empty without a reference)."""
        if self.reference is None:
            return []
        return reference_boundaries(self.boundaries, len(self.reference.actions))


# -- metrics and files -----------------------------------------------------------------------


def reference_boundaries(boundaries: list[int], num_frames: int) -> list[int]:
    """The switch frames of a policy's episode that fall inside a reference episode of num_frames frames."""
    return [int(b) for b in boundaries if b < num_frames]


def episode_replan(chunks: np.ndarray | None, starts: list[int], num_frames: int) -> dict:
    """``replan_mean`` / ``replan_max`` (deg) of one episode: :func:`metrics.replan_summary` over the
    chunks [n, C, A] placed at ``starts`` whose chunk took over inside the episode (a request near
    the end whose chunk never ran is left out). NaN without chunks or without overlapping ones
    (act_smooth with threshold = d, act with n_action_steps = C: chunks back to back)."""
    if chunks is None:
        return {"replan_mean": math.nan, "replan_max": math.nan}
    inside = [i for i, s in enumerate(starts) if s < num_frames]
    return replan_summary([chunks[i] for i in inside], [starts[i] for i in inside])


def _smoothness(values: np.ndarray, boundaries: list[int], fps: float, prefix: str) -> dict:
    if values.shape[0] >= 4:
        metrics = smoothness_metrics(values, boundaries, fps=fps)
    else:  # too short for the variance of second differences (an immediate termination)
        metrics = dict.fromkeys(METRIC_NAMES, math.nan)
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()}


def episode_profiles(values: np.ndarray, boundaries: list[int], prefix: str) -> dict:
    """``{prefix}profile_speed`` / ``_acc`` / ``_jerk`` lists (:func:`metrics.boundary_profile_lists`)."""
    return boundary_profile_lists(values, boundaries, prefix)


def episode_row(record: EpisodeRecord, fps: float = 30.0) -> dict:
    """Flat metric row of one episode: ``obs_*`` on the observed joint positions, ``action_*``
    on the commanded actions (U_v deg^2/frame^2, U_a deg^2/frame^4, mu_v deg/frame, spikes x,
    SPARC and LDLJ dimensionless at ``fps``), ``replan_mean`` / ``replan_max`` (deg) from the
    chunks; with a reference, ``demo_obs_*`` / ``demo_action_*`` on the demonstrator's whole
    episode scored at the policy's boundaries inside it, ``demo_success``, ``demo_num_frames``."""
    row: dict = {"episode": record.episode, "seed": record.seed}
    row.update(_smoothness(record.observed, record.metric_frames, fps, "obs_"))
    row.update(_smoothness(record.commanded, record.metric_frames, fps, "action_"))
    # A record built without chunks (older callers) has no request frames either: replan NaN.
    starts = record.chunk_starts if record.chunks is not None else []
    row.update(episode_replan(record.chunks, starts, record.num_frames))
    row["success"] = bool(record.success)
    row["num_frames"] = record.num_frames
    row["num_chunks"] = len(record.requests)
    if record.reference is not None:
        row.update(demo_scores(record.reference, record.metric_frames, fps))
    return row


def demo_scores(demo: Demonstration, metric_frames: list[int], fps: float = 30.0) -> dict:
    """The demonstrator's ``demo_obs_*`` / ``demo_action_*`` metrics over its whole episode, scored at
    the policy's metric boundaries that fall inside it, ``demo_success`` and ``demo_num_frames``."""
    frames = reference_boundaries(metric_frames, len(demo.actions))
    return {**_smoothness(demo.states.astype(np.float64), frames, fps, "demo_obs_"),
            **_smoothness(demo.actions.astype(np.float64), frames, fps, "demo_action_"),
            "demo_success": bool(demo.success), "demo_num_frames": len(demo.actions)}


def demo_profiles(demo: Demonstration, boundaries: list[int]) -> dict:
    """The demonstrator's ``demo_obs_profile_*`` / ``demo_action_profile_*`` lists at the policy's switch
    frames inside its episode."""
    frames = reference_boundaries(boundaries, len(demo.actions))
    return {**episode_profiles(demo.states.astype(np.float64), frames, "demo_obs_"),
            **episode_profiles(demo.actions.astype(np.float64), frames, "demo_action_")}


def episode_json_profiles(record: EpisodeRecord) -> dict:
    """The per-episode profile lists of the JSON (policy's, and the demonstrator's at the same switch frames)."""
    out = {**episode_profiles(record.observed, record.boundaries, "obs_"),
           **episode_profiles(record.commanded, record.boundaries, "action_")}
    if record.reference is not None:
        out.update(demo_profiles(record.reference, record.boundaries))
    return out


def summarize(rows: list[dict]) -> dict:
    """aggregate() over episodes plus the headline keys: success_rate, spike_mean/std (the
    observed joints' spike), num_successes; with a reference demo_success_rate and
    demo_num_successes (the demonstrator on the same scenes: the ceiling)."""
    agg = aggregate(rows, exclude=("episode", "seed"))
    agg["success_rate"] = agg.get("success_mean", math.nan)
    agg["num_successes"] = sum(bool(r["success"]) for r in rows)
    agg["spike_mean"] = agg.get("obs_spike_mean", math.nan)
    agg["spike_std"] = agg.get("obs_spike_std", math.nan)
    if rows and all("demo_success" in r for r in rows):
        agg["demo_success_rate"] = agg["demo_success_mean"]
        agg["demo_num_successes"] = sum(bool(r["demo_success"]) for r in rows)
    return agg


def _heading(row: dict) -> str:
    demo = (f"; demonstrator success {'yes' if row['demo_success'] else 'no'}, {row['demo_num_frames']} frames"
            if "demo_success" in row else "")
    return (
        f"Episode {row['episode']} (seed {row['seed']}): success {'yes' if row['success'] else 'no'}, "
        f"{row['num_frames']} frames, {row['num_chunks']} chunks{demo}"
    )


def _footer(agg: dict, rows: list[dict]) -> list[str]:
    lines = [f"  Success rate {fmt(agg['success_rate'])} ({agg['num_successes']}/{len(rows)})"]
    if "demo_success_rate" in agg:
        lines.append(f"  Demonstrator on the same scenes (ceiling): success rate {fmt(agg['demo_success_rate'])} "
                     f"({agg['demo_num_successes']}/{len(rows)})")
    return lines


RESULT_GROUPS = (("Observed", "obs_"), ("Commanded", "action_"), ("Demo obs", "demo_obs_"), ("Demo cmd", "demo_action_"))


def results_layout(rows: list[dict]) -> TextLayout:
    """STEM_results.txt: each group's standard block (report_files), then every other metric of the
    rows as a "key = value" line (the spike over the transition window, SPARC, LDLJ, replan), then
    the success rates. A group no row has (the demonstrator's without a reference) is left out."""
    standard = {prefix + k for _, prefix in RESULT_GROUPS for k in (*SMOOTHNESS_KEYS, *SPIKE_KEYS)}
    extra = tuple(k for k, v in (rows[0] if rows else {}).items() if isinstance(v, float) and k not in standard)
    return TextLayout(groups=RESULT_GROUPS, heading=_heading, extra_keys=extra, footer=_footer)


def format_trajectories_csv(records: list[EpisodeRecord]) -> str:
    """One row per episode, frame and joint: commanded action, observed position, and the
    chunk that supplied the action (-1 = initial hold), so every metric can be recomputed."""
    return _trajectories_csv(
        (rec.episode, rec.commanded, rec.observed, rec.source, set(rec.switch_frames)) for rec in records
    )


def format_reference_csv(records: list[EpisodeRecord]) -> str:
    """The demonstrator's trajectories in the columns of :func:`format_trajectories_csv`:
    ``commanded`` its leader commands, ``observed`` the follower's measured joints, ``chunk`` -1
    (it has no chunks), ``chunk_start`` 1 at the policy's boundaries it is scored at."""
    return _trajectories_csv(
        (rec.episode, rec.reference.actions, rec.reference.states, [-1] * len(rec.reference.actions),
         set(rec.reference_boundaries))
        for rec in records if rec.reference is not None
    )


def _trajectories_csv(episodes) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["episode", "frame", "joint", "commanded", "observed", "chunk", "chunk_start"])
    for episode, commanded, observed, source, starts in episodes:
        for t in range(commanded.shape[0]):
            for j in range(commanded.shape[1]):
                writer.writerow(
                    [episode, t, j, repr(float(commanded[t, j])), repr(float(observed[t, j])), source[t], int(t in starts)]
                )
    return buf.getvalue()


def chunks_npz(records: list[EpisodeRecord]) -> bytes:
    """STEM_chunks.npz: per episode e ``ep{e}_chunks`` [n_requests, C, A] (deg, every chunk the
    policy returned, also the actions a later chunk replaced) and ``ep{e}_starts`` [n_requests]
    (the frame each chunk's first action is placed at, its switch frame)."""
    arrays = {}
    for rec in records:
        arrays[f"ep{rec.episode}_chunks"] = rec.chunks
        arrays[f"ep{rec.episode}_starts"] = np.asarray(rec.chunk_starts, dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
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
        if rec.chunks is None or rec.chunks.ndim != 3 or rec.chunks.shape[0] != len(rec.requests):
            raise RuntimeError(f"episode {rec.episode}: one chunk [C, A] per request expected")
        demo = rec.reference
        if demo is not None:
            # Like with like: the reference must have started from the scene the policy got.
            same_scene = np.array_equal(demo.states[0], rec.observed[0].astype(np.float32)) and (
                rec.initial_environment_state is None
                or np.array_equal(demo.env_states[0], rec.initial_environment_state)
            )
            if not same_scene:
                raise RuntimeError(f"episode {rec.episode}: the demonstrator's scene differs from the policy's (seed {rec.seed})")
            if not (np.isfinite(demo.actions).all() and np.isfinite(demo.states).all()):
                raise RuntimeError(f"episode {rec.episode}: the demonstrator's trajectory has non-finite values")
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


def _float_list(values) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def write_results(config: SimEvalConfig, records: list[EpisodeRecord], title: str, header_lines: list[str],
                  settings: dict, timing: dict, joint_names=None) -> dict:
    """Check the numbers, render every plot, then write every file atomically; returns the
    STEM_metrics.json object. A failure before the first write leaves no partial results."""
    fps = float(settings["fps"])
    rows = [episode_row(r, fps) for r in records]
    agg = summarize(rows)
    validate_results(records, rows, agg)
    pngs = {}
    if config.plots:
        for rec in records:
            title = f"{Path(str(config.output)).name} episode {rec.episode} (seed {rec.seed})"
            pngs[plot_path(config.output, rec.episode)] = episode_plot_png(rec, title, joint_names)
    trajectories_text = format_trajectories_csv(records)
    chunks_bytes = chunks_npz(records)
    with_reference = any(rec.reference is not None for rec in records)
    reference_text = format_reference_csv(records) if with_reference else None
    episodes_json = [
        {**row, "success_frame": rec.success_frame, "terminated": rec.terminated, "truncated": rec.truncated,
         "switch_frames": rec.switch_frames, "boundaries": rec.boundaries, "metric_frames": rec.metric_frames, "requests": rec.requests,
         "initial_environment_state": _float_list(rec.initial_environment_state), **episode_json_profiles(rec),
         **({"demo_boundaries": rec.reference_boundaries,
             "demo_initial_environment_state": _float_list(rec.reference.env_states[0])} if rec.reference is not None else {})}
        for rec, row in zip(records, rows)
    ]
    paths = output_paths(config.output)
    if not with_reference:
        del paths["reference_trajectories"]
    files = {**{k: str(p) for k, p in paths.items()}, "plots": [str(p) for p in pngs]}
    metadata = run_metadata(config=config, seed=config.seed)

    for path, data in pngs.items():
        atomic_write_bytes(path, data)
    atomic_write_text(paths["trajectories"], trajectories_text)
    atomic_write_bytes(paths["chunks"], chunks_bytes)
    if reference_text is not None:
        atomic_write_text(paths["reference_trajectories"], reference_text)
    atomic_write_json(paths["run"], metadata)
    return write_metric_files(
        config.output, rows, title, metadata, header_lines, {"settings": settings, "timing": timing, "files": files},
        agg=agg, layout=results_layout(rows), json_episodes=episodes_json,
    )
