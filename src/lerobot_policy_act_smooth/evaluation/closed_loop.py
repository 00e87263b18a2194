"""Closed-loop evaluation in the simulated SO-101 with asynchronous-inference timing.

A trained policy drives the simulator at its fps. For act_smooth the timing of a real
asynchronous robot client is simulated deterministically (see :mod:`async_timeline` and
docs/closed_loop.md): an inference latency commits d actions, the policy's own executed and
committed actions form the prefix of the next request, and the new chunk takes over after
the committed ones. LeRobot's act runs its chunks back to back, synchronously (the vanilla
ACT baseline). Metrics are computed on the commanded actions and on the observed joint
positions; success is the environment's ``info["is_success"]``.

Python API: :func:`run_sim_eval` (used by the CLI ``actsmooth-sim-eval`` and by the
experiment runner). Heavy imports (torch, mujoco, matplotlib) happen inside functions.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.evaluation.async_timeline import (
    ChunkTimeline,
    committed_actions_for_latency,
    max_supported_latency_ms,
)
from lerobot_policy_act_smooth.evaluation.metrics import aggregate, smoothness_metrics

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
METRIC_NAMES = ("U_v", "U_a", "mu_v", "spike", "spike_boundary_mean", "spike_other_mean")
# Warm calls timed for --latency_ms=measured (after two untimed ones); the median is used.
LATENCY_TIMED_CALLS = 5


class SimEvalError(ValueError):
    """A bad input to closed-loop evaluation; the message names the problem and the fix."""


@dataclass
class PolicyPathConfig:
    # A pretrained_model folder written by lerobot-train (act_smooth or LeRobot act).
    path: str | None = None


@dataclass
class SimEvalConfig:
    policy: PolicyPathConfig = field(default_factory=PolicyPathConfig)
    # Number of episodes; episode i resets the environment with seed + i.
    episodes: int = 10
    seed: int = 0
    # Output stem: writes STEM_results.txt, STEM_metrics.json/.csv, STEM_trajectories.csv,
    # STEM_epN_trajectories.png and STEM_run.json.
    output: str | None = None
    # Inference latency in ms (a number) or "measured" (median of warm predict calls here).
    latency_ms: str = "35"
    # act_smooth: request the next chunk when this many actions are left (d <= threshold <= C).
    # Default: d. Not used by act, which runs synchronously.
    threshold: int | None = None
    # Frames per episode at most (the environment's own limit when unset).
    max_steps: int | None = None
    device: str = "cpu"
    # Write the per-episode trajectory plots.
    plots: bool = True
    # Replace result files of an earlier run with the same output stem.
    overwrite: bool = False


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


# -- inputs ----------------------------------------------------------------------------------


def output_paths(stem: str | Path) -> dict[str, Path]:
    stem = str(stem)
    return {
        "results": Path(f"{stem}_results.txt"),
        "json": Path(f"{stem}_metrics.json"),
        "csv": Path(f"{stem}_metrics.csv"),
        "trajectories": Path(f"{stem}_trajectories.csv"),
        "run": Path(f"{stem}_run.json"),
    }


def plot_path(stem: str | Path, episode: int) -> Path:
    return Path(f"{stem}_ep{episode}_trajectories.png")


def parse_latency(value) -> float | str:
    """A latency in ms (>= 0) or the string "measured"."""
    if isinstance(value, str) and value.strip().lower() == "measured":
        return "measured"
    try:
        latency = float(value)
    except (TypeError, ValueError):
        raise SimEvalError(f"--latency_ms must be a number of milliseconds or 'measured', got {value!r}") from None
    if not math.isfinite(latency) or latency < 0:
        raise SimEvalError(f"--latency_ms must be a finite number >= 0, got {value!r}")
    return latency


def validate_config(config: SimEvalConfig, check_policy_path: bool = True) -> None:
    """Checks that need no policy: one clear error per problem, before anything runs."""
    if check_policy_path and not config.policy.path:
        raise SimEvalError("no policy given: pass --policy.path=<output_dir>/checkpoints/<step>/pretrained_model")
    path = Path(str(config.policy.path))
    if check_policy_path and not path.exists():
        raise SimEvalError(
            f"policy checkpoint {path} does not exist: pass the pretrained_model folder written by "
            "lerobot-train (<output_dir>/checkpoints/<step>/pretrained_model)"
        )
    if not isinstance(config.episodes, int) or config.episodes < 1:
        raise SimEvalError(f"--episodes must be a positive number of episodes, got {config.episodes}")
    if config.max_steps is not None and config.max_steps < 3:
        raise SimEvalError(f"--max_steps must be at least 3 frames (U_a needs 3), got {config.max_steps}")
    if config.threshold is not None and config.threshold < 1:
        raise SimEvalError(f"--threshold must be >= 1 action, got {config.threshold}")
    if not config.output:
        raise SimEvalError("no output given: pass --output=STEM (files STEM_results.txt, STEM_metrics.json, ...)")
    # Like the replay: an existing folder (or a value ending in "/") means STEM = folder/sim_eval.
    if str(config.output).endswith(("/", "\\")) or Path(config.output).is_dir():
        config.output = str(Path(config.output) / "sim_eval")
    parse_latency(config.latency_ms)
    if not config.overwrite:
        existing = [str(p) for p in output_paths(config.output).values() if p.exists()]
        if existing:
            raise SimEvalError(
                f"results of an earlier run exist ({', '.join(existing)}): choose another --output "
                "or pass --overwrite=true to replace them"
            )


def resolve_delay_and_threshold(predictor, latency_ms: float, fps: float, threshold: int | None) -> tuple[int, int]:
    """(d, threshold) for act_smooth, checked against the policy's D and C."""
    d = committed_actions_for_latency(latency_ms, fps)
    if d > predictor.max_delay:
        raise SimEvalError(
            f"a latency of {latency_ms:g} ms at {fps:g} fps commits d={d} actions, more than this policy's "
            f"max_delay D={predictor.max_delay}: the largest latency it supports is "
            f"{max_supported_latency_ms(predictor.max_delay, fps):.1f} ms (pass a smaller --latency_ms, "
            "or train with a larger length_prefix_future)"
        )
    threshold = d if threshold is None else int(threshold)
    if not d <= threshold <= predictor.chunk_size:
        raise SimEvalError(
            f"--threshold={threshold} is out of range: it must be between the committed actions d={d} "
            f"and the chunk size C={predictor.chunk_size}"
        )
    return d, threshold


