"""Smoothness metrics of the research plan, as pure functions over action arrays.

Conventions shared by every function here: those of the original ACTSmooth evaluation script
(pandas), so that our figures and the earlier run's can sit in one table (research-plan.md).

- ``actions`` is a ``[T, J]`` array: T frames recorded at a fixed fps, J joints, joint
  positions in degrees. Differences are taken per joint along the frame axis.
- First differences ``v[i] = x[i+1] - x[i]`` (deg/frame), shape ``[T-1, J]``.
- Second differences ``a[i] = x[i+2] - 2 x[i+1] + x[i]`` (deg/frame^2), shape ``[T-2, J]``.
  Like pandas' ``diff().diff()``, ``a[i]`` is labelled with the later end of its backward
  difference, frame ``f = i + 2``: ``x[f] - 2 x[f-1] + x[f-2]`` belongs to frame f.
- Variances are sample variances (``ddof=1``, pandas' default), per joint; U_v and U_a take
  the maximum over joints.
- ``boundaries`` are frame indices into ``actions`` where a chunk starts, the first
  chunk's start already left out by the caller (it is not a junction between chunks).

Boundary spike window: an acceleration labelled f is "within +-window of a boundary b" when
``b - window <= f <= b + window``, i.e. rows ``i = f - 2`` in ``[b - window - 2, b + window - 2]``
(clipped to ``[0, T-3]``). With the default window 2 that is five accelerations per boundary.
A jump between ``x[b-1]`` and ``x[b]`` (the join of two chunks) shows up in the accelerations
labelled b and b+1 (rows b-2 and b-1), both inside the window. Windows of nearby boundaries are
merged (each acceleration is counted once).

Worked example (docs/evaluation.md has it too): T = 20 frames, one boundary b = 10. The
accelerations are rows 0..17, labelled frames 2..19; the window holds labels 8..12 = rows 6..10;
the other 13 rows are the rest.

Across episodes, :func:`aggregate` reports the mean and the sample std (``ddof=1``, pandas'
``.std()``; NaN for a single episode).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

SPIKE_WINDOW = 2


def _as_actions(actions) -> np.ndarray:
    x = np.asarray(actions, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"actions must be [T, J] (frames, joints), got shape {x.shape}")
    return x


def velocities(actions) -> np.ndarray:
    """First differences per joint. [T, J] deg -> [T-1, J] deg/frame."""
    return np.diff(_as_actions(actions), n=1, axis=0)


def accelerations(actions) -> np.ndarray:
    """Second differences per joint. [T, J] deg -> [T-2, J] deg/frame^2; row i is labelled frame i+2."""
    return np.diff(_as_actions(actions), n=2, axis=0)


def velocity_variance(actions) -> float:
    """U_v: max over joints of var(v), sample variance (ddof=1). [T, J] deg -> deg^2/frame^2 (T >= 3)."""
    v = velocities(actions)
    if v.shape[0] < 2:
        raise ValueError("U_v needs at least 3 frames")
    return float(np.max(np.var(v, axis=0, ddof=1)))


def acceleration_variance(actions) -> float:
    """U_a: max over joints of var(a), sample variance (ddof=1). [T, J] deg -> deg^2/frame^4 (T >= 4)."""
    a = accelerations(actions)
    if a.shape[0] < 2:
        raise ValueError("U_a needs at least 4 frames")
    return float(np.max(np.var(a, axis=0, ddof=1)))


def mean_abs_velocity(actions) -> float:
    """mu_v: mean |v| over joints and frames. [T, J] deg -> deg/frame (T >= 2)."""
    v = velocities(actions)
    if v.shape[0] < 1:
        raise ValueError("mu_v needs at least 2 frames")
    return float(np.mean(np.abs(v)))


def boundary_acceleration_mask(num_frames: int, boundaries: Iterable[int], window: int = SPIKE_WINDOW) -> np.ndarray:
    """Boolean [num_frames - 2] mask over second-difference rows whose label frame (row + 2) is
    within +-window of some boundary (see the module docstring for the index mapping)."""
    mask = np.zeros(max(num_frames - 2, 0), dtype=bool)
    for b in boundaries:
        lo = max(int(b) - window - 2, 0)
        hi = min(int(b) + window - 2, num_frames - 3)
        if lo <= hi:
            mask[lo : hi + 1] = True
    return mask


def boundary_spike(actions, boundaries: Sequence[int], window: int = SPIKE_WINDOW) -> dict:
    """Boundary spike of a stitched action sequence.

    actions: [T, J] deg. boundaries: frame indices where a chunk starts (first chunk left out).
    Returns ``{"spike", "boundary_mean", "other_mean"}``: mean |a| (deg/frame^2, over joints and
    the selected frames) near boundaries, over all other frames, and their ratio (dimensionless;
    1.0 = no boundary artefact). The ratio is NaN when there is no boundary acceleration or no
    other acceleration, or both means are 0; +inf when only ``other_mean`` is 0.
    """
    a = np.abs(accelerations(actions))
    mask = boundary_acceleration_mask(a.shape[0] + 2, boundaries, window)
    near, far = a[mask], a[~mask]
    boundary_mean = float(near.mean()) if near.size else math.nan
    other_mean = float(far.mean()) if far.size else math.nan
    if math.isnan(boundary_mean) or math.isnan(other_mean):
        spike = math.nan
    elif other_mean == 0.0:
        spike = math.inf if boundary_mean > 0.0 else math.nan
    else:
        spike = boundary_mean / other_mean
    return {"spike": spike, "boundary_mean": boundary_mean, "other_mean": other_mean}


def split_acceleration_variance(actions, boundaries: Sequence[int], window: int = SPIKE_WINDOW) -> dict:
    """U_a split by where the accelerations sit (issue 11): inside chunks, and at the joins.

    actions: [T, J] deg. boundaries: as for :func:`boundary_spike`. Returns
    ``{"U_a_inside", "U_a_boundary"}`` in deg^2/frame^4, each like U_a (per-joint sample variance,
    ddof=1, max over joints) but over a subset of the acceleration rows: ``U_a_inside`` over the rows
    outside every +-window boundary window (the jitter a chunk carries inside itself),
    ``U_a_boundary`` over the rows inside them (the joins). NaN where a subset has fewer than 2 rows.
    """
    a = accelerations(actions)
    mask = boundary_acceleration_mask(a.shape[0] + 2, boundaries, window)

    def max_variance(rows: np.ndarray) -> float:
        return float(np.max(np.var(rows, axis=0, ddof=1))) if rows.shape[0] >= 2 else math.nan

    return {"U_a_inside": max_variance(a[~mask]), "U_a_boundary": max_variance(a[mask])}


def mean_abs_error(pred, truth) -> float:
    """Mean |pred - truth| over frames and joints. Both [T, J] deg, same frames -> deg."""
    p, t = _as_actions(pred), _as_actions(truth)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and truth {t.shape} must have the same shape")
    return float(np.mean(np.abs(p - t)))


def smoothness_metrics(actions, boundaries: Sequence[int], window: int = SPIKE_WINDOW) -> dict:
    """U_v, U_a (whole, inside chunks, at boundaries), mu_v and the boundary spike of one [T, J]
    sequence (deg), as a flat dict:
    ``U_v, U_a, U_a_inside, U_a_boundary, mu_v, spike, spike_boundary_mean, spike_other_mean``."""
    spike = boundary_spike(actions, boundaries, window)
    return {
        "U_v": velocity_variance(actions),
        "U_a": acceleration_variance(actions),
        **split_acceleration_variance(actions, boundaries, window),
        "mu_v": mean_abs_velocity(actions),
        "spike": spike["spike"],
        "spike_boundary_mean": spike["boundary_mean"],
        "spike_other_mean": spike["other_mean"],
    }


def episode_metrics(pred, truth, boundaries: Sequence[int], window: int = SPIKE_WINDOW) -> dict:
    """Metrics of one episode: the prediction's (plain keys), the ground truth's over the same
    frames and boundaries (``truth_`` keys), and ``mae`` of prediction against truth (deg)."""
    out = smoothness_metrics(pred, boundaries, window)
    out.update({f"truth_{k}": v for k, v in smoothness_metrics(truth, boundaries, window).items()})
    out["mae"] = mean_abs_error(pred, truth)
    return out


def aggregate(per_episode: list[dict], exclude: Iterable[str] = ("episode",)) -> dict:
    """Mean and sample std (ddof=1, NaN for one episode) across episodes of every numeric key.

    per_episode: one flat dict per episode. Keys in ``exclude`` and non-numeric values are
    skipped; yes/no values count as 1/0, so their mean is a rate (closed loop: success).
    Returns ``{"<key>_mean": float, "<key>_std": float, ..., "num_episodes": n}``.
    """
    skip = set(exclude)
    keys: list[str] = []
    for row in per_episode:
        for k, v in row.items():
            if k in skip or k in keys:
                continue
            if isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
                keys.append(k)
    out: dict = {}
    for k in keys:
        values = np.array([float(row[k]) for row in per_episode if k in row], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out[f"{k}_mean"] = float(values.mean())
            out[f"{k}_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
    out["num_episodes"] = len(per_episode)
    return out
