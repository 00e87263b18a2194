"""Evaluation: smoothness metrics, offline replay, closed-loop evaluation, plots.

Only the light metric functions are imported here; replay, plots and the CLIs import
their heavier dependencies (torch, LeRobot datasets, matplotlib) inside their own modules.
"""

from lerobot_policy_act_smooth.evaluation.metrics import (
    acceleration_variance,
    aggregate,
    boundary_spike,
    episode_metrics,
    mean_abs_error,
    mean_abs_velocity,
    smoothness_metrics,
    split_acceleration_variance,
    velocity_variance,
)

__all__ = [
    "acceleration_variance",
    "aggregate",
    "boundary_spike",
    "episode_metrics",
    "mean_abs_error",
    "mean_abs_velocity",
    "smoothness_metrics",
    "split_acceleration_variance",
    "velocity_variance",
]
