"""What the evaluation commands (actsmooth-replay, actsmooth-sim-eval) share: seeding and the
draccus entry point that turns bad input into one error line and exit status 2."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch: same seed, same numbers."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_command(config_class: type, run: Callable, input_error: type[Exception], argv: list[str] | None) -> int:
    """Parse ``--a.b=value`` flags into ``config_class`` and call ``run(config)``. Bad input
    (``input_error`` or a flag draccus cannot decode) prints one ``error: ...`` line on stderr
    and returns 2; success returns 0."""
    # Offline machines: LeRobot must never try the hub; the simulator renders headless.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    import draccus

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        run(draccus.parse(config_class=config_class, args=args))
    except input_error as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except draccus.utils.DecodingError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0
