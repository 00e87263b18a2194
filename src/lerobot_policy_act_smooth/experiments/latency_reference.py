"""The scripted demonstrator's reference, run once per latency sweep and shared by its evaluations.

Every evaluation of a sweep runs the same scenes (env.reset(seed + i)), so the demonstrator's
episodes are the same for all of them: the sweep records them once into
OUTPUT_DIR/latency/reference.npz and runs `actsmooth-sim-eval --reference=false`. The demonstrator's
figures of an evaluated episode are then scored from the stored episode at that episode's own
boundaries, by the same functions sim-eval uses (closed_loop_results.demo_scores / demo_profiles),
so they equal what `--reference=true` would have written.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..evaluation.closed_loop_results import demo_profiles, demo_scores


def reference_file(root: Path) -> Path:
    return root / "reference.npz"


def record_reference(root: Path, seeds: list[int], fps: int = 30, stream=sys.stdout) -> dict[int, object]:
    """The demonstrator's episode of every seed, from reference.npz when it holds them all, else
    recorded now (without cameras, as the datasets are) and written atomically."""
    from ..sim.dataset import MAX_EPISODE_FRAMES, Demonstration, record_demonstration
    from ..sim.env import SO101JointEnv

    path = reference_file(root)
    if path.is_file():
        with np.load(path) as stored:
            if all(f"s{s}_actions" in stored for s in seeds):
                return {s: Demonstration(s, bool(stored[f"s{s}_success"]), stored[f"s{s}_actions"],
                                         stored[f"s{s}_states"], stored[f"s{s}_env_states"]) for s in seeds}
    env = SO101JointEnv(cameras=None, max_steps=MAX_EPISODE_FRAMES + 1, fps=fps)
    demos, arrays, started = {}, {}, time.time()
    try:
        for i, seed in enumerate(seeds):
            demo = record_demonstration(env, seed=seed, fps=fps)
            demos[seed] = demo
            arrays.update({f"s{seed}_actions": demo.actions, f"s{seed}_states": demo.states,
                           f"s{seed}_env_states": demo.env_states, f"s{seed}_success": np.asarray(demo.success)})
            print(f"[latency] demonstrator reference {i + 1}/{len(seeds)} (seed {seed}): {len(demo.actions)} frames, "
                  f"success {'yes' if demo.success else 'no'}; {time.time() - started:.0f}s elapsed", file=stream, flush=True)
    finally:
        env.close()
    root.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return demos


def with_reference(episode: dict, demo, fps: float) -> dict:
    """One evaluated episode's row (from STEM_metrics.json) with the demonstrator's figures at its
    boundaries; a row that has them already (an evaluation run with --reference=true) is kept."""
    if "demo_action_U_a" in episode:
        return episode
    boundaries = episode["boundaries"]
    metric_frames = episode.get("metric_frames", boundaries)
    return {**episode, **demo_scores(demo, metric_frames, fps), **demo_profiles(demo, boundaries)}
