"""The baseline's convergence criteria (docs/experiments.md) against training time, for one or more
lerobot-train output folders (e.g. the same model trained for 3K, 6K and 12K steps).

    .venv/bin/python benchmarks/convergence_curve.py --runs=outputs/a,outputs/b \
        --dataset.repo_id=local/so101_sim --dataset.root=data/so101_sim --episodes=100,...,111 \
        --closed_loop_episodes=20 --output=docs/figures/convergence

For every run (its checkpoints/last): gt-prefix replay on the given held-out episodes through
`actsmooth-replay` (MAE, U_a and the demonstrations' U_a on the same frames), closed loop through
`actsmooth-sim-eval`, and the training wall time from lerobot-train's own log timestamps. Prints
one line per run and writes OUTPUT.csv and OUTPUT.png (the three criteria against training time).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

STAMP = re.compile(r"^INFO (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ")


def training_seconds(log: Path) -> float | None:
    """Seconds from lerobot-train's first to last timestamped log line."""
    stamps = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
              for m in (STAMP.match(line) for line in log.read_text(errors="replace").splitlines()) if m]
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None


def evaluate(run: Path, args, out: Path) -> dict:
    ckpt = run / "checkpoints" / "last" / "pretrained_model"
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    stem = out / run.name
    subprocess.run([sys.executable, "-m", "lerobot_policy_act_smooth.evaluation.replay_cli", f"--policy.path={ckpt}",
                    f"--dataset.repo_id={args.repo_id}", f"--dataset.root={args.root}", f"--episodes={args.episodes}",
                    "--mode=gt_prefix", "--plots=false", "--overwrite=true", f"--output={stem}_gt"],
                   check=True, env=env, capture_output=True)
    replay = json.loads(Path(f"{stem}_gt_metrics.json").read_text())["aggregate"]
    step_file = run / "checkpoints" / "last" / "training_state" / "training_step.json"
    row = {"run": run.name, "steps": json.loads(step_file.read_text())["step"],
           "train_s": training_seconds(Path(args.logs_dir) / f"{run.name}.log")
           if args.logs_dir else None,
           "gt_mae": replay["mae_mean"], "gt_U_a": replay["U_a_mean"], "truth_U_a": replay["truth_U_a_mean"],
           "gt_spike": replay["spike_mean"]}
    row["gt_U_a_ratio"] = row["gt_U_a"] / row["truth_U_a"]
    if args.closed_loop_episodes:
        subprocess.run([sys.executable, "-m", "lerobot_policy_act_smooth.evaluation.sim_eval_cli",
                        f"--policy.path={ckpt}", f"--episodes={args.closed_loop_episodes}", f"--seed={args.seed}",
                        "--plots=false", "--overwrite=true", f"--output={stem}_cl"],
                       check=True, env=env, capture_output=True)
        closed = json.loads(Path(f"{stem}_cl_metrics.json").read_text())["aggregate"]
        row.update(cl_success=closed["success_rate"], cl_obs_U_a=closed["obs_U_a_mean"],
                   cl_action_U_a=closed["action_U_a_mean"])
    return row


def plot(rows: list[dict], path: Path, mae_floor: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # x: training steps (wall time on a shared machine is not comparable between runs; multiply by
    # the per-step time of benchmarks/bench_loader.py for time on an idle core)
    minutes = [r["steps"] / 1000 for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [("cl_success", "closed-loop success", 0.9), ("gt_U_a_ratio", "gt-prefix U_a / demonstrations'", 3.0),
              ("gt_mae", "gt-prefix MAE (deg)", mae_floor)]
    for ax, (key, title, goal) in zip(axes, panels):
        ax.plot(minutes, [r.get(key, float("nan")) for r in rows], "o-")
        for m, r in zip(minutes, rows):
            ax.annotate(r["run"], (m, r.get(key, float("nan"))), fontsize=7)
        if goal is not None:
            ax.axhline(goal, color="k", ls="--", lw=0.8)
        ax.set_xlabel("training steps (thousands)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="comma-separated lerobot-train output folders")
    ap.add_argument("--logs_dir", default=None, help="folder with RUN_NAME.log (lerobot-train's console output)")
    ap.add_argument("--dataset.repo_id", dest="repo_id", required=True)
    ap.add_argument("--dataset.root", dest="root", required=True)
    ap.add_argument("--episodes", required=True, help="held-out episodes, e.g. 100,101,...")
    ap.add_argument("--closed_loop_episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1000, help="closed-loop scenes: seed + i")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output", required=True, help="output stem: OUTPUT.csv, OUTPUT.png and per-run files")
    ap.add_argument("--plot_only", action="store_true", help="re-plot OUTPUT.csv without evaluating")
    ap.add_argument("--mae_floor", type=float, default=None,
                    help="the demonstrations' MAE floor (benchmarks/demonstration_floor.py), drawn on the MAE panel")
    args = ap.parse_args()
    if args.plot_only:
        with open(f"{args.output}.csv") as f:
            rows = [{k: (float(v) if k not in ("run",) and v not in ("", None) else v) for k, v in r.items()}
                    for r in csv.DictReader(f)]
        plot(rows, Path(f"{args.output}.png"), args.mae_floor)
        return 0
    out = Path(args.output)
    work = out.parent / (out.name + "_files")
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in [Path(r) for r in args.runs.split(",")]:
        row = evaluate(run, args, work)
        rows.append(row)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    Path(f"{out}.csv").write_text(buf.getvalue())
    plot(rows, Path(f"{out}.png"), args.mae_floor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
