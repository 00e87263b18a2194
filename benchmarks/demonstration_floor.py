"""How far two demonstrations of the same scene lie apart: the MAE floor the data set.

    .venv/bin/python benchmarks/demonstration_floor.py [--scenes=10] [--seed=0] [--json=floor.json]

The simulated operator varies pace, pauses, tremor and corrections from take to take, and no
observation reveals the next take's choices. For each scene (cube and goal from one seed) two
takes are recorded with different operator seeds. For every chunk boundary t of take A
(K <= t, t + D + C < N), the most similar moment u of take B is found (nearest neighbour on what
a policy sees: the K + D prefix actions and the environment state), and the MAE between A's next
C actions and B's next C actions from u is taken, in degrees. Both directions, every scene.

This is the error of a predictor that knows another take of the very same scene, so it bounds the
unpredictable part of the demonstrations from above; gt-prefix replay MAE near it means the
policy has learnt what the data can teach.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

K, D, C = 4, 2, 30


def _windows(actions: np.ndarray, env_states: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boundary frames, [n, (K+D)*6 + env] features, [n, C, 6] next chunks) of one take."""
    frames = np.arange(K, len(actions) - D - C)
    feats = np.stack([np.concatenate([actions[t - K : t + D].ravel(), env_states[t]]) for t in frames])
    chunks = np.stack([actions[t + D : t + D + C] for t in frames])
    return frames, feats, chunks


def nearest_take_mae(a: tuple, b: tuple) -> float:
    """Mean over A's boundaries of the MAE between A's chunk and B's chunk at the nearest moment."""
    _, fa, ca = a
    _, fb, cb = b
    scale = np.concatenate([fa, fb]).std(axis=0) + 1e-6  # features in comparable units
    dist = (((fa[:, None, :] - fb[None, :, :]) / scale) ** 2).sum(-1)
    nearest = dist.argmin(axis=1)
    return float(np.abs(ca - cb[nearest]).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from lerobot_policy_act_smooth.sim.dataset import episode_seed, record_demonstration
    from lerobot_policy_act_smooth.sim.env import SO101JointEnv

    env = SO101JointEnv(cameras=None, max_steps=2000)
    per_scene = []
    for scene in range(args.scenes):
        seed = episode_seed(args.seed, scene, 0)
        takes = [record_demonstration(env, seed, operator_seed=op) for op in (1, 2)]
        if not all(t.success for t in takes):
            # the dataset writer retries a failed take, so it is never a demonstration
            print(f"scene {scene + 1}/{args.scenes}: a take failed the success test; skipped", flush=True)
            continue
        w = [_windows(t.actions.astype(np.float64), t.env_states.astype(np.float64)) for t in takes]
        mae = 0.5 * (nearest_take_mae(w[0], w[1]) + nearest_take_mae(w[1], w[0]))
        per_scene.append(mae)
        print(f"scene {scene + 1}/{args.scenes}: takes of {len(takes[0].actions)} and {len(takes[1].actions)} "
              f"frames, nearest-take chunk MAE {mae:.3f} deg", flush=True)
    values = np.array(per_scene)
    print(f"demonstration floor (nearest other take of the same scene): MAE {values.mean():.3f} deg mean, "
          f"{np.median(values):.3f} deg median (std over scenes {values.std(ddof=1):.3f}, {len(values)} scenes)")
    if args.json:
        Path(args.json).write_text(json.dumps({"scenes": per_scene, "mae_mean": float(values.mean()),
                                               "mae_median": float(np.median(values)),
                                               "K": K, "D": D, "C": C, "seed": args.seed}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
