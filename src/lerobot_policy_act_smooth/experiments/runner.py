"""The driver: prepares the dataset, schedules the plan's trials on Ray in dependency order,
prints live progress, writes stage summaries and the report.

Trials run as Ray tasks (one lerobot-train subprocess each, then its evaluations); every result
is a file under output_dir, which therefore must be visible to all nodes of the cluster.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..provenance import atomic_write_json, atomic_write_text, run_metadata
from .plan import (
    Plan,
    PlanError,
    TrialSpec,
    check_episode_counts,
    dataset_num_episodes,
    resolve_stage,
    split_episodes,
    validate_plan,
)
from .resources import check_nodes_see, cluster_resources, node_resources
from .report import write_report
from .stages import stage_summary
from .training_stats import training_view
from .trial import evaluations_complete, missing_evaluations, read_done, run_trial, trial_dir

MAX_TASK_RETRIES = 3  # a trial whose worker or node dies is re-run (and resumes from its checkpoint)


@dataclass
class RunOptions:
    output_dir: Path
    ray_address: str | None = None
    max_concurrent_trials: int | None = None
    cpus_per_trial: int | None = None
    gpus_per_trial: float | None = None  # default: 1 for cuda trials (see resources.requested_resources)
    retry_failed_evals: bool = False
    write_report: bool = True
    poll_s: float = 2.0
    print_every_s: float = 15.0
    # What a Ray worker runs for one trial; tests put a stand-in here (same signature as run_trial).
    trial_function: Callable[..., dict] = run_trial


def prepare_dataset(plan: Plan, output_dir: Path, out: Callable[[str], None]) -> Path:
    """The dataset root: fetched into LeRobot's cache first for a hub dataset, generated first when
    the plan asks for it and it is not complete yet."""
    if plan.dataset.from_hub:
        from .hub import fetch_dataset

        return fetch_dataset(plan.dataset.repo_id, out)
    root = plan.dataset.resolved_root(output_dir)
    gen = plan.dataset.generate
    if gen is None:
        return root
    info = root / "meta" / "info.json"
    if info.is_file():
        n = dataset_num_episodes(root)
        old_seed = _generated_seed(root)
        want_seed = int(gen.get("seed", plan.seed))
        # Finished trials were trained on it: never regenerate it under them.
        if n != gen["episodes"]:
            raise PlanError(f"{root} holds a dataset of {n} episodes but the plan generates {gen['episodes']}; "
                            "use another --output_dir for the changed plan")
        if old_seed is not None and old_seed != want_seed:
            raise PlanError(f"{root} holds a dataset generated with seed {old_seed}, not {want_seed}; "
                            "use another --output_dir for another dataset seed")
        out(f"dataset: {root} ({n} episodes, already generated)")
        return root
    try:
        from ..sim import generate_dataset
    except ImportError as e:
        raise RuntimeError(f"the plan generates its dataset, but the simulator is not available: {e}") from e
    out(f"dataset: generating {gen['episodes']} simulated episodes into {root} ...")
    t0 = time.time()
    generate_dataset(
        repo_id=plan.dataset.repo_id,
        root=root,
        episodes=int(gen["episodes"]),
        seed=int(gen.get("seed", plan.seed)),
        fps=int(gen.get("fps", 30)),
        cameras=gen.get("cameras") or None,
        overwrite=False,  # the simulator builds in a side folder and swaps it in: root is complete or absent
    )
    out(f"dataset: done in {time.time() - t0:.0f} s")
    return root


def _generated_seed(root: Path) -> int | None:
    """The seed the simulator recorded for a dataset it generated (None: not recorded)."""
    try:
        from ..sim.dataset import GENERATION_FILE

        return int(json.loads((root / "meta" / GENERATION_FILE).read_text())["generation"]["seed"])
    except (ImportError, OSError, KeyError, ValueError, TypeError):
        return None


def _init_ray(address: str | None) -> bool:
    """Connect to `address` or start a quiet local Ray; True if this call started/owns the session."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **kwargs)
    return True


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Scheduler:
    """Decides which trials can run, from the plan and the DONE.json files on disk."""

    def __init__(self, plan: Plan, output_dir: Path, dataset_flags: dict, heldout: list[int], closed_loop: bool):
        """heldout: the evaluated episodes; the first plan.dataset.validation_episodes of them choose winners."""
        self.plan = plan
        self.output_dir = output_dir
        self.dataset_flags = dataset_flags
        self.heldout = heldout
        self.closed_loop = closed_loop
        # stage -> {"trial": variant key, "flags": ..., "dirs": {seed: trial dir}}
        self.winners: dict[str, dict] = {}
        self.final_trials: dict[str, list[TrialSpec]] = {}
        self.early_trials: dict[str, list[TrialSpec]] = {}
        self.failed_stages: dict[str, str] = {}  # failed, or blocked by a failed/winnerless dependency
        self.no_winner: dict[str, str] = {}  # finished, but every trial diverged

    def _finish_spec(self, spec: TrialSpec, stage_name: str) -> TrialSpec:
        st = self.plan.stages[stage_name]
        spec.heldout_episodes = list(self.heldout)
        spec.validation_episodes = list(self.heldout[: self.plan.dataset.validation_episodes])
        spec.in_memory_dataset = self.plan.dataset.in_memory
        spec.closed_loop = self.closed_loop if st.closed_loop is None else bool(st.closed_loop)
        if st.evaluate_checkpoint_of:
            spec.evaluate_checkpoint_of = self.winners[st.evaluate_checkpoint_of]["dirs"][spec.seed]
        if st.init_from:
            spec.init_checkpoint_of = self.winners[st.init_from]["dirs"][spec.seed]
        return spec

    def wanted(self) -> list[TrialSpec]:
        """Every trial that can be known now (final trials of ready stages, early trials)."""
        specs = []
        for name, st in self.plan.stages.items():
            if name in self.failed_stages:
                continue
            deps = st.dependencies
            if all(d in self.winners for d in deps):
                if name not in self.final_trials:
                    winner_flags = {d: self.winners[d]["flags"] for d in deps}
                    final = [self._finish_spec(s, name) for s in
                             resolve_stage(self.plan, st, winner_flags, self.dataset_flags)]
                    # An early-started trial that turned out to use the winning values is the result.
                    early = {s.name[: -len(".early")]: s for s in self.early_trials.get(name, [])}
                    final = [early[s.name] if s.name in early and early[s.name].flags == s.flags else s for s in final]
                    self.final_trials[name] = final
                specs.extend(self.final_trials[name])
            elif st.start_early is not None and not any(d in self.failed_stages for d in deps):
                if name not in self.early_trials:
                    self.early_trials[name] = [self._finish_spec(s, name) for s in
                                               resolve_stage(self.plan, st, {}, self.dataset_flags, early=True)]
                specs.extend(self.early_trials[name])
        return specs

    def block_dependents(self) -> None:
        changed = True
        while changed:
            changed = False
            for name, st in self.plan.stages.items():
                if name not in self.failed_stages:
                    bad = [d for d in st.dependencies if d in self.failed_stages or d in self.no_winner]
                    if bad:
                        why = self.no_winner.get(bad[0], "failed")
                        self.failed_stages[name] = f"needs the winner of stage {bad[0]} ({why})"
                        changed = True

    def update_winners(self) -> list[str]:
        """Select winners of stages whose final trials are all done; returns newly decided stages."""
        decided = []
        for name, specs in self.final_trials.items():
            if name in self.winners or name in self.failed_stages or name in self.no_winner:
                continue
            dones = [read_done(trial_dir(self.output_dir, s)) for s in specs]
            if any(d is None for d in dones):
                continue
            summary = stage_summary(self.plan, name, specs, self.output_dir)
            atomic_write_json(self.output_dir / name / "stage.json", summary)
            if summary["winner"] is None:
                # The stage is finished; only the stages that need its winner cannot run.
                self.no_winner[name] = summary["note"] or "no winner"
                continue
            seeds = [s for s in specs if s.variant_key == summary["winner"]]
            self.winners[name] = {"trial": summary["winner"], "flags": seeds[0].flags,
                                  "dirs": {s.seed: str(trial_dir(self.output_dir, s)) for s in seeds}}
            decided.append(name)
        self.block_dependents()
        return decided


