"""A post-hoc command filter: exponential moving average with a per-frame velocity clip.

This is the inference-time smoothing LeRobot users propose for the SO-101 (a low-pass filter on
the commanded joint targets just before they are sent, default alpha 0.25 and 1.25 deg per
control tick), built here as a reference the training-only methods must beat. It smooths
whatever the policy sends, so it also delays it: the latency sweep measures what that costs.

    y_0 = x_0
    y_t = y_{t-1} + clip(alpha * (x_t - y_{t-1}), -max_delta, +max_delta)      (per joint)

Actions are joint targets in degrees, one per frame.
"""

from __future__ import annotations

import math

import numpy as np


def check_filter_args(alpha: float, max_delta: float | None) -> None:
    """alpha in (0, 1] (1 = no averaging) and max_delta > 0 deg/frame or None (no clip)."""
    if not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
        raise ValueError(f"the EMA alpha must be in (0, 1] (1 passes the commands through), got {alpha!r}")
    if max_delta is not None and (not isinstance(max_delta, (int, float)) or not math.isfinite(max_delta)
                                  or max_delta <= 0):
        raise ValueError(f"the velocity clip must be a positive number of degrees per frame, got {max_delta!r}")


class EmaVelocityClip:
    """The filter as a stateful object, one command at a time; ``reset()`` at every episode start."""

    def __init__(self, alpha: float = 0.25, max_delta: float | None = 1.25):
        check_filter_args(alpha, max_delta)
        self.alpha, self.max_delta = float(alpha), max_delta
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._last = None

    def __call__(self, action: np.ndarray) -> np.ndarray:
        """The filtered command [A] for the policy's command ``action`` [A]."""
        x = np.asarray(action, dtype=np.float64)
        if self._last is None:
            self._last = x.copy()
            return x.copy()
        step = self.alpha * (x - self._last)
        if self.max_delta is not None:
            step = np.clip(step, -self.max_delta, self.max_delta)
        self._last = self._last + step
        return self._last.copy()


def ema_velocity_clip(actions: np.ndarray, alpha: float = 0.25, max_delta: float | None = 1.25) -> np.ndarray:
    """The filtered commands [T, A] (deg) of a whole sequence of commands [T, A] (deg)."""
    actions = np.asarray(actions, dtype=np.float64)
    if actions.ndim != 2:
        raise ValueError(f"actions must be [T, A], got shape {actions.shape}")
    filt = EmaVelocityClip(alpha, max_delta)
    return np.stack([filt(a) for a in actions]) if len(actions) else actions.copy()
