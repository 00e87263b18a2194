"""Command-line changes to a loaded plan (dataset, dataset seed, stages, evaluation episodes),
each checked before anything starts: a bad value raises PlanError naming the flag and the fix."""

from __future__ import annotations

from pathlib import Path

from .plan import Plan, PlanError, stages_with_dependencies


def apply_dataset_overrides(plan: Plan, root: str | None, repo_id: str | None) -> None:
    """--dataset_root: an existing local dataset (the plan's generate section is dropped).
    --dataset_repo_id alone: that hub dataset, read from (or fetched into) LeRobot's cache."""
    if root:
        plan.dataset.root = str(Path(root).expanduser().resolve())
        plan.dataset.generate = None
    elif repo_id:
        plan.dataset.root = None
        plan.dataset.generate = None
    if repo_id:
        plan.dataset.repo_id = repo_id


def parse_int(text: str | int, flag: str) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    try:
        return int(str(text).strip())
    except ValueError:
        raise PlanError(f"--{flag} must be an integer, got {text!r}") from None


def parse_int_list(text: str, flag: str) -> list[int]:
    """"0,1,2" (or "[0,1,2]") -> [0, 1, 2]; non-negative integers only."""
    items = [x for x in str(text).strip().strip("[]").split(",") if x.strip()]
    values = [parse_int(x, flag) for x in items]
    if any(v < 0 for v in values):
        raise PlanError(f"--{flag} takes integers >= 0, got {text!r}")
    return values


def set_dataset_seed(plan: Plan, seed: int, dataset_root: str | None) -> None:
    """--dataset_seed: the seed of the simulated dataset the plan generates."""
    value = parse_int(seed, "dataset_seed")
    if dataset_root:
        raise PlanError("--dataset_seed chooses the seed of a generated dataset, but --dataset_root gives an existing "
                        "one (nothing is generated): drop one of the two flags")
    if plan.dataset.generate is None:
        raise PlanError(f"--dataset_seed: plan {plan.name} does not generate its dataset (no [dataset.generate]), "
                        "so there is no dataset seed to choose; drop the flag")
    plan.dataset.generate["seed"] = value
    plan.raw["dataset"]["generate"]["seed"] = value  # plan.json records the dataset actually used


def set_training_seeds(plan: Plan, seeds: str) -> None:
    """--seeds=1000,...: the plan's training seeds (stages that name their own keep them). Trials of
    seeds a folder already holds are reused: 5 seeds into a finished 3-seed run train 2 more each."""
    values = parse_int_list(seeds, "seeds")
    if not values:
        raise PlanError("--seeds names no seed: give e.g. --seeds=1000,1001,1002,1003,1004")
    if len(set(values)) != len(values):
        raise PlanError(f"--seeds repeats a seed: {seeds!r}")
    plan.seeds = values
    plan.raw["seeds"] = values  # plan.json records the seeds actually used
    plan.raw.pop("seed", None)


def select_stages(plan: Plan, names: str) -> list[str]:
    """--stages=A,B: keep A, B and every stage they depend on (winner references and
    evaluate_checkpoint_of, transitively), in plan order; return the kept names."""
    wanted = [n.strip() for n in str(names).split(",") if n.strip()]
    if not wanted:
        raise PlanError(f"--stages names no stage; give one or more of: {', '.join(plan.stages)}")
    unknown = [n for n in wanted if n not in plan.stages]
    if unknown:
        raise PlanError(f"--stages: unknown stage {', '.join(map(repr, unknown))}; stages of plan {plan.name}: "
                        f"{', '.join(plan.stages)}")
    keep = stages_with_dependencies(plan.stages, wanted)
    # plan.raw keeps every stage: plan.json and the report describe the whole plan.
    plan.stages = {n: st for n, st in plan.stages.items() if n in keep}
    return list(plan.stages)


def set_extra_eval_episodes(plan: Plan, episodes: str) -> None:
    """--evaluation_extra_episodes=0,1,2: replaces the plan's [evaluation] extra_episodes."""
    values = parse_int_list(episodes, "evaluation_extra_episodes")
    plan.evaluation["extra_episodes"] = values
    plan.raw.setdefault("evaluation", {})["extra_episodes"] = values
