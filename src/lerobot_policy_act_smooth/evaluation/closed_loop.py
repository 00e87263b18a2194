"""Closed-loop evaluation in the simulated SO-101 with asynchronous-inference timing.

A trained policy drives the simulator at its fps. For act_smooth the timing of a real
asynchronous robot client is simulated deterministically (see :mod:`async_timeline` and
docs/closed_loop.md): an inference latency commits d actions, the policy's own executed and
committed actions form the prefix of the next request, and the new chunk takes over after
the committed ones. LeRobot's act runs its chunks back to back, synchronously (the vanilla
ACT baseline). Metrics are computed on the commanded actions and on the observed joint
positions; success is the environment's ``info["is_success"]``. With ``reference`` (default)
the scripted demonstrator that records the datasets also runs every episode's scene (same
seed), so each closed-loop figure has a reference on the same scenes (``demo_*``).

Python API: :func:`run_sim_eval` (used by the CLI ``actsmooth-sim-eval`` and by the
experiment runner). Its options and their checks are in :mod:`closed_loop_config`, the
metrics and files in :mod:`closed_loop_results`. Heavy imports (torch, mujoco, matplotlib)
happen inside functions.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from lerobot_policy_act_smooth.evaluation.async_timeline import ChunkTimeline, hold_frames_for_latency
from lerobot_policy_act_smooth.evaluation.closed_loop_config import (
    ENV_STATE_KEY,
    IMAGE_PREFIX,
    STATE_KEY,
    PolicyPathConfig,
    SimEvalConfig,
    SimEvalError,
    cameras_for,
    check_features,
    load_predictor,
    output_paths,
    parse_latency,
    plot_path,
    resolve_delay_and_threshold,
    validate_config,
)
from lerobot_policy_act_smooth.evaluation.closed_loop_results import EpisodeRecord, write_results
from lerobot_policy_act_smooth.evaluation.command import seed_everything
from lerobot_policy_act_smooth.evaluation.post_filter import EmaVelocityClip

__all__ = ["EpisodeRecord", "PolicyPathConfig", "SimEvalConfig", "SimEvalError", "output_paths", "plot_path",
           "run_episode", "run_sim_eval"]

# Warm calls timed for --latency_ms=measured (after two untimed ones); the median is used.
LATENCY_TIMED_CALLS = 5


# -- the policy's inputs ---------------------------------------------------------------------


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
    hold_frames: int = 0,
    post_filter: EmaVelocityClip | None = None,
    blend_frames: int = 0,
) -> EpisodeRecord:
    """Run one episode: reset with ``seed``, then step until the environment terminates or
    truncates (or max_steps frames). ``progress(t)`` is called every frame if given.

    hold_frames: act only, frames the arm holds while each chunk is computed (synchronous).
    post_filter: filters every command before it is sent; the record's commanded actions are the
    filtered ones (what the arm was sent), the policy's prefix its own unfiltered actions.
    blend_frames: act_smooth only, frames crossfaded from the old chunk into the new one."""
    observation, info = env.reset(seed=seed)
    scene = observation.get(ENV_STATE_KEY)
    timeline = ChunkTimeline(
        policy_type=predictor.policy_type,
        chunk_size=predictor.chunk_size,
        action_dim=predictor.action_dim,
        delay=delay,
        threshold=threshold,
        past_length=predictor.past_length,
        n_action_steps=predictor.n_action_steps,
        max_delay=predictor.max_delay if predictor.policy_type == "act_smooth" else None,
        hold_frames=hold_frames if predictor.policy_type == "act" else 0,
        blend_frames=blend_frames if predictor.policy_type == "act_smooth" else 0,
    )
    if post_filter is not None:
        post_filter.reset()
    sent = []
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
        if post_filter is not None:
            action = post_filter(action)
        sent.append(action)
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
        commanded=np.stack(sent),
        observed=np.stack(observed),
        source=list(timeline.executed_source),
        requests=[r.as_dict() for r in timeline.requests],
        switch_frames=timeline.switch_frames(num_frames),
        boundaries=timeline.metric_boundaries(num_frames),
        kinks=timeline.kink_frames(num_frames) if timeline.blend_frames else None,
        success=success,
        success_frame=success_frame,
        terminated=bool(terminated),
        truncated=bool(truncated),
        predict_seconds=predict_seconds,
        chunks=np.stack([r.chunk for r in timeline.requests]),
        initial_environment_state=None if scene is None else np.asarray(scene).copy(),
    )


def run_reference(env, seed: int, fps: float):
    """The scripted demonstrator (the one that records the datasets, sim/dataset.py) on the scene
    of ``env.reset(seed=seed)``: its full episode, not cut at --max_steps (its own length is part
    of the reference). Returns a sim.dataset.Demonstration (actions, states, success)."""
    from lerobot_policy_act_smooth.sim.dataset import record_demonstration

    return record_demonstration(env, seed=seed, fps=int(round(fps)))


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
        elapsed = now - self.start
        done = self.done_frames + t
        left = elapsed / done * max(self.episodes * self.frames - done, 0) if done else float("nan")
        self._print(f"episode {self.episode + 1}/{self.episodes} frame {t}/{self.frames} "
                    f"elapsed {elapsed:.0f}s, about {left:.0f}s left (at most)")

    def end(self, record: EpisodeRecord):
        self.done_frames += record.num_frames
        demo = record.reference
        reference = "" if demo is None else f" (demonstrator: {'yes' if demo.success else 'no'}, {len(demo.actions)} frames)"
        self._print(
            f"episode {self.episode + 1}/{self.episodes} done: {record.num_frames} frames, "
            f"{len(record.requests)} chunks, success {'yes' if record.success else 'no'}{reference}, "
            f"{time.perf_counter() - self.start:.1f}s elapsed"
        )

    def _print(self, text: str):
        print(f"[sim-eval] {text}", file=self.stream, flush=True)


# -- the command -----------------------------------------------------------------------------


def _default_env_factory(cameras, max_steps, seed):
    from lerobot_policy_act_smooth.sim.env import SO101JointEnv

    kwargs = {"cameras": cameras, "seed": seed}
    if max_steps is not None:
        kwargs["max_steps"] = max_steps
    return SO101JointEnv(**kwargs)


def _reference_env(env, fps: float):
    """The env the demonstrator runs in: the policy's when it renders no camera (the demonstrator
    needs no images, and the reset with the same seed gives the same scene), else one without
    cameras, as the dataset records in."""
    if not getattr(env, "cameras", None):
        return env
    from lerobot_policy_act_smooth.sim.dataset import MAX_EPISODE_FRAMES
    from lerobot_policy_act_smooth.sim.env import SO101JointEnv

    return SO101JointEnv(cameras=None, max_steps=MAX_EPISODE_FRAMES + 1, fps=int(round(fps)))


def run_sim_eval(config: SimEvalConfig, predictor=None, env_factory=None) -> dict:
    """Evaluate a policy in closed loop and write the result files. Returns the JSON object
    written to STEM_metrics.json: ``{"aggregate", "episodes", "settings", "timing", "files", "run"}``.

    predictor / env_factory: for tests, an already loaded predictor (its checkpoint path is
    still recorded) and a callable ``(cameras, max_steps, seed) -> env``.
    """
    validate_config(config, check_policy_path=predictor is None)
    if predictor is None:
        predictor = load_predictor(config)
    latency = parse_latency(config.latency_ms)
    if predictor.policy_type not in ("act_smooth", "act"):
        raise SimEvalError(f"policy type {predictor.policy_type!r} is not supported: use act_smooth or act")

    cameras = cameras_for(predictor)
    try:
        env = (env_factory or _default_env_factory)(cameras, config.max_steps, config.seed)
    except (ValueError, KeyError) as err:
        raise SimEvalError(f"the simulator cannot provide the cameras this policy needs ({cameras}): {err}") from err
    reference_env = None
    try:
        fps = float(env.fps)
        first_observation, _ = env.reset(seed=config.seed)
        check_features(predictor, first_observation)

        seed_everything(config.seed)
        measured_ms = measure_latency_ms(predictor, first_observation) if latency == "measured" else None
        latency_ms = measured_ms if measured_ms is not None else float(latency)
        hold = 0
        if predictor.policy_type == "act_smooth":
            delay, threshold = resolve_delay_and_threshold(predictor, latency_ms, fps, config.threshold,
                                                           config.blend_frames)
            timing = (
                f"asynchronous: latency {latency_ms:.1f} ms{' (measured)' if measured_ms is not None else ''} at "
                f"{fps:g} fps -> d={delay} committed actions, next request at {threshold} actions left"
            )
            if config.blend_frames:
                timing += f"; the last {config.blend_frames} actions of each chunk crossfaded into the next"

            if delay > predictor.max_delay:
                timing += (f"; d exceeds the policy's D={predictor.max_delay}: the {delay - predictor.max_delay} "
                           "oldest committed actions are passed as past")
                print(f"[sim-eval] note: {timing}", file=sys.stderr, flush=True)
        elif config.blend_frames:
            raise SimEvalError("--blend_frames is for act_smooth (asynchronous chunks that overlap); this policy is "
                               f"{predictor.policy_type}: leave --blend_frames at 0")
        elif config.sync_hold:
            delay, threshold = 0, None
            hold = hold_frames_for_latency(latency_ms, fps)
            timing = (f"synchronous: latency {latency_ms:.1f} ms at {fps:g} fps -> the arm holds {hold} frames "
                      f"while each chunk is computed, then executes {predictor.n_action_steps} actions")
        else:
            delay, threshold = 0, None
            timing = f"synchronous: chunks back to back, {predictor.n_action_steps} actions per chunk (latency not simulated)"
        post_filter = None
        if config.ema_alpha is not None:
            post_filter = EmaVelocityClip(config.ema_alpha, config.ema_max_delta)
            clip = "no clip" if config.ema_max_delta is None else f"clip {config.ema_max_delta:g} deg/frame"
            timing += f"; commands EMA-filtered (alpha {config.ema_alpha:g}, {clip})"

        frames_per_episode = config.max_steps or int(getattr(env, "max_steps", 0) or 0) or 1
        progress = _Progress(config.episodes, frames_per_episode)
        records = []
        reference_seconds = 0.0
        if config.reference:
            reference_env = _reference_env(env, fps)
        started = time.perf_counter()
        for i in range(config.episodes):
            seed_everything(config.seed + i)
            progress.begin(i)
            record = run_episode(env, predictor, episode=i, seed=config.seed + i, delay=delay, threshold=threshold,
                                 max_steps=config.max_steps, progress=progress, hold_frames=hold,
                                 post_filter=post_filter, blend_frames=config.blend_frames)
            if reference_env is not None:
                reference_started = time.perf_counter()
                record.reference = run_reference(reference_env, config.seed + i, fps)
                reference_seconds += time.perf_counter() - reference_started
            progress.end(record)
            records.append(record)
        wall = time.perf_counter() - started - reference_seconds
    finally:
        if reference_env is not None and reference_env is not env:
            reference_env.close()
        close = getattr(env, "close", None)
        if close is not None:
            close()

    all_predict = [s for r in records for s in r.predict_seconds]
    is_async = predictor.policy_type == "act_smooth"
    settings = {
        "policy_path": str(config.policy.path),
        "policy_type": predictor.policy_type,
        "chunk_size": predictor.chunk_size,
        "n_action_steps": predictor.n_action_steps,
        "past_length": predictor.past_length,
        "max_delay": predictor.max_delay,
        "fps": fps,
        "latency_ms": latency_ms if is_async or config.sync_hold else None,
        "sync_hold_frames": hold if not is_async and config.sync_hold else None,
        "stale_frames": max(0, delay - predictor.max_delay) if is_async else 0,
        "ema_alpha": config.ema_alpha,
        "ema_max_delta": config.ema_max_delta if config.ema_alpha is not None else None,
        "latency_measured_ms": measured_ms,
        "committed_actions": delay if is_async else 0,
        "threshold": threshold,
        "blend_frames": config.blend_frames if is_async else 0,
        "cameras": cameras,
        "seeds": [config.seed + i for i in range(config.episodes)],
        "timing": timing,
        "reference": "scripted demonstrator (sim/demonstrator.py, as in the datasets) on the same seeds, without cameras, "
                     "full episodes; scored at the policy's boundaries inside them" if config.reference else None,
    }
    timing_info = {
        "wall_seconds": wall,
        "reference_wall_seconds": reference_seconds if config.reference else None,
        "predict_calls": len(all_predict),
        "predict_ms_median": float(np.median(all_predict) * 1000.0) if all_predict else None,
        "frames": int(sum(r.num_frames for r in records)),
    }
    title = f"Closed-loop evaluation in simulation: {config.policy.path}"
    header_lines = [
        f"Policy {predictor.policy_type}: C={predictor.chunk_size}, K={predictor.past_length}, "
        f"D={predictor.max_delay}; {timing}",
        f"Episodes {config.episodes}, seeds {config.seed}..{config.seed + config.episodes - 1}; "
        "spike = observed joints' (first chunk's start left out); success = info['is_success'] reached during the episode",
    ]
    if config.reference:
        header_lines.append(
            "Demo = the scripted demonstrator on each episode's scene (same seed, full episode), scored at the "
            "policy's switch frames inside it; its success rate is the ceiling"
        )
    payload = write_results(config, records, title, header_lines, settings, timing_info, getattr(env, "joint_names", None))
    agg = payload["aggregate"]
    ceiling = f" (ceiling {agg['demo_success_rate']:.2f})" if "demo_success_rate" in agg else ""
    print(
        f"[sim-eval] {config.episodes} episodes in {wall:.1f}s: observed U_a {agg['obs_U_a_mean']:.4g}, "
        f"commanded U_a {agg['action_U_a_mean']:.4g}, spike {agg['spike_mean']:.3g}x, "
        f"success {agg['success_rate']:.2f}{ceiling}; wrote {output_paths(config.output)['results']}",
        file=sys.stderr,
        flush=True,
    )
    return payload
