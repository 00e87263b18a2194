"""actsmooth-sim-eval: closed-loop evaluation of a trained policy in the simulated SO-101.

    actsmooth-sim-eval --policy.path=outputs/train/run/checkpoints/last/pretrained_model \\
        --episodes=10 --seed=0 --output=outputs/eval/run_sim [--latency_ms=35|measured] \\
        [--threshold=N] [--max_steps=N] [--device=cpu] [--plots=false] [--overwrite=true]

See docs/closed_loop.md for the timing model and the files written.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    # Offline machines: LeRobot must never try the hub; the simulator renders headless.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    import draccus

    from lerobot_policy_act_smooth.evaluation.closed_loop import SimEvalConfig, SimEvalError, run_sim_eval

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        config = draccus.parse(config_class=SimEvalConfig, args=args)
        run_sim_eval(config)
    except SimEvalError as err:
        print(f"actsmooth-sim-eval: error: {err}", file=sys.stderr)
        return 2
    except draccus.utils.DecodingError as err:
        print(f"actsmooth-sim-eval: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
