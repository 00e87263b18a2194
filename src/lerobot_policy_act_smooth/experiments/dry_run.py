"""`run --dry_run=true`: every trial the plan would start, with what it would ask for and how long
it would take, and nothing started (no Ray, no dataset generation or download, no file written).

Trials of stages that wait for a winner are listed with their references unresolved
("<winner of lr_sweep>"), unless an earlier run into the same output_dir already decided it.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path

from .plan import Plan, TrialSpec, base_flags, format_value, resolve_stage, split_episodes
from .resources import plan_devices, requested_resources
from .trial import read_done, trial_dir

# lerobot-train's log line: "... updt_s:0.030 data_s:0.050 ..." (seconds per step, update and data)
_STEP_TIME_RE = re.compile(r"\bupdt_s:(\S+) data_s:(\S+)")


class _Pending(dict):
    """Flags of a winner not decided yet: every field reads as a placeholder."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def __missing__(self, key: str) -> str:
        return f"<winner of {self.stage}>"


def measured_step_time(output_dir: Path) -> float | None:
    """Median seconds per training step (update + data) over the train.log files of earlier
    trials in output_dir; None when there are none."""
    times = []
    for log in Path(output_dir).glob("*/*/train.log"):
        for m in _STEP_TIME_RE.finditer(log.read_text(errors="replace")):
            try:
                times.append(float(m.group(1)) + float(m.group(2)))
            except ValueError:
                continue
    return statistics.median(times) if times else None


def _winners_on_disk(output_dir: Path) -> dict[str, dict]:
    """stage -> flags of its winner, for stages an earlier run into output_dir decided."""
    out = {}
    for path in Path(output_dir).glob("*/stage.json"):
        try:
            winner = json.loads(path.read_text()).get("winner")
            if not winner:
                continue
            # The winner is a trial folder, or a variant whose seeds sit in <variant>.seed<N> folders.
            found = [Path(output_dir) / winner / "trial.json", *sorted(Path(output_dir).glob(f"{winner}.seed*/trial.json"))]
            spec = next(f for f in found if f.is_file())
            out[path.parent.name] = json.loads(spec.read_text())["flags"]
        except (OSError, json.JSONDecodeError, KeyError, StopIteration):
            continue
    return out


def dataset_has_cameras(plan: Plan, output_dir: Path) -> bool | None:
    """Whether the plan's dataset holds camera images; None while unknown (a dataset not fetched yet)."""
    ds = plan.dataset
    if ds.generate is not None:
        return bool(ds.generate.get("cameras"))
    info = ds.resolved_root(output_dir) / "meta" / "info.json"
    if not info.is_file():
        return None
    features = json.loads(info.read_text()).get("features", {})
    return any(f.get("dtype") in ("image", "video") for f in features.values())


def image_load_factor(flags: dict, cameras: bool | None) -> float:
    """Camera frames read per sample: 2 with the own-prediction prefix (p_prefix_own > 0: every camera
    at t0 - n_action_steps as well as t0, for every sample), else 1; 1 without cameras. The dry run
    scales a trial's time by it: a camera step is bound by reading and decoding its images."""
    own = flags.get("policy.p_prefix_own") or 0
    return 2.0 if cameras is not False and isinstance(own, (int, float)) and own > 0 else 1.0


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def planned_trials(plan: Plan, output_dir: Path) -> list[TrialSpec]:
    """Every trial a run would start, in plan order (early starts, then final trials)."""
    decided = _winners_on_disk(output_dir)
    dataset_flags: dict = {}
    trials = []
    for name, st in plan.stages.items():
        winners = {d: decided.get(d, _Pending(d)) for d in st.dependencies}
        pending = [d for d in st.dependencies if d not in decided]
        if pending and st.start_early is not None:
            trials += resolve_stage(plan, st, {}, dataset_flags, early=True)
        trials += resolve_stage(plan, st, winners, dataset_flags)
    return trials


