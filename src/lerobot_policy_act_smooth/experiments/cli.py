"""`actsmooth-experiment run|report|validate` (draccus flags, like LeRobot's scripts).

    actsmooth-experiment run --plan=cpu-small --output_dir=runs/cpu-small [--ray_address=HOST:6379]
        [--max_concurrent_trials=N] [--cpus_per_trial=N] [--gpus_per_trial=N]
        [--dataset_root=PATH] [--dataset_repo_id=ID] [--dataset_seed=N] [--seeds=N,N,...] [--stages=NAME[,NAME]]
        [--evaluation_extra_episodes=0,1,2] [--dry_run=true [--step_time_s=S]]
    actsmooth-experiment report --output_dir=runs/cpu-small
    actsmooth-experiment rescore --output_dir=runs/cpu [--replan=false]   older evaluations: add the new measures
    actsmooth-experiment latency --output_dir=runs/cpu [--latencies_ms=0,33,...,500] [--variants=baseline,...]
        [--episodes=20] [--seed=1000] [--jobs=2] [--dry_run=true]   closed-loop latency sweep (docs/deployment.md)
    actsmooth-experiment validate --plan=paper [--dataset_root=PATH]
    actsmooth-experiment COMMAND --help      every flag of COMMAND

Exit codes: 0 done, 1 some trial or stage failed (re-run to retry), 2 bad plan or flags.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

USAGE = __doc__
PROG = "actsmooth-experiment"


@dataclass
class ValidateConfig:
    # A shipped plan name (paper, cpu-small) or the path of a plan .toml file.
    plan: str = "cpu-small"
    # Where every trial, log, evaluation and the report go (shared storage for a multi-node cluster).
    output_dir: str = ""
    # Use this existing local dataset instead of the plan's (drops the plan's generate section).
    dataset_root: str | None = None
    # Dataset id. Without --dataset_root: a hub dataset, read from LeRobot's cache
    # (HF_LEROBOT_HOME/ID) or fetched there once before any trial starts.
    dataset_repo_id: str | None = None
    # Seed of the simulated dataset the plan generates (replaces [dataset.generate] seed).
    dataset_seed: int | None = None
    # Training seeds, comma-separated (replaces the plan's `seeds`; stages with their own keep
    # them). Trials of seeds already in output_dir are reused.
    seeds: str | None = None
    # Run only these stages (comma-separated) and the stages they depend on.
    stages: str | None = None
    # Episodes also replayed, besides the held-out ones, and reported apart as trained-on
    # (comma-separated indices; replaces the plan's [evaluation] extra_episodes; "" for none).
    evaluation_extra_episodes: str | None = None


@dataclass
class RunConfig(ValidateConfig):
    # Address of an existing Ray cluster (e.g. "10.0.0.1:6379" or "auto"); empty: a local Ray.
    ray_address: str | None = None
    # At most this many trials at once (default: as many as the cluster's resources allow).
    max_concurrent_trials: int | None = None
    # CPUs each trial asks Ray for (default 1 without GPUs; CPUs per GPU with GPUs).
    cpus_per_trial: int | None = None
    # GPUs each trial asks Ray for (default 1 when the plan sets policy.device=cuda, or sets no
    # device and the cluster has GPUs; else 0). Fractions share a GPU between trials.
    gpus_per_trial: float | None = None
    # Finished trials: evaluations that were unavailable (evaluator not installed) are always
    # retried; with this flag also those that ran and failed.
    retry_failed_evals: bool = False
    # Write the report at the end.
    report: bool = True
    # Print every trial the run would start (stage, changed flags, resources, steps, estimated
    # duration) and start nothing.
    dry_run: bool = False
    # Dry run: seconds per training step for the duration estimates (default: measured from the
    # earlier trials in output_dir, when there are any).
    step_time_s: float | None = None


@dataclass
class RescoreConfig:
    # The run folder whose finished evaluations gain the current scorers' missing measures.
    output_dir: str = ""
    # Also the replan discontinuity (needs each evaluation's chunks file: evaluations written
    # before it existed are refused with this flag on; --replan=false leaves that measure out).
    replan: bool = True


@dataclass
class ReportConfig:
    # The output_dir of a run.
    output_dir: str = ""


class FlagError(ValueError):
    pass


def _parse(cls, command: str, args: list[str]):
    import draccus
    from draccus.utils import DecodingError

    try:
        return draccus.parse(config_class=cls, args=args, prog=f"{PROG} {command}")
    except DecodingError as e:
        # "`field`: Could not decode ...\n    int: Couldn't parse 'x' into an int" -> one line
        text = str(e).strip()
        field = re.match(r"`([^`]+)`", text)
        detail = re.sub(r"^\w+: ", "", text.splitlines()[-1].strip())
        raise FlagError(f"--{field.group(1) if field else '?'}: {detail}") from None


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Progress lines reach a log file (nohup, tee) as they are printed, not in 8 KiB blocks.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    # Trials and evaluations never touch the network (trial.py); the driver only does when it
    # fetches a hub dataset that is not in LeRobot's cache.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if argv and argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if not argv or argv[0] not in ("run", "report", "rescore", "validate", "latency"):
        print(USAGE, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    from .plan import PlanError, load_plan, validate_plan

    try:
        if command == "latency":
            from .latency_sweep import LatencyConfig, SweepError, run_latency_sweep

            cfg = _parse(LatencyConfig, command, args)
            try:
                return run_latency_sweep(cfg)
            except SweepError as e:
                return _error(f"{e} (nothing was started)")
        if command == "rescore":
            cfg = _parse(RescoreConfig, command, args)
            if not cfg.output_dir:
                return _error("--output_dir is required")
            from .rescore_run import RescoreRunError, rescore_run

            try:
                changed = rescore_run(cfg.output_dir, replan=cfg.replan)
            except RescoreRunError as e:
                return _error(f"{e} (nothing was rescored)")
            print(f"rescore: {len(changed)} evaluation(s) gained the current measures"
                  + "".join(f"\n  {p}" for p in changed))
            return 0
        if command == "report":
            cfg = _parse(ReportConfig, command, args)
            if not cfg.output_dir:
                return _error("--output_dir is required")
            from .report import write_report

            if not Path(cfg.output_dir).is_dir():
                return _error(f"{cfg.output_dir} does not exist")
            print(f"report: {write_report(cfg.output_dir)}")
            return 0

        cfg = _parse(RunConfig if command == "run" else ValidateConfig, command, args)
        plan = load_plan(cfg.plan)
        apply_overrides(plan, cfg)
        if command == "validate":
            validate_plan(plan, cfg.output_dir or "runs/validate")
            _print_plan(plan)
            return 0
        if not cfg.output_dir:
            return _error("--output_dir is required (e.g. --output_dir=runs/cpu-small)")
        if cfg.dry_run:
            from .dry_run import dry_run

            validate_plan(plan, cfg.output_dir)
            dry_run(plan, Path(cfg.output_dir), cfg.gpus_per_trial, cfg.cpus_per_trial, cfg.max_concurrent_trials,
                    cfg.step_time_s)
            return 0
        from .runner import RunOptions, run_plan

        opts = RunOptions(
            output_dir=Path(cfg.output_dir),
            ray_address=cfg.ray_address or None,
            max_concurrent_trials=cfg.max_concurrent_trials,
            cpus_per_trial=cfg.cpus_per_trial,
            gpus_per_trial=cfg.gpus_per_trial,
            retry_failed_evals=cfg.retry_failed_evals,
            write_report=cfg.report,
        )
        return run_plan(plan, opts)
    except (PlanError, FlagError) as e:
        return _error(str(e))
    except KeyboardInterrupt:
        return 130


def apply_overrides(plan, cfg: ValidateConfig) -> None:
    """The command line's changes to the plan, each checked (PlanError) before anything starts."""
    from .overrides import (apply_dataset_overrides, select_stages, set_dataset_seed, set_extra_eval_episodes,
                            set_training_seeds)

    apply_dataset_overrides(plan, cfg.dataset_root, cfg.dataset_repo_id)
    if cfg.dataset_seed is not None:
        set_dataset_seed(plan, cfg.dataset_seed, cfg.dataset_root)
    if cfg.seeds is not None:
        set_training_seeds(plan, cfg.seeds)
    if cfg.stages is not None:
        select_stages(plan, cfg.stages)
    if cfg.evaluation_extra_episodes is not None:
        set_extra_eval_episodes(plan, cfg.evaluation_extra_episodes)


def _print_plan(plan) -> None:
    print(f"plan {plan.name} ({plan.source}) is valid")
    for name, st in plan.stages.items():
        what = f"evaluates the checkpoint of {st.evaluate_checkpoint_of}" if st.evaluate_checkpoint_of else f"{st.steps} steps"
        sweep = f", sweep {st.sweep[0]} over {st.sweep[1]}" if st.sweep else ""
        deps = f", after {', '.join(st.dependencies)}" if st.dependencies else ""
        early = ", starts early" if st.start_early else ""
        print(f"  {name}: {what}{sweep}{deps}{early}; select by {st.select}")


if __name__ == "__main__":
    sys.exit(main())