def cameras_for(predictor) -> dict[str, tuple[int, int]] | None:
    """Cameras the environment must render for the policy: name -> (height, width), from the
    policy's image input features (C, H, W)."""
    cams = {}
    for key, shape in predictor.input_features.items():
        if key.startswith(IMAGE_PREFIX):
            if len(shape) != 3:
                raise SimEvalError(f"image feature {key} has shape {shape}, expected (channels, height, width)")
            cams[key[len(IMAGE_PREFIX) :]] = (int(shape[1]), int(shape[2]))
    return cams or None


def check_features(predictor, observation: dict) -> None:
    """The policy's input features must be in the environment's observation, with the same shapes."""
    missing, wrong = [], []
    for key, shape in predictor.input_features.items():
        if key not in observation:
            missing.append(key)
            continue
        value = np.asarray(observation[key])
        got = (value.shape[2], value.shape[0], value.shape[1]) if key.startswith(IMAGE_PREFIX) else value.shape
        if tuple(got) != tuple(shape):
            wrong.append(f"{key} (policy {tuple(shape)}, environment {tuple(got)})")
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"missing from the environment's observation: {', '.join(missing)}")
        if wrong:
            parts.append(f"shape mismatch: {'; '.join(wrong)}")
        raise SimEvalError(
            "the policy needs observation features the simulator does not provide as trained ("
            + "; ".join(parts)
            + f"). The environment provides {sorted(observation)}; train the policy on a dataset recorded "
            "by this simulator (actsmooth-dataset)"
        )
    if predictor.action_dim != np.asarray(observation[STATE_KEY]).shape[-1]:
        raise SimEvalError(
            f"the policy outputs {predictor.action_dim}-dim actions, the simulated arm has "
            f"{np.asarray(observation[STATE_KEY]).shape[-1]} joints"
        )


