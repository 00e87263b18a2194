"""What a longer trained delay D costs at a short one: ground-truth-prefix replay of every finished
trial of the given stages at one delay d (default 2, the plan's), on the run's test episodes.

    python benchmarks/accuracy_at_delay.py --output_dir=/work/runs/cpu \
        --stages=baseline,baseline_d10,baseline_d15,smooth_join_own,recipe_d10,recipe_d15 --delay=2 \
        [--report=docs/results/cpu-latency/accuracy_at_d2.md]

Each replay is `actsmooth-replay --mode=gt_prefix --delay=d` with the trial's own dataset view and
episodes (read from its recorded gt_prefix evaluation) into TRIAL/eval/gt_prefix_d<d>_* (skipped when
present). Prints, and writes to --report, MAE and U_a per stage: mean [95% crossed-design interval]
over seeds x test episodes, and each D > 2 stage minus its D = 2 stage (episodes paired).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.experiments.results_table import fmt_difference, fmt_estimate
from lerobot_policy_act_smooth.experiments.statistics import difference_interval, mean_interval
from lerobot_policy_act_smooth.provenance import atomic_write_text

D2_OF = {"baseline_d10": "baseline", "baseline_d15": "baseline", "recipe_d10": "smooth_join_own",
         "recipe_d15": "smooth_join_own"}


def replay(trial: Path, delay: int) -> Path:
    metrics = trial / "eval" / f"gt_prefix_d{delay}_metrics.json"
    if metrics.is_file():
        return metrics
    recorded = json.loads((trial / "eval" / "gt_prefix_metrics.json").read_text())["run"]["command"]
    keep = [a for a in recorded[1:] if a.split("=", 1)[0] in ("--policy.path", "--dataset.repo_id", "--dataset.root",
                                                              "--episodes", "--device", "--seed")]
    args = [sys.executable, "-m", "lerobot_policy_act_smooth.evaluation.replay_cli", *keep, "--mode=gt_prefix",
            f"--delay={delay}", "--plots=false", f"--output={trial / 'eval' / f'gt_prefix_d{delay}'}"]
    subprocess.run(args, check=True, capture_output=True, text=True)
    return metrics


def grids(metrics: list[Path], keys: tuple[str, ...], episodes: list[int]) -> dict[str, np.ndarray]:
    """{key: [trials, episodes]} from each trial's metrics file, read once."""
    loaded = [{e["episode"]: e for e in json.loads(path.read_text())["episodes"]} for path in metrics]
    return {key: np.asarray([[float(rows[i][key]) for i in episodes] for rows in loaded]) for key in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--stages", required=True)
    parser.add_argument("--delay", type=int, default=2)
    parser.add_argument("--test_episodes", default="108-119", help="episodes reported (the run's test split)")
    parser.add_argument("--report", default=None)
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    first, last = (int(x) for x in args.test_episodes.split("-"))
    episodes = list(range(first, last + 1))
    by_stage = {}
    for stage in [s.strip() for s in args.stages.split(",") if s.strip()]:
        trials = sorted(p.parent for p in (out / stage).glob("*/DONE.json"))
        if not trials:
            print(f"{stage}: no finished trial, left out", file=sys.stderr)
            continue
        metrics = [replay(t, args.delay) for t in trials]
        by_stage[stage] = grids(metrics, ("mae", "U_a"), episodes)
        print(f"{stage}: {len(trials)} trial(s) replayed at d = {args.delay}", file=sys.stderr)
    lines = [f"# Ground-truth-prefix replay at d = {args.delay}, every policy whatever its trained D",
             "", f"Run folder `{out}`, test episodes {first}..{last}; mean [95% interval] over seeds x episodes "
             "(docs/statistics.md). MAE in degrees, U_a in deg^2/frame^4. Difference: the stage minus the D = 2 "
             "stage it extends (seeds independent, episodes paired).", "",
             "| stage | seeds | MAE | U_a | MAE - D = 2's | U_a - D = 2's |", "|---|---|---|---|---|---|"]
    for stage, g in by_stage.items():
        base = by_stage.get(D2_OF.get(stage, ""))
        diff = ["-", "-"] if base is None else [fmt_difference(difference_interval(g[k], base[k])) for k in ("mae", "U_a")]
        lines.append(f"| {stage} | {g['mae'].shape[0]} | {fmt_estimate(mean_interval(g['mae']))} | "
                     f"{fmt_estimate(mean_interval(g['U_a']))} | {diff[0]} | {diff[1]} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.report), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
