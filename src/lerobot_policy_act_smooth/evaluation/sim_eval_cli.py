"""actsmooth-sim-eval: closed-loop evaluation of a trained policy in the simulated SO-101.

    actsmooth-sim-eval --policy.path=outputs/train/run/checkpoints/last/pretrained_model \\
        --episodes=10 --seed=0 --output=outputs/eval/run_sim [--latency_ms=35|measured] \\
        [--threshold=N] [--max_steps=N] [--device=cpu] [--plots=false] [--reference=false] \\
        [--overwrite=true]

See docs/closed_loop.md for the timing model and the files written.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from lerobot_policy_act_smooth.evaluation.closed_loop import SimEvalConfig, SimEvalError, run_sim_eval
    from lerobot_policy_act_smooth.evaluation.command import run_command

    return run_command(SimEvalConfig, run_sim_eval, SimEvalError, argv)


if __name__ == "__main__":
    sys.exit(main())