def spec_conflict(tdir: Path, spec: TrialSpec) -> str | None:
    """A message if tdir already holds a trial run with other settings (a changed plan), else None."""
    path = tdir / "trial.json"
    if not path.is_file():
        return None
    old = TrialSpec.from_dict(json.loads(path.read_text()))
    changed = sorted(k for k in set(old.flags) | set(spec.flags) if old.flags.get(k) != spec.flags.get(k))
    if old.steps != spec.steps and "steps" not in changed:
        changed.append("steps")
    if not changed:
        return None
    return (f"{tdir} holds a trial run with different settings ({', '.join(changed)}); "
            "its results are kept: run the changed plan into another --output_dir")


def run_plan(plan: Plan, opts: RunOptions, out: Callable[[str], None] = print) -> int:
    """Run every trial of the plan that is not finished yet; 0 when all finished, 1 otherwise.
    Raises PlanError (before anything runs) for a plan that cannot run."""
    output_dir = Path(opts.output_dir).expanduser().resolve()
    validate_plan(plan, output_dir)
    owns_ray = _init_ray(opts.ray_address)
    try:
        nodes = node_resources()
        # A trial no node can hold would wait forever: refuse before anything is written.
        resources = cluster_resources(plan, opts.gpus_per_trial, opts.cpus_per_trial, nodes)
        return _run_on_ray(plan, opts, output_dir, nodes, resources, out)
    finally:
        if owns_ray:
            import ray

            ray.shutdown()


