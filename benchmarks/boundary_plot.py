"""One chunk boundary up close, for several policies: the demonstration, the prefix the new chunk
was given, the old chunk and the new chunk (self-chaining replay, as the plan's evaluation runs it).

    .venv/bin/python benchmarks/boundary_plot.py --dataset_root=runs/cpu/dataset --episode=108 \
        --policy baseline=runs/cpu/baseline/run.seed1000/train/checkpoints/last/pretrained_model \
        --policy join=runs/cpu/prefix_join/run.seed1000/train/checkpoints/last/pretrained_model \
        --output=docs/figures/boundary.png

The boundary (default: the one where the first policy's stitched acceleration jumps most, the case
that makes the spike) and the joint (default: the one that moves most around it) are printed; the
same frame and joint are drawn for every policy. The plot shows what the spike measures: where the
new chunk leaves the prefix, and whether it heads back to the old chunk, to the demonstration, or
elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.evaluation.replay import DatasetEpisodes, replay_episode
from lerobot_policy_act_smooth.inference import load_chunk_predictor
from lerobot_policy_act_smooth.provenance import atomic_write_bytes


def boundary_jump(stitched: np.ndarray, boundary: int) -> float:
    """|second difference| of the stitched actions at the join, largest over joints (deg/frame²)."""
    acc = stitched[boundary] - 2 * stitched[boundary - 1] + stitched[boundary - 2]
    return float(np.nanmax(np.abs(acc)))


def chunks_at(predictor, observe, rep, index: int) -> np.ndarray:
    """The full chunk the replay placed as chunk `index` (C actions, not only the executed ones)."""
    K = int(predictor.past_length)
    prefix = rep.prefixes[index]
    frame = rep.schedule.observation_frames[index]
    return np.asarray(predictor.predict(observe([frame]), prefix[None, :K], prefix[None, K:]))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset_root", required=True)
    parser.add_argument("--repo_id", default="sim/so101_cpu")
    parser.add_argument("--episode", type=int, required=True)
    parser.add_argument("--policy", action="append", required=True, help="NAME=CHECKPOINT (repeat)")
    parser.add_argument("--boundary", type=int, default=None, help="index of the chunk boundary (1 = second chunk)")
    parser.add_argument("--joint", default=None)
    parser.add_argument("--delay", type=int, default=2)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    policies = [p.split("=", 1) for p in args.policy]
    if any(len(p) != 2 for p in policies):
        parser.error("--policy takes NAME=CHECKPOINT")

    data = DatasetEpisodes(args.repo_id, args.dataset_root)
    truth = data.actions(args.episode)
    names = data.action_names
    runs = []
    for name, path in policies:
        predictor = load_chunk_predictor(path)
        observe = data.observer(args.episode, list(predictor.input_features))
        rep = replay_episode(predictor, truth, observe, "self_chaining", delay=args.delay, episode=args.episode)
        runs.append((name, predictor, observe, rep))
    first = runs[0][3]
    index = args.boundary or 1 + int(np.argmax([boundary_jump(first.stitched, b) for b in first.boundaries]))
    b = first.schedule.placements[index]
    if args.joint is None:
        window = truth[b - 10 : b + 20]
        joint = int(np.argmax(window.max(axis=0) - window.min(axis=0)))
    else:
        joint = names.index(args.joint)
    print(f"episode {args.episode}, boundary {index} (frame {b}), joint {names[joint]}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.6), sharey=True, squeeze=False)
    lo, hi = b - 12, b + 25
    frames = np.arange(lo, hi)
    for ax, (name, predictor, observe, rep) in zip(axes[0], runs):
        C = int(predictor.chunk_size)
        old, new = chunks_at(predictor, observe, rep, index - 1), chunks_at(predictor, observe, rep, index)
        p_old, p_new = rep.schedule.placements[index - 1], rep.schedule.placements[index]
        ax.plot(frames, truth[lo:hi, joint], color="0.6", lw=2.5, label="demonstration")
        f_old = np.arange(p_old, p_old + C)
        keep = (f_old >= lo) & (f_old < hi)
        ax.plot(f_old[keep], old[keep, joint], color="tab:blue", lw=1.3, label="old chunk")
        ax.plot(np.arange(p_new, p_new + C)[: hi - p_new], new[: hi - p_new, joint], color="tab:red", lw=1.3,
                label="new chunk")
        pf = rep.schedule.prefix_frames(index)
        ax.plot(pf, rep.prefixes[index][:, joint], "k.", ms=6, label="prefix given")
        ax.axvline(b - 0.5, color="k", lw=0.6, ls=":")
        jump = boundary_jump(rep.stitched, b)
        ax.set_title(f"{name}: |Δ²a| at the join {jump:.2f}", fontsize=9)
        ax.set_xlabel("frame")
    axes[0][0].set_ylabel(f"{names[joint]} (deg)")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"self-chaining, episode {args.episode}, chunk boundary {index} (frame {b}), delay {args.delay}",
                 fontsize=9)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(Path(args.output), buf.getvalue())
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