def dry_run(plan: Plan, output_dir: Path, gpus_per_trial: float | None, cpus_per_trial: int | None,
            max_concurrent_trials: int | None, step_time_s: float | None, out: Callable[[str], None] = print) -> None:
    output_dir = Path(output_dir).expanduser().resolve()
    ds = plan.dataset
    if ds.generate is not None:
        n = ds.generate["episodes"]
        where = f"generated into {ds.resolved_root(output_dir)} ({n} episodes, seed {ds.generate.get('seed', plan.seed)})"
    else:
        where = ("hub dataset, LeRobot's cache " if ds.from_hub else "") + str(ds.resolved_root(output_dir))
        info = ds.resolved_root(output_dir) / "meta" / "info.json"
        n = json.loads(info.read_text())["total_episodes"] if info.is_file() else None
    if n is not None:
        train, heldout = split_episodes(n, ds.heldout_episodes)
        split = f"trains on episodes 0..{train[-1]}, held out for evaluation: {heldout}"
    else:
        split = f"not fetched yet: the last {ds.heldout_episodes} episodes will be held out"
    extra = plan.evaluation.get("extra_episodes") or []
    out(f"dry run of plan {plan.name} ({plan.source}): nothing is started")
    out(f"dataset {ds.repo_id}: {where}; {split}"
        + (f"; also replayed on episodes {extra} (trained on, reported apart)" if extra else ""))
    res = requested_resources(plan, gpus_per_trial, cpus_per_trial, cluster_gpus=None)
    gpu_note = "" if res.gpus or gpus_per_trial is not None or plan_devices(plan) else \
        " (1 GPU and device cuda instead when the Ray cluster has GPUs: the plan sets no device)"
    out(f"each trial asks Ray for {res.describe()}{gpu_note}")
    measured = step_time_s is None
    step_time = measured_step_time(output_dir) if measured else step_time_s
    if step_time is None:
        out("step time: unknown (no earlier trial in this output_dir; give --step_time_s=SECONDS for estimates)")
    else:
        out(f"step time: {step_time:.3f} s" + (" (median of earlier trials in this output_dir)" if measured else
                                              " (--step_time_s)"))
    base = base_flags(plan)
    cameras = dataset_has_cameras(plan, output_dir)
    total_steps = 0
    total_seconds = 0.0
    to_start = 0
    for spec in planned_trials(plan, output_dir):
        done = read_done(trial_dir(output_dir, spec)) is not None
        if not spec.steps:
            what = f"evaluates the checkpoint of {plan.stages[spec.stage].evaluate_checkpoint_of}'s winner"
        else:
            changed = {k: v for k, v in spec.flags.items()
                       if k not in ("steps", "seed") and not k.startswith("dataset.") and base.get(k) != v}
            what = ", ".join(f"{k}={format_value(v)}" for k, v in changed.items()) or "base configuration"
            if spec.flags.get("seed") != plan.seed or len(plan.seeds) > 1:
                what += f", seed={spec.flags.get('seed')}"
            if plan.stages[spec.stage].init_from:
                what = f"starts from the final weights of {plan.stages[spec.stage].init_from}'s winner (same seed); " + what
        factor = image_load_factor(spec.flags, cameras)
        if factor > 1 and spec.steps:
            what += (f"; own-prediction prefix: every sample loads the images of an earlier frame too "
                     f"({factor:g} image loads per sample{'' if cameras else ', if the dataset has cameras'}; "
                     f"backbone passes 1 + p_prefix_own = {1 + spec.flags['policy.p_prefix_own']:g}): "
                     f"time estimated x{factor:g}")
        seconds = spec.steps * step_time * factor if step_time is not None and spec.steps else 0.0
        duration = f", about {_hms(seconds)}" if seconds else ""
        status = "  [done: not re-run]" if done else ""
        st = plan.stages[spec.stage]
        if not spec.early and st.start_early is not None and "<winner of" in what:
            status += "  (only if the winners' values differ from the early start)"
        out(f"  {spec.key}: {spec.steps} steps{duration}; {what}{status}")
        if not done:
            to_start += 1
            total_steps += spec.steps
            total_seconds += seconds
    summary = f"{to_start} trial(s) to start, {total_steps} training steps"
    if step_time is not None:
        summary += f", about {_hms(total_seconds)} of training"
        if max_concurrent_trials:
            summary += f" (at least {_hms(total_seconds / max_concurrent_trials)} wall time with " \
                       f"{max_concurrent_trials} at once, evaluations and stage order not counted)"
    out(summary)