def policy_observation(predictor, observation: dict) -> dict[str, np.ndarray]:
    """Environment observation -> the predictor's batch of one: raw state arrays [1, *shape]
    float32, images uint8 [H, W, 3] -> float32 [1, 3, H, W] in [0, 1]."""
    out = {}
    for key in predictor.input_features:
        value = np.asarray(observation[key])
        if key.startswith(IMAGE_PREFIX):
            value = value.astype(np.float32).transpose(2, 0, 1) / 255.0
        else:
            value = value.astype(np.float32)
        out[key] = value[None]
    return out


def _prefix_batch(predictor, past: np.ndarray, committed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = predictor.action_dim
    return past.reshape(1, -1, a).astype(np.float32), committed.reshape(1, -1, a).astype(np.float32)


def measure_latency_ms(predictor, observation: dict, calls: int = LATENCY_TIMED_CALLS) -> float:
    """Median wall time (ms) of ``calls`` warm predict calls on one observation, after two
    untimed ones. The prefix has the policy's full K and D (the largest inputs it takes)."""
    obs = policy_observation(predictor, observation)
    state = np.asarray(observation[STATE_KEY], dtype=np.float32)
    if predictor.policy_type == "act_smooth":
        past = np.tile(state, (predictor.past_length, 1))
        committed = np.tile(state, (max(1, predictor.max_delay), 1))
    else:
        past = committed = np.zeros((0, predictor.action_dim), np.float32)
    past, committed = _prefix_batch(predictor, past, committed)
    times = []
    for i in range(2 + calls):
        start = time.perf_counter()
        predictor.predict(obs, past, committed)
        if i >= 2:
            times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


# -- the loop --------------------------------------------------------------------------------


def run_episode(
    env,
    predictor,
    *,
    episode: int,
    seed: int,
    delay: int = 1,
    threshold: int | None = None,
    max_steps: int | None = None,
    progress=None,
) -> EpisodeRecord:
    """Run one episode: reset with ``seed``, then step until the environment terminates or
    truncates (or max_steps frames). ``progress(t)`` is called every frame if given."""
    observation, info = env.reset(seed=seed)
    timeline = ChunkTimeline(
        policy_type=predictor.policy_type,
        chunk_size=predictor.chunk_size,
        action_dim=predictor.action_dim,
        delay=delay,
        threshold=threshold,
        past_length=predictor.past_length,
        n_action_steps=predictor.n_action_steps,
    )
    # The robot holds where it stands while the first chunk is computed (act_smooth).
    timeline.start(np.asarray(observation[STATE_KEY], dtype=np.float64))
    observed, predict_seconds = [], []
    success, success_frame = bool(info.get("is_success", False)), None
    terminated = truncated = False
    t = 0
    while max_steps is None or t < max_steps:
        observed.append(np.asarray(observation[STATE_KEY], dtype=np.float64))
        if timeline.request_due(t):
            past, committed = _prefix_batch(predictor, *timeline.prefix(t))
            start = time.perf_counter()
            chunk = predictor.predict(policy_observation(predictor, observation), past, committed)
            predict_seconds.append(time.perf_counter() - start)
            timeline.accept(t, np.asarray(chunk)[0])
        action = timeline.action(t)
        observation, _, terminated, truncated, info = env.step(action.astype(np.float32))
        t += 1
        if info.get("is_success", False) and not success:
            success, success_frame = True, t
        if progress is not None:
            progress(t)
        if terminated or truncated:
            break
    num_frames = len(observed)
    return EpisodeRecord(
        episode=episode,
        seed=seed,
        commanded=np.stack(timeline.executed),
        observed=np.stack(observed),
        source=list(timeline.executed_source),
        requests=[r.as_dict() for r in timeline.requests],
        switch_frames=timeline.switch_frames(num_frames),
        boundaries=timeline.metric_boundaries(num_frames),
        success=success,
        success_frame=success_frame,
        terminated=bool(terminated),
        truncated=bool(truncated),
        predict_seconds=predict_seconds,
    )


def episode_row(record: EpisodeRecord) -> dict:
    """Flat metric row of one episode: ``obs_*`` on the observed joint positions, ``action_*``
    on the commanded actions (U_v deg^2/frame^2, U_a deg^2/frame^4, mu_v deg/frame, spike x)."""
    row: dict = {"episode": record.episode, "seed": record.seed}
    for prefix, values in (("obs", record.observed), ("action", record.commanded)):
        if values.shape[0] >= 3:
            metrics = smoothness_metrics(values, record.boundaries)
        else:  # too short for second differences (an immediate termination)
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
    successes = sum(bool(r["success"]) for r in rows)
    agg["success_rate"] = successes / len(rows) if rows else math.nan
    agg["num_successes"] = successes
    agg["spike_mean"] = agg.get("obs_spike_mean", math.nan)
    agg["spike_std"] = agg.get("obs_spike_std", math.nan)
    return agg


# -- files -----------------------------------------------------------------------------------


def _fmt(value) -> str:
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    return f"{value:.6g}"


def _metric_lines(get) -> list[str]:
    lines = []
    for label, prefix in (("Observed", "obs_"), ("Commanded", "action_")):
        lines.append(f"  {label:<10} " + "  ".join(f"{k}={get(prefix + k)}" for k in ("U_v", "U_a", "mu_v")))
    for label, prefix in (("Observed", "obs_"), ("Commanded", "action_")):
        lines.append(
            f"  Spike {label:<10} {get(prefix + 'spike')}x  (boundary mean |a| {get(prefix + 'spike_boundary_mean')}, "
            f"other mean |a| {get(prefix + 'spike_other_mean')})"
        )
    return lines


def format_results_text(rows: list[dict], agg: dict, header: list[str]) -> str:
    lines = [*header, "Units: U_v deg^2/frame^2, U_a deg^2/frame^4, mu_v deg/frame, |a| deg/frame^2.", ""]
    for row in rows:
        lines.append(
            f"Episode {row['episode']} (seed {row['seed']}): success {'yes' if row['success'] else 'no'}, "
            f"{row['num_frames']} frames, {row['num_chunks']} chunks"
        )
        lines += _metric_lines(lambda k, row=row: _fmt(row.get(k)))
        lines.append("")
    lines.append(f"Aggregate over {len(rows)} episodes (mean +- std, population std ddof=0)")
    lines += _metric_lines(lambda k: f"{_fmt(agg.get(k + '_mean'))} +- {_fmt(agg.get(k + '_std'))}")
    lines.append(f"  Success rate {_fmt(agg['success_rate'])} ({agg['num_successes']}/{len(rows)})")
    return "\n".join(lines) + "\n"


def format_metrics_csv(rows: list[dict], agg: dict) -> str:
    keys = [k for k in rows[0] if k != "episode"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["episode", *keys])
    for row in rows:
        writer.writerow([row["episode"], *[repr(float(row[k])) for k in keys]])
    agg_of = {"success": "success_rate"}
    for stat in ("mean", "std"):
        values = []
        for k in keys:
            name = agg_of[k] if k in agg_of and stat == "mean" else f"{k}_{stat}"
            values.append(repr(float(agg[name])) if name in agg else "")
        writer.writerow([stat, *values])
    return buf.getvalue()


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
    lines at the frames where a chunk takes over. Returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_joints = record.commanded.shape[1]
    frames = np.arange(record.num_frames)
    fig, axes = plt.subplots(num_joints, 1, figsize=(10, 1.8 * num_joints), sharex=True, squeeze=False)
    for j, ax in enumerate(axes[:, 0]):
        ax.plot(frames, record.commanded[:, j], color="tab:blue", lw=1.0, label="commanded action")
        ax.plot(frames, record.observed[:, j], ".", color="tab:orange", ms=2.0, label="observed joint")
        for b in record.switch_frames:
            ax.axvline(b, color="grey", ls="--", lw=0.6)
        name = joint_names[j] if joint_names is not None and j < len(joint_names) else f"joint {j}"
        ax.set_ylabel(f"{name} (deg)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("frame")
    outcome = "success" if record.success else "no success"
    fig.suptitle(f"{title}: {outcome}; dashed = a new chunk takes over", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


# -- the command -----------------------------------------------------------------------------


class _Progress:
    """Prints 'episode i/N frame t/T' with elapsed and estimated remaining time, at most every 2 s."""

    def __init__(self, episodes: int, frames_per_episode: int, stream=sys.stderr):
        self.episodes, self.frames = episodes, frames_per_episode
        self.stream = stream
        # The first line comes after 2 s, when the time-left estimate has something to go on.
        self.start = self.last = time.perf_counter()
        self.done_frames, self.episode = 0, 0

    def begin(self, episode: int):
        self.episode = episode

    def __call__(self, t: int):
        now = time.perf_counter()
        if now - self.last < 2.0:
            return
        self.last = now
        self._print(t, now)

    def end(self, record: EpisodeRecord):
        self.done_frames += record.num_frames
        print(
            f"[sim-eval] episode {self.episode + 1}/{self.episodes} done: {record.num_frames} frames, "
            f"{len(record.requests)} chunks, success {'yes' if record.success else 'no'}, "
            f"{time.perf_counter() - self.start:.1f}s elapsed",
            file=self.stream,
            flush=True,
        )

    def _print(self, t: int, now: float):
        elapsed = now - self.start
        done = self.done_frames + t
        total = self.episodes * self.frames
        left = elapsed / done * max(total - done, 0) if done else float("nan")
        print(
            f"[sim-eval] episode {self.episode + 1}/{self.episodes} frame {t}/{self.frames} "
            f"elapsed {elapsed:.0f}s, about {left:.0f}s left (at most)",
            file=self.stream,
            flush=True,
        )


def _set_seed(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_sim_eval(config: SimEvalConfig, predictor=None, env_factory=None) -> dict:
    """Evaluate a policy in closed loop and write the result files. Returns the JSON object
    written to STEM_metrics.json: ``{"aggregate", "episodes", "timing", "settings", "run"}``.

    predictor / env_factory: for tests, an already loaded predictor (its checkpoint path is
    still recorded) and a callable ``(cameras, max_steps, seed) -> env``.
    """
    from lerobot_policy_act_smooth.provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, run_metadata

    if predictor is None:
        validate_config(config)
        from lerobot_policy_act_smooth.inference import load_chunk_predictor

        try:
            predictor = load_chunk_predictor(config.policy.path, device=config.device)
        except (FileNotFoundError, ValueError, KeyError) as err:
            raise SimEvalError(f"cannot load the policy at {config.policy.path}: {err}") from err
    else:
        validate_config(config, check_policy_path=False)
    latency = parse_latency(config.latency_ms)
    if predictor.policy_type not in ("act_smooth", "act"):
        raise SimEvalError(f"policy type {predictor.policy_type!r} is not supported: use act_smooth or act")

    cameras = cameras_for(predictor)
    if env_factory is None:
        from lerobot_policy_act_smooth.sim.env import SO101JointEnv

        def env_factory(cameras, max_steps, seed):
            kwargs = {"cameras": cameras, "seed": seed}
            if max_steps is not None:
                kwargs["max_steps"] = max_steps
            return SO101JointEnv(**kwargs)

    try:
        env = env_factory(cameras, config.max_steps, config.seed)
    except (ValueError, KeyError) as err:
        raise SimEvalError(f"the simulator cannot provide the cameras this policy needs ({cameras}): {err}") from err
    try:
        fps = float(env.fps)
        first_observation, _ = env.reset(seed=config.seed)
        check_features(predictor, first_observation)

        _set_seed(config.seed)
        measured_ms = None
        if latency == "measured":
            measured_ms = measure_latency_ms(predictor, first_observation)
            latency_ms = measured_ms
        else:
            latency_ms = float(latency)
        if predictor.policy_type == "act_smooth":
            delay, threshold = resolve_delay_and_threshold(predictor, latency_ms, fps, config.threshold)
            timing = (
                f"asynchronous: latency {latency_ms:.1f} ms{' (measured)' if measured_ms is not None else ''} at "
                f"{fps:g} fps -> d={delay} committed actions, next request at {threshold} actions left"
            )
        else:
            delay, threshold = 0, None
            timing = f"synchronous: chunks back to back, {predictor.n_action_steps} actions per chunk (latency not simulated)"

        frames_per_episode = config.max_steps or int(getattr(env, "max_steps", 0) or 0) or 1
        progress = _Progress(config.episodes, frames_per_episode)
        records = []
        started = time.perf_counter()
        for i in range(config.episodes):
            _set_seed(config.seed + i)
            progress.begin(i)
            record = run_episode(
                env,
                predictor,
                episode=i,
                seed=config.seed + i,
                delay=delay,
                threshold=threshold,
                max_steps=config.max_steps,
                progress=progress,
            )
            progress.end(record)
            records.append(record)
        wall = time.perf_counter() - started
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()

    rows = [episode_row(r) for r in records]
    agg = summarize(rows)
    validate_results(records, rows, agg)
    all_predict = [s for r in records for s in r.predict_seconds]
    settings = {
        "policy_path": str(config.policy.path),
        "policy_type": predictor.policy_type,
        "chunk_size": predictor.chunk_size,
        "n_action_steps": predictor.n_action_steps,
        "past_length": predictor.past_length,
        "max_delay": predictor.max_delay,
        "fps": fps,
        "latency_ms": latency_ms if predictor.policy_type == "act_smooth" else None,
        "latency_measured_ms": measured_ms,
        "committed_actions": delay if predictor.policy_type == "act_smooth" else 0,
        "threshold": threshold,
        "cameras": cameras,
        "seeds": [config.seed + i for i in range(config.episodes)],
        "timing": timing,
    }
    timing_info = {
        "wall_seconds": wall,
        "predict_calls": len(all_predict),
        "predict_ms_median": float(np.median(all_predict) * 1000.0) if all_predict else None,
        "frames": int(sum(r.num_frames for r in records)),
    }
    episodes_json = []
    for rec, row in zip(records, rows):
        episodes_json.append(
            {
                **row,
                "success_frame": rec.success_frame,
                "terminated": rec.terminated,
                "truncated": rec.truncated,
                "switch_frames": rec.switch_frames,
                "boundaries": rec.boundaries,
                "requests": rec.requests,
            }
        )
    metadata = run_metadata(config=config, seed=config.seed)
    payload = {"aggregate": agg, "episodes": episodes_json, "settings": settings, "timing": timing_info, "run": metadata}
    header = [
        f"Closed-loop evaluation in simulation: {config.policy.path}",
        f"Policy {predictor.policy_type}: C={predictor.chunk_size}, K={predictor.past_length}, "
        f"D={predictor.max_delay}; {timing}",
        f"Episodes {config.episodes}, seeds {config.seed}..{config.seed + config.episodes - 1}; "
        "spike = observed joints' (first chunk's start left out); success = info['is_success'] reached during the episode",
    ]

    joint_names = getattr(env, "joint_names", None)
    if joint_names is None:
        try:
            from lerobot_policy_act_smooth.sim.scene import JOINT_NAMES as joint_names
        except ImportError:
            joint_names = None
    paths = output_paths(config.output)
    # Render every plot before the first file is written: a failure leaves no partial results.
    pngs = {}
    if config.plots:
        for rec in records:
            title = f"{Path(str(config.output)).name} episode {rec.episode} (seed {rec.seed})"
            pngs[plot_path(config.output, rec.episode)] = episode_plot_png(rec, title, joint_names)
    plot_files = [str(p) for p in pngs]
    trajectories_text = format_trajectories_csv(records)
    for path, data in pngs.items():
        atomic_write_bytes(path, data)
    atomic_write_text(paths["trajectories"], trajectories_text)
    atomic_write_text(paths["csv"], format_metrics_csv(rows, agg))
    atomic_write_text(paths["results"], format_results_text(rows, agg, header))
    atomic_write_json(paths["run"], metadata)
    payload["files"] = {**{k: str(p) for k, p in paths.items()}, "plots": plot_files}
    atomic_write_json(paths["json"], payload)
    print(
        f"[sim-eval] {config.episodes} episodes in {wall:.1f}s: observed U_a {agg['obs_U_a_mean']:.4g}, "
        f"commanded U_a {agg['action_U_a_mean']:.4g}, spike {agg['spike_mean']:.3g}x, "
        f"success {agg['success_rate']:.2f}; wrote {paths['results']}",
        file=sys.stderr,
        flush=True,
    )
    return payload