def _run_on_ray(plan: Plan, opts: RunOptions, output_dir: Path, nodes: list[dict], resources,
                out: Callable[[str], None]) -> int:
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    atomic_write_text(output_dir / "plan.json", plan.to_json() + "\n")
    meta = run_metadata(config={"plan": plan.name, "plan_source": plan.source,
                                "options": {k: str(v) for k, v in vars(opts).items()}}, seed=plan.seed)
    atomic_write_json(output_dir / "run.json", meta)
    with (output_dir / "runs.jsonl").open("a") as f:
        f.write(json.dumps({"started_utc": meta["created_utc"], "command": meta["command"],
                            "git_commit": meta["git_commit"]}) + "\n")

    root = prepare_dataset(plan, output_dir, out)
    n_episodes = dataset_num_episodes(root)
    problems = check_episode_counts(plan, n_episodes)  # a hub dataset is known only once fetched
    if problems:
        raise PlanError("; ".join(problems))
    train_eps, heldout = split_episodes(n_episodes, plan.dataset.heldout_episodes)
    out(f"dataset: {plan.dataset.repo_id} at {root}: {n_episodes} episodes, training on 0..{train_eps[-1]}, "
        f"held out for evaluation: {heldout}")
    # Normalised with the training episodes' own statistics, not the whole dataset's (held-out included).
    train_root = training_view(root, train_eps, output_dir / "dataset_views")
    out(f"dataset: normalisation statistics from the {len(train_eps)} training episodes only ({train_root})")
    dataset_flags = {"dataset.repo_id": plan.dataset.repo_id, "dataset.root": str(train_root), "dataset.episodes": train_eps}
    closed_loop = plan.evaluation.get("closed_loop", "auto")
    closed_loop = (plan.dataset.generate is not None) if closed_loop == "auto" else bool(closed_loop)
    sched = Scheduler(plan, output_dir, dataset_flags, heldout, closed_loop)
    check_nodes_see([output_dir / "run.json", root / "meta" / "info.json"], nodes)

    import ray

    import threading

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous_handler = signal.getsignal(signal.SIGTERM)
    if in_main_thread:  # SIGTERM ends the run like Ctrl-C: Ray is shut down, trainers die with it
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        cpus_per_trial, device = resources.cpus, resources.device
        out(f"ray: {len(nodes)} node(s), {sum(n['CPU'] for n in nodes):g} CPU, {sum(n['GPU'] for n in nodes):g} GPU; "
            f"each trial asks for {resources.describe()}")
        remote = ray.remote(opts.trial_function).options(
            num_cpus=cpus_per_trial, num_gpus=resources.gpus, max_retries=MAX_TASK_RETRIES, retry_exceptions=False
        )
        running: dict[Any, TrialSpec] = {}
        status: dict[str, str] = {}
        errors: dict[str, str] = {}
        last_print: dict[str, tuple[float, str | None, str]] = {}
        while True:
            sched.update_winners()
            for stage in list(sched.winners):
                if status.get(f"stage:{stage}") is None:
                    status[f"stage:{stage}"] = "decided"
                    out(f"stage {stage}: winner {sched.winners[stage]['trial']}")
            wanted = sched.wanted()
            total = len(wanted)
            # Early starts first: they take a free machine at once (the plan's second machine).
            for spec in sorted(wanted, key=lambda s: not s.early):
                key = spec.key
                if key in status:
                    continue
                conflict = spec_conflict(trial_dir(output_dir, spec), spec)
                if conflict:
                    status[key] = "failed"
                    errors[key] = conflict
                    sched.failed_stages[spec.stage] = f"trial {key} conflicts with an earlier run"
                    sched.block_dependents()
                    out(f"{_now()} FAILED {key}: {conflict}")
                    continue
                done = read_done(trial_dir(output_dir, spec))
                if done and evaluations_complete(done, opts.retry_failed_evals) and not missing_evaluations(spec, done):
                    status[key] = "done"
                    continue
                if opts.max_concurrent_trials and len(running) >= opts.max_concurrent_trials:
                    continue
                # Written before the task starts so that the report lists queued trials too.
                atomic_write_json(trial_dir(output_dir, spec) / "trial.json", spec.to_dict())
                status[key] = "running"
                running[remote.remote(spec.to_dict(), str(output_dir), device, cpus_per_trial)] = spec
                out(f"{_now()} start {key}" + (" (evaluations only)" if done else ""))
            if not running:
                # Trials found finished on disk may decide a stage and make the next one ready.
                if sched.update_winners() or len(sched.wanted()) != total:
                    continue
                break
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=opts.poll_s)
            for ref in ready:
                spec = running.pop(ref)
                try:
                    result = ray.get(ref)
                    status[spec.key] = "done"
                    evals = ", ".join(f"{k}:{v.get('status')}" for k, v in result.get("evaluations", {}).items())
                    out(f"{_now()} done  {spec.key}  ({evals or 'no evaluations'})")
                except Exception as e:  # noqa: BLE001 - one failed trial must not stop the others
                    status[spec.key] = "failed"
                    errors[spec.key] = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
                    sched.failed_stages[spec.stage] = f"trial {spec.key} failed"
                    sched.block_dependents()
                    out(f"{_now()} FAILED {spec.key}: {e}")
            n_done = sum(1 for k, v in status.items() if v == "done" and not k.startswith("stage:"))
            for spec in running.values():
                progress = _read_progress(output_dir, spec)
                if progress is None:
                    continue
                line = _progress_line(spec, progress, n_done, total)
                prev = last_print.get(spec.key)
                phase_changed = prev is None or prev[1] != progress.get("phase")
                if phase_changed or (line != prev[2] and time.time() - prev[0] >= opts.print_every_s):
                    out(f"{_now()} {line}")
                    last_print[spec.key] = (time.time(), progress.get("phase"), line)
    except KeyboardInterrupt:
        out("interrupted: finished trials are kept; re-run the same command to resume")
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous_handler)

    for name, reason in sched.no_winner.items():
        out(f"stage {name}: finished without a winner ({reason})")
    for name, reason in sched.failed_stages.items():
        out(f"stage {name}: not completed ({reason})")
    for key, err in errors.items():
        out(f"trial {key} failed: {err}")
    wall_s = round(time.time() - started)
    with (output_dir / "runs.jsonl").open("a") as f:
        f.write(json.dumps({"finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": wall_s,
                            "complete": not sched.failed_stages, "plan": plan.name}) + "\n")
    if opts.write_report:
        path = write_report(output_dir)
        out(f"report: {path}")
    out(f"plan {plan.name}: {'finished' if not sched.failed_stages else 'incomplete'} in {wall_s} s")
    return 0 if not sched.failed_stages else 1


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")


def _raise_interrupt(*_) -> None:
    raise KeyboardInterrupt


def _read_progress(output_dir: Path, spec: TrialSpec) -> dict | None:
    try:
        return json.loads((trial_dir(output_dir, spec) / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _progress_line(spec: TrialSpec, p: dict, n_done: int, total: int) -> str:
    """One compact status line: trial, step of total, loss, time left."""
    loss = p.get("loss")
    loss_s = f"loss {loss:.4f}" if isinstance(loss, (int, float)) else "loss -"
    if p.get("phase") == "train":
        return (f"[{n_done}/{total} done] {spec.key} train step {p.get('step')}/{p.get('total')} {loss_s} "
                f"left {_fmt_eta(p.get('eta_s'))}")
    return f"[{n_done}/{total} done] {spec.key} {p.get('phase')}"
