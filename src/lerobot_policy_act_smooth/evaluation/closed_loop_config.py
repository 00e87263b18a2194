"""Options of closed-loop evaluation and every check of them, made before anything runs.

:class:`SimEvalConfig` is what ``actsmooth-sim-eval`` parses; the functions here turn it and
a loaded policy into the settings of a run (output paths, latency, committed actions d,
request threshold, cameras) or raise :class:`SimEvalError` with a message that names the
problem and the fix. The run itself is in :mod:`closed_loop`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.evaluation.async_timeline import committed_actions_for_latency, max_supported_latency_ms
from lerobot_policy_act_smooth.evaluation.post_filter import check_filter_args
from lerobot_policy_act_smooth.evaluation.report_files import result_paths

IMAGE_PREFIX = "observation.images."
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"


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
    # STEM_chunks.npz, STEM_reference_trajectories.csv, STEM_epN_trajectories.png and STEM_run.json.
    output: str | None = None
    # Inference latency in ms (a number) or "measured" (median of warm predict calls here).
    # act_smooth: a latency beyond the policy's D passes the d - D oldest committed actions as past
    # (docs/closed_loop.md, "Latency beyond D").
    latency_ms: str = "35"
    # act (synchronous): the arm holds its last action for ceil(latency * fps / 1000) frames while
    # each chunk is computed, as a stock select_action loop does. false: no frames pass while a
    # chunk is computed (the latency is not simulated; the earlier reports' vanilla ACT).
    sync_hold: bool = False
    # EMA post-filter on the commands sent to the arm (the LeRobot proposal for the SO-101):
    # y_t = y_{t-1} + clip(alpha (x_t - y_{t-1}), +-ema_max_delta deg). Unset: no filter.
    ema_alpha: float | None = None
    # The filter's per-frame velocity clip in degrees (null: no clip).
    ema_max_delta: float | None = 1.25
    # act_smooth: request the next chunk when this many actions are left (d <= threshold <= C).
    # Default: d (d + blend_frames with blending). Not used by act, which runs synchronously.
    threshold: int | None = None
    # act_smooth: overlap blending, the plan's inference-time reference. The next chunk is requested
    # L = blend_frames actions early and its first L frames crossfade linearly from the old chunk
    # (docs/closed_loop.md). 0: no blending, the new chunk takes over at once.
    blend_frames: int = 0
    # Frames per episode at most (the environment's own limit when unset).
    max_steps: int | None = None
    device: str = "cpu"
    # Write the per-episode trajectory plots.
    plots: bool = True
    # Also run the scripted demonstrator (the dataset's) on every episode's scene, without
    # cameras: the demo_* metrics and the success ceiling that closed-loop ratios divide by.
    reference: bool = True
    # Replace result files of an earlier run with the same output stem.
    overwrite: bool = False


def output_paths(stem: str | Path) -> dict[str, Path]:
    """The files of a run besides the plots: the metric files, the trajectories, the raw chunks,
    the demonstrator's trajectories (written only with --reference=true) and the run metadata."""
    return {
        **result_paths(stem),
        "trajectories": Path(f"{stem}_trajectories.csv"),
        "chunks": Path(f"{stem}_chunks.npz"),
        "reference_trajectories": Path(f"{stem}_reference_trajectories.csv"),
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
    if not isinstance(config.blend_frames, int) or config.blend_frames < 0:
        raise SimEvalError(f"--blend_frames must be a whole number of frames >= 0 (0: no blending), got {config.blend_frames!r}")
    if config.blend_frames and config.threshold is not None:
        raise SimEvalError("--blend_frames sets the request threshold (d + blend_frames): leave --threshold unset")
    if not isinstance(config.reference, bool):
        raise SimEvalError(f"--reference must be true or false, got {config.reference!r}")
    if not isinstance(config.sync_hold, bool):
        raise SimEvalError(f"--sync_hold must be true or false, got {config.sync_hold!r}")
    if config.ema_alpha is not None:
        try:
            check_filter_args(config.ema_alpha, config.ema_max_delta)
        except ValueError as err:
            raise SimEvalError(f"--ema_alpha/--ema_max_delta: {err}") from None
    if not config.output:
        raise SimEvalError("no output given: pass --output=STEM (files STEM_results.txt, STEM_metrics.json, ...)")
    # Like the replay: an existing folder (or a value ending in "/") means STEM = folder/sim_eval.
    if str(config.output).endswith(("/", "\\")) or Path(config.output).is_dir():
        config.output = str(Path(config.output) / "sim_eval")
    parse_latency(config.latency_ms)
    if not config.overwrite:
        from lerobot_policy_act_smooth.evaluation.report_files import refuse_earlier_results

        refuse_earlier_results(output_paths(config.output).values(), SimEvalError)


def load_predictor(config: SimEvalConfig):
    """The ChunkPredictor at --policy.path; a missing or unreadable checkpoint is a SimEvalError."""
    from lerobot_policy_act_smooth.inference import load_chunk_predictor

    try:
        predictor = load_chunk_predictor(config.policy.path, device=config.device)
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise SimEvalError(f"cannot load the policy at {config.policy.path}: {err}") from err
    return predictor


def resolve_delay_and_threshold(predictor, latency_ms: float, fps: float, threshold: int | None,
                                blend_frames: int = 0) -> tuple[int, int]:
    """(d, threshold) for act_smooth, checked against the policy's C. d may exceed the policy's D:
    the timeline then passes the d - D oldest committed actions as past. With blending the
    threshold is d + blend_frames."""
    d = committed_actions_for_latency(latency_ms, fps)
    if d > predictor.chunk_size:
        raise SimEvalError(
            f"a latency of {latency_ms:g} ms at {fps:g} fps commits d={d} actions, more than the chunk size "
            f"C={predictor.chunk_size}: a chunk would run out before the next one arrives (the largest "
            f"latency this policy can run at is {max_supported_latency_ms(predictor.chunk_size, fps):.1f} ms; "
            "pass a smaller --latency_ms or train with a larger chunk_size)"
        )
    if blend_frames and d + blend_frames > predictor.chunk_size:
        raise SimEvalError(
            f"--blend_frames={blend_frames} at d={d} committed actions needs chunks of at least d + L = "
            f"{d + blend_frames} actions; this policy's chunk size is C={predictor.chunk_size}: pass a smaller "
            "--blend_frames or --latency_ms"
        )
    threshold = d + blend_frames if threshold is None else int(threshold)
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
