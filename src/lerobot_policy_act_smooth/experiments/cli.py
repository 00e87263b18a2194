"""`actsmooth-experiment run|report|validate` (draccus flags, like LeRobot's scripts).

    actsmooth-experiment run --plan=cpu-small --output_dir=runs/cpu-small [--ray_address=HOST:6379]
        [--max_concurrent_trials=N] [--cpus_per_trial=N] [--dataset_root=PATH --dataset_repo_id=ID]
    actsmooth-experiment report --output_dir=runs/cpu-small
    actsmooth-experiment validate --plan=paper [--dataset_root=PATH]

Exit codes: 0 done, 1 some trial or stage failed (re-run to retry), 2 bad plan or flags.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

USAGE = __doc__


@dataclass
class ValidateConfig:
    # A shipped plan name (paper, cpu-small) or the path of a plan .toml file.
    plan: str = "cpu-small"
    # Where every trial, log, evaluation and the report go (shared storage for a multi-node cluster).
    output_dir: str = ""
    # Use this existing dataset instead of the plan's (drops the plan's generate section).
    dataset_root: str | None = None
    dataset_repo_id: str | None = None


@dataclass
class RunConfig(ValidateConfig):
    # Address of an existing Ray cluster (e.g. "10.0.0.1:6379" or "auto"); empty: a local Ray.
    ray_address: str | None = None
    # At most this many trials at once (default: as many as the cluster's resources allow).
    max_concurrent_trials: int | None = None
    # CPUs each trial asks Ray for (default 1 without GPUs; CPUs per GPU with GPUs).
    cpus_per_trial: int | None = None
    # Finished trials: evaluations that were unavailable (evaluator not installed) are always
    # retried; with this flag also those that ran and failed.
    retry_failed_evals: bool = False
    report: bool = True


@dataclass
class ReportConfig:
    output_dir: str = ""


def _parse(cls, args):
    import draccus

    return draccus.parse(config_class=cls, args=args)


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if not argv or argv[0] not in ("run", "report", "validate"):
        print(USAGE, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    from .plan import PlanError, load_plan, validate_plan

    if command == "report":
        cfg = _parse(ReportConfig, args)
        if not cfg.output_dir:
            return _error("--output_dir is required")
        from .report import write_report

        if not Path(cfg.output_dir).is_dir():
            return _error(f"{cfg.output_dir} does not exist")
        print(f"report: {write_report(cfg.output_dir)}")
        return 0

    cfg = _parse(RunConfig if command == "run" else ValidateConfig, args)
    from .runner import RunOptions, apply_dataset_overrides, run_plan

    try:
        plan = load_plan(cfg.plan)
        apply_dataset_overrides(plan, cfg.dataset_root, cfg.dataset_repo_id)
        if command == "validate":
            validate_plan(plan, cfg.output_dir or "runs/validate")
            _print_plan(plan)
            return 0
        if not cfg.output_dir:
            return _error("--output_dir is required (e.g. --output_dir=runs/cpu-small)")
        opts = RunOptions(
            output_dir=Path(cfg.output_dir),
            ray_address=cfg.ray_address or None,
            max_concurrent_trials=cfg.max_concurrent_trials,
            cpus_per_trial=cfg.cpus_per_trial,
            retry_failed_evals=cfg.retry_failed_evals,
            write_report=cfg.report,
        )
        return run_plan(plan, opts)
    except PlanError as e:
        return _error(str(e))
    except KeyboardInterrupt:
        return 130


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
