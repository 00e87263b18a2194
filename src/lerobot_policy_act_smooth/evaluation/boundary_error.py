"""How far a self-chaining policy's own prefix drifts from the demonstration: the spread that sets
`prefix_perturb_scale` (docs/policy.md, "Perturbed prefix").

In a self-chaining replay, chunk i is observed at frame t_i and placed at p_i = t_i + d; its prefix is
the stitched prediction on the frames t_i - K .. t_i + d - 1 (ground truth before the first placement).
Its error against the demonstration on those frames, e(f) for f = -K .. d-1 relative to t_i, is fitted
per joint by the smooth offset the training perturbation draws, e(f) ~ c + s * f / (K + D): c is the
offset at a_0, s its change across the K + D prefix frames. The spread of c and s over all boundaries
is what `prefix_perturb_scale` should match, in normalised action units (divide by the action std).

From the files of a self-chaining `actsmooth-replay` run (STEM_stitched.csv, STEM_metrics.json):

    python -m lerobot_policy_act_smooth.evaluation.boundary_error --replay=results/base_self \
        --dataset_root=data/so101_sim --output=results/base_self_prefix_error.json

prints the spread and writes it as JSON (atomically; an existing file is kept unless --overwrite=true).
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


# ---------------------------------------------------------------- from a replay's files


class BoundaryErrorInputError(ValueError):
    """Bad input to the command (one error line, nothing written)."""


def episodes_from_stitched_csv(text: str) -> list[tuple[np.ndarray, np.ndarray, list[int]]]:
    """(stitched, truth, boundaries) per episode from a replay's STEM_stitched.csv text: prediction NaN on
    the ground-truth prefix rows; a boundary is a prediction frame whose chunk differs from the previous one."""
    from lerobot_policy_act_smooth.evaluation.rescore import read_stitched_csv

    return list(read_stitched_csv(io.StringIO(text)).values())


@dataclass
class BoundaryErrorConfig:
    # Output stem of a self-chaining actsmooth-replay run (reads STEM_stitched.csv and STEM_metrics.json)
    replay: str | None = None
    # Local LeRobot dataset folder the replay used; its meta/stats.json gives the action std (normalised units)
    dataset_root: str | None = None
    # D of the trained policy, the slope's span K + D (default: the replay's delay)
    max_delay: int | None = None
    # JSON file to write (optional)
    output: str | None = None
    # Replace an existing --output file
    overwrite: bool = False


def run_boundary_error(cfg: BoundaryErrorConfig) -> dict:
    """Spread of the prefix error of a self-chaining replay; raises BoundaryErrorInputError on bad input."""
    from lerobot_policy_act_smooth.provenance import atomic_write_json, run_metadata

    if not cfg.replay:
        raise BoundaryErrorInputError("--replay is required: the output stem of a self-chaining actsmooth-replay run")
    csv_path, metrics_path = Path(f"{cfg.replay}_stitched.csv"), Path(f"{cfg.replay}_metrics.json")
    for path in (csv_path, metrics_path):
        if not path.is_file():
            raise BoundaryErrorInputError(f"{path} not found; pass the --output stem of an actsmooth-replay run")
    settings = json.loads(metrics_path.read_text()).get("settings", {})
    if settings.get("mode") != "self_chaining":
        raise BoundaryErrorInputError(
            f"{metrics_path} is a {settings.get('mode')!r} replay; the prefix error needs --mode=self_chaining"
        )
    if cfg.output and Path(cfg.output).exists() and not cfg.overwrite:
        raise BoundaryErrorInputError(f"{cfg.output} exists; choose another --output or pass --overwrite=true")
    action_std = None
    if cfg.dataset_root:
        stats_path = Path(cfg.dataset_root) / "meta" / "stats.json"
        if not stats_path.is_file():
            raise BoundaryErrorInputError(f"{stats_path} not found; --dataset_root must be a LeRobot dataset folder")
        action_std = json.loads(stats_path.read_text())["action"]["std"]
    try:
        spread = prefix_error_spread(
            episodes_from_stitched_csv(csv_path.read_text()),
            int(settings["past_length"]),
            int(settings["delay"]),
            cfg.max_delay,
            action_std,
        )
    except ValueError as err:
        raise BoundaryErrorInputError(str(err)) from err
    result = {**spread, "settings": settings, "replay": cfg.replay, "run": run_metadata(config=cfg)}
    unit = "normalised" if action_std is not None else "raw"
    key = "_normalised" if action_std is not None else ""
    print(
        f"{spread['num_boundaries']} boundaries: prefix offset spread {spread['offset_rms_std' + key]:.4g}, "
        f"slope spread {spread['slope_rms_std' + key]:.4g} ({unit} action units, RMS over joints)",
        flush=True,
    )
    if cfg.output:
        atomic_write_json(cfg.output, result)
    return result


def main(argv: list[str] | None = None) -> int:
    from lerobot_policy_act_smooth.evaluation.command import run_command

    return run_command(BoundaryErrorConfig, run_boundary_error, BoundaryErrorInputError, argv)


if __name__ == "__main__":
    sys.exit(main())
