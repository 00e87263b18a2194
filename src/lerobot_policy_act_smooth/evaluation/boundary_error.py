"""How far a self-chaining policy's own prefix drifts from the demonstration: the spread that sets
`prefix_perturb_scale` (docs/policy.md, "Perturbed prefix").

In a self-chaining replay, chunk i is observed at frame t_i and placed at p_i = t_i + d; its prefix is
the stitched prediction on the frames t_i - K .. t_i + d - 1 (ground truth before the first placement).
Its error against the demonstration on those frames, e(f) for f = -K .. d-1 relative to t_i, is fitted
per joint by the smooth offset the training perturbation draws, e(f) ~ c + s * f / (K + D): c is the
offset at a_0, s its change across the K + D prefix frames. The spread of c and s over all boundaries
is what `prefix_perturb_scale` should match, in normalised action units (divide by the action std).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def prefix_offsets(
    stitched, truth, boundaries: Sequence[int], past_length: int, delay: int, max_delay: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (c, s) of the prefix error at each boundary.

    stitched, truth: [N, A] (same units); stitched is NaN where nothing was predicted (those prefix frames
    came from the ground truth, error 0). boundaries: chunk placements p_i (the first chunk's left out,
    as EpisodeReplay.boundaries). past_length K, delay d; max_delay D (default d) sets the slope's span
    K + D as in training. Returns c [n, A] and s [n, A] for the n boundaries.
    """
    stitched, truth = np.asarray(stitched, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if stitched.shape != truth.shape or stitched.ndim != 2:
        raise ValueError(f"stitched {stitched.shape} and truth {truth.shape} must both be [N, A]")
    span = past_length + (delay if max_delay is None else max_delay)
    f = np.arange(-past_length, delay, dtype=np.float64)
    if len(f) < 2:
        raise ValueError("a prefix of one frame has no slope; the fit needs K + d >= 2")
    design = np.stack([np.ones_like(f), f / span], axis=1)  # e = c + s * f / span
    consts, slopes = [], []
    for b in boundaries:
        frames = np.arange(b - delay - past_length, b)
        if frames[0] < 0 or frames[-1] >= len(truth):
            raise ValueError(f"boundary {b} needs prefix frames {frames[0]}..{frames[-1]} inside 0..{len(truth) - 1}")
        error = np.nan_to_num(stitched[frames] - truth[frames], nan=0.0)
        (c, s), *_ = np.linalg.lstsq(design, error, rcond=None)
        consts.append(c)
        slopes.append(s)
    width = truth.shape[1]
    return np.reshape(consts, (-1, width)), np.reshape(slopes, (-1, width))


def prefix_error_spread(episodes, past_length: int, delay: int, max_delay: int | None = None, action_std=None) -> dict:
    """Spread of the self-chaining prefix offsets over every boundary of several episodes.

    episodes: iterable of (stitched [N, A], truth [N, A], boundaries) per episode. action_std [A]
    (the dataset's action std, raw units) converts to normalised units. Returns per-joint lists
    ``offset_std``, ``slope_std`` (ddof=1, over boundaries), their root mean square over joints
    ``offset_rms_std``, ``slope_rms_std``, and ``num_boundaries``; with action_std also the same
    four in normalised units (``*_normalised``).
    """
    pairs = [prefix_offsets(s, t, b, past_length, delay, max_delay) for s, t, b in episodes]
    consts = np.concatenate([c for c, _ in pairs])
    slopes = np.concatenate([s for _, s in pairs])
    if len(consts) < 2:
        raise ValueError(f"the spread needs at least 2 boundaries, got {len(consts)}; replay more or longer episodes")
    out = {"num_boundaries": int(len(consts))}
    scales = {"": np.ones(consts.shape[1])}
    if action_std is not None:
        scales["_normalised"] = np.asarray(action_std, dtype=np.float64).reshape(consts.shape[1])
    for suffix, scale in scales.items():
        for name, values in (("offset", consts), ("slope", slopes)):
            std = (values / scale).std(axis=0, ddof=1)
            out[f"{name}_std{suffix}"] = std.tolist()
            out[f"{name}_rms_std{suffix}"] = float(np.sqrt(np.mean(std**2)))
    return out
