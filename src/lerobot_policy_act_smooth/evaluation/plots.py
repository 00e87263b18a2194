"""Trajectory and acceleration plots of stitched (or executed) action sequences, as PNG bytes.

Arrays are [N, J] in degrees over episode frames, NaN where a sequence has no value. Offline
replay draws the ground truth and the stitched prediction; closed-loop evaluation draws the
commanded actions and the observed joints. Matplotlib is imported here only (Agg backend,
no display needed).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np


def _figure(num_joints: int, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if num_joints > 1 else 1
    rows = -(-num_joints // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.4 * rows + 0.6), squeeze=False, sharex=True)
    fig.suptitle(title, fontsize=10)
    flat = axes.ravel()
    for ax in flat[num_joints:]:
        ax.set_visible(False)
    return plt, fig, flat[:num_joints]


def _finish(plt, fig, axes, boundaries: Sequence[int], joint_names: Sequence[str] | None, unit: str) -> bytes:
    """Chunk boundaries (dashed, between frame b-1 and b), axis labels and legend; the PNG bytes."""
    for j, ax in enumerate(axes):
        for i, b in enumerate(boundaries):
            ax.axvline(b - 0.5, color="0.4", linestyle="--", linewidth=0.8, label="chunk boundary" if i == 0 else None)
        name = joint_names[j] if joint_names is not None and j < len(joint_names) else f"joint {j}"
        ax.set_ylabel(f"{name} {unit}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="best")
    for ax in axes[-2:]:
        ax.set_xlabel("frame", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def trajectories_png(
    points: np.ndarray,
    boundaries: Sequence[int],
    joint_names: Sequence[str] | None,
    title: str,
    line: np.ndarray | None = None,
    prefix_points: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    *,
    points_label: str = "prediction",
    line_label: str = "ground truth",
) -> bytes:
    """One panel per joint: ``line`` (replay: the ground truth; closed loop: the commanded
    actions) as a line, prefix points (frames, [n, J] values) as hollow markers, ``points``
    (replay: the predicted frames; closed loop: the observed joints) as dots, dashed lines
    where a chunk starts. joint_names None: "joint j"."""
    points = np.asarray(points, dtype=float)
    plt, fig, axes = _figure(points.shape[1], title)
    frames = np.arange(len(points))
    for j, ax in enumerate(axes):
        if line is not None:
            ax.plot(np.arange(len(line)), np.asarray(line)[:, j], color="tab:gray", linewidth=1.2, label=line_label)
        for k, (pf, pv) in enumerate(prefix_points):
            ax.plot(pf, np.asarray(pv)[:, j], "o", mfc="none", mec="tab:orange", ms=4, label="prefix" if k == 0 else None)
        ok = np.isfinite(points[:, j])
        ax.plot(frames[ok], points[ok, j], ".", color="tab:blue", ms=3, label=points_label)
    return _finish(plt, fig, axes, boundaries, joint_names, "[deg]")


def accelerations_png(
    prediction: np.ndarray,
    boundaries: Sequence[int],
    joint_names: Sequence[str] | None,
    title: str,
    truth: np.ndarray | None = None,
) -> bytes:
    """One panel per joint: second differences a (deg/frame^2) at their centre frames, of the
    prediction and of the ground truth over the same frames, with chunk boundaries dashed."""
    prediction = np.asarray(prediction, dtype=float)
    plt, fig, axes = _figure(prediction.shape[1], title)
    centres = np.arange(1, len(prediction) - 1)
    acc = np.diff(prediction, n=2, axis=0)  # NaN wherever a frame has no prediction
    acc_truth = None
    if truth is not None:
        acc_truth = np.diff(np.asarray(truth, dtype=float), n=2, axis=0)
        acc_truth[~np.isfinite(acc)] = np.nan
    for j, ax in enumerate(axes):
        if acc_truth is not None:
            ax.plot(centres, acc_truth[:, j], color="tab:gray", linewidth=1.0, label="ground truth")
        ax.plot(centres, acc[:, j], color="tab:blue", linewidth=1.0, label="prediction")
    return _finish(plt, fig, axes, boundaries, joint_names, "a [deg/frame^2]")
