"""Plan files: a base configuration plus stages of trials, as TOML.

A plan (see plans/paper.toml, and docs/experiments.md for the full reference):

    name = "cpu-small"
    seeds = [1000, 1001, 1002]   training seeds: every training variant runs once per seed
                                 (a single `seed = N` is the same as `seeds = [N]`)
    [dataset]            repo_id, root (none: the hub dataset in LeRobot's cache), heldout_episodes,
                         validation_episodes, optional [dataset.generate]
    [train]              lerobot-train flags shared by every trial (batch_size, save_freq, ...)
    [policy]             policy fields (`type` and the policy config fields), become --policy.X
    [selection]          final_loss_window, divergence_factor
    [evaluation]         replay_modes, closed_loop, closed_loop_episodes, replay_args, closed_loop_args, device,
                         noninferiority (margins of "not worse": { "gt MAE" = 0.25, "CL success" = -0.05 })
    [stages.NAME]        steps, sweep, set, select, start_early, evaluate_checkpoint_of, init_from, seeds, ...
    extends = "cpu"      optional: start from another plan (shipped name or path); this file's tables
                         are merged over it, and its stages come after the other plan's (a stage of
                         the same name replaces the other plan's)
    run_stages = [...]   optional: run only these stages and those they depend on (like --stages)

Values in `set` (and `start_early`) may be references, resolved when the trial is scheduled:
    "winner:STAGE"         the value the winning trial of STAGE used for this same field
    "winner:STAGE:FIELD"   the value of FIELD in the winning trial of STAGE
    "same:FIELD"           the value of FIELD in this trial (e.g. backbone lr = swept lr)
Field names are lerobot-train flag names without the leading dashes ("policy.optimizer_lr",
"batch_size"); nested TOML tables are flattened with dots.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .boundary_report import check_margins
from .errors import PlanError
from .selection import DIVERGENCE_FACTOR, FINAL_LOSS_WINDOW

WINNER_PREFIX = "winner:"
SAME_PREFIX = "same:"
# Flags the runner sets itself for every trial; a plan must not set them.
RUNNER_FLAGS = {"output_dir", "resume", "config_path", "job_name", "dataset.repo_id", "dataset.root", "dataset.episodes"}
KNOWN_SELECT_EVALS = ("gt_prefix", "self_chaining", "closed_loop")
REPLAY_MODES = ("gt_prefix", "self_chaining")

_TOP_KEYS = {"name", "description", "extends", "run_stages", "seed", "seeds", "dataset", "train", "policy", "selection", "evaluation", "stages"}
_DATASET_KEYS = {"repo_id", "root", "heldout_episodes", "validation_episodes", "in_memory", "generate"}
_GENERATE_KEYS = {"episodes", "seed", "fps", "cameras"}
_SELECTION_KEYS = {"final_loss_window", "divergence_factor"}
_EVAL_KEYS = {"noninferiority", "replay_modes", "replay_args", "closed_loop", "closed_loop_episodes", "closed_loop_args", "device", "seed",
              "baseline", "convergence_reference", "extra_episodes"}
_STAGE_KEYS = {
    "label", "steps", "sweep", "set", "select", "start_early", "evaluate_checkpoint_of",
    "replay_modes", "replay_args", "closed_loop", "closed_loop_args", "in_results", "seeds", "init_from",
}


@dataclass
class DatasetSpec:
    repo_id: str
    # Relative paths: to output_dir when generated, else to the current directory. None: a hub
    # dataset, read from (and fetched once into) LeRobot's cache HF_LEROBOT_HOME/<repo_id>.
    root: str | None
    heldout_episodes: int = 3
    generate: dict[str, Any] | None = None  # kwargs for sim.generate_dataset (episodes, seed, fps, cameras)
    # The first `validation_episodes` of the held-out episodes choose winners (select = EVAL.METRIC);
    # the rest are the ones the results table reports, so that selection never flatters a result.
    validation_episodes: int = 0
    # Train through `python -m lerobot_policy_act_smooth.train` (lerobot-train with the dataset's frames
    # held in memory: the same samples, read faster; see in_memory_frames.py).
    in_memory: bool = False

    @property
    def from_hub(self) -> bool:
        return self.root is None and self.generate is None

    def resolved_root(self, output_dir: str | Path) -> Path:
        if self.root is None:
            from .hub import cache_root

            return cache_root(self.repo_id)
        root = Path(self.root).expanduser()
        if root.is_absolute():
            return root
        return (Path(output_dir) / root) if self.generate is not None else root.resolve()


@dataclass
class Stage:
    name: str
    label: str
    steps: int
    sweep: tuple[str, list[Any]] | None
    set: dict[str, Any]
    select: str
    start_early: dict[str, Any] | None
    evaluate_checkpoint_of: str | None
    replay_modes: list[str] | None
    replay_args: list[str]
    closed_loop: bool | None
    closed_loop_args: list[str]
    in_results: bool
    seeds: list[int] | None = None  # training seeds of this stage; None: the plan's
    # Fine-tuning: each seed's trial starts from the final weights of that seed's winning trial of
    # this stage (lerobot-train --policy.path=...); `set` then changes what the fine-tune changes.
    init_from: str | None = None

    @property
    def dependencies(self) -> list[str]:
        deps = []
        for value in self.set.values():
            ref = parse_winner_ref(value)
            if ref and ref[0] not in deps:
                deps.append(ref[0])
        for source in (self.evaluate_checkpoint_of, self.init_from):
            if source and source not in deps:
                deps.append(source)
        return deps

    @property
    def trains(self) -> bool:
        return self.evaluate_checkpoint_of is None


@dataclass
class Plan:
    name: str
    description: str
    seeds: list[int]
    dataset: DatasetSpec
    train: dict[str, Any]
    policy: dict[str, Any]
    final_loss_window: int
    divergence_factor: float
    evaluation: dict[str, Any]
    stages: dict[str, Stage]  # in file order
    raw: dict[str, Any] = field(repr=False)
    source: str = ""

    @property
    def seed(self) -> int:
        """The first training seed; also the default seed of the evaluations."""
        return self.seeds[0]

    def stage_seeds(self, stage: Stage) -> list[int]:
        if stage.evaluate_checkpoint_of:
            return self.stage_seeds(self.stages[stage.evaluate_checkpoint_of])
        if stage.init_from and not stage.seeds:
            return self.stage_seeds(self.stages[stage.init_from])
        return list(stage.seeds) if stage.seeds else list(self.seeds)

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "plan": self.raw}, indent=2)


@dataclass
class TrialSpec:
    """One trial, fully resolved: what the worker runs. Serializable (plain dict via asdict)."""

    stage: str
    name: str  # directory name inside the stage folder: the variant, plus ".seed<N>" when a stage has several seeds
    label: str
    steps: int
    flags: dict[str, Any]  # lerobot-train flags (without output_dir / resume)
    early: bool = False
    variant: str = ""  # the swept value's name ("p_drop_obs_0.3") or "run": what selection compares
    seed: int | None = None  # training seed (also flags["seed"])
    evaluate_checkpoint_of: str | None = None  # path of a finished trial dir whose checkpoint is evaluated
    init_checkpoint_of: str | None = None  # path of a finished trial dir whose final weights start training
    replay_modes: list[str] = field(default_factory=list)
    replay_args: list[str] = field(default_factory=list)
    closed_loop: bool = False
    closed_loop_episodes: int = 0
    closed_loop_args: list[str] = field(default_factory=list)
    heldout_episodes: list[int] = field(default_factory=list)  # every evaluated episode (validation + test)
    validation_episodes: list[int] = field(default_factory=list)  # the held-out ones kept for selection
    in_memory_dataset: bool = False  # train through lerobot_policy_act_smooth.train (frames held in memory)
    # Also replayed, reported apart: episodes the user wants scored beside the held-out ones
    # (e.g. an earlier run's episodes, which were trained on). Held-out ones are not repeated.
    extra_eval_episodes: list[int] = field(default_factory=list)
    eval_device: str = "auto"  # "auto": the trial's device (cuda when it got a GPU)
    eval_seed: int = 0

    @property
    def key(self) -> str:
        return f"{self.stage}/{self.name}"

    @property
    def variant_key(self) -> str:
        return f"{self.stage}/{self.variant or self.name}"

    @property
    def test_episodes(self) -> list[int]:
        return [e for e in self.heldout_episodes if e not in set(self.validation_episodes)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrialSpec:
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


# --------------------------------------------------------------------------- loading


def shipped_plans() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).joinpath("plans").iterdir() if p.name.endswith(".toml"))


def load_plan(plan: str | Path) -> Plan:
    """Load a shipped plan by name ("paper", "cpu-small") or a plan file by path."""
    raw, source = _load_raw(plan, [])
    return plan_from_dict(raw, source)


def _load_raw(plan: str | Path, chain: list[str]) -> tuple[dict[str, Any], str]:
    """The parsed TOML of a plan, with `extends` resolved (the extended plan's tables first)."""
    text, source = _read_plan_text(plan)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"plan {source}: not valid TOML: {e}") from e
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, source
    if not isinstance(parent, str) or not parent:
        raise PlanError(f"plan {source}: extends must name a shipped plan or a .toml path, got {parent!r}")
    if source in chain:
        raise PlanError(f"plan {source}: `extends` forms a cycle: {' -> '.join(chain + [source])}")
    if not Path(parent).is_absolute() and Path(parent).suffix == ".toml" and not source.startswith("shipped:"):
        parent = str(Path(source).parent / parent)  # a relative path is relative to the extending file
    base, _ = _load_raw(parent, chain + [source])
    return merge_plan_tables(base, raw), source


def merge_plan_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` over `base`: tables merge key by key, other values are replaced; under `stages`
    each stage is replaced whole (a stage is one experiment, not a patch), new ones come last."""
    out = dict(base)
    for key, value in override.items():
        if key == "stages" and isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = {**base[key], **value}
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge_plan_tables(base[key], value)
        else:
            out[key] = value
    return out


def _read_plan_text(plan: str | Path) -> tuple[str, str]:
    path = Path(plan)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise PlanError(f"plan file {path} does not exist (shipped plans: {', '.join(shipped_plans())})")
        return path.read_text(), str(path.resolve())
    ref = resources.files(__package__).joinpath("plans", f"{plan}.toml")
    if not ref.is_file():
        raise PlanError(
            f"unknown plan {plan!r}: give a shipped plan name ({', '.join(shipped_plans())}) or a path to a .toml file"
        )
    return ref.read_text(), f"shipped:{plan}"


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"policy": {"lr": 1}} -> {"policy.lr": 1}; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


def plan_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Plan:
    """Build a Plan from parsed TOML; raises PlanError listing every structural problem."""
    errors: list[str] = []
    _unknown(errors, "plan", raw, _TOP_KEYS)
    ds = raw.get("dataset")
    dataset = None
    if not isinstance(ds, dict) or not ds.get("repo_id") or (ds.get("generate") is not None and not ds.get("root")):
        errors.append("missing dataset: the plan needs [dataset] with repo_id (a hub id, or with root a local copy; "
                      "[dataset.generate] and root to create one)")
    else:
        _unknown(errors, "[dataset]", ds, _DATASET_KEYS)
        gen = ds.get("generate")
        if gen is not None:
            _unknown(errors, "[dataset.generate]", gen, _GENERATE_KEYS)
            if not isinstance(gen.get("episodes"), int) or gen["episodes"] < 1:
                errors.append("[dataset.generate] episodes must be a positive integer")
        heldout = ds.get("heldout_episodes", 3)
        if not isinstance(heldout, int) or heldout < 0:
            errors.append(f"[dataset] heldout_episodes must be an integer >= 0, got {heldout!r}")
        validation = ds.get("validation_episodes", 0)
        if not isinstance(validation, int) or isinstance(validation, bool) or validation < 0:
            errors.append(f"[dataset] validation_episodes must be an integer >= 0, got {validation!r}")
        elif isinstance(heldout, int) and validation and validation >= heldout:
            errors.append(f"[dataset] validation_episodes ({validation}) must be fewer than heldout_episodes "
                          f"({heldout}): the rest of the held-out episodes are the reported ones")
        in_memory = ds.get("in_memory", False)
        if not isinstance(in_memory, bool):
            errors.append(f"[dataset] in_memory must be true or false, got {in_memory!r}")
        dataset = DatasetSpec(str(ds["repo_id"]), str(ds["root"]) if ds.get("root") else None, heldout, gen,
                              validation, bool(in_memory))
    seeds = _parse_seeds(errors, "plan", raw.get("seeds", [raw.get("seed", 1000)]))
    if "seed" in raw and "seeds" in raw:
        errors.append("the plan sets both `seed` and `seeds`: keep `seeds = [...]`")
    train = flatten(raw.get("train", {}))
    policy = flatten(raw.get("policy", {}))
    if "type" not in policy:
        errors.append("[policy] needs `type` (e.g. \"act_smooth\" or \"act\")")
    sel = raw.get("selection", {})
    _unknown(errors, "[selection]", sel, _SELECTION_KEYS)
    window = sel.get("final_loss_window", FINAL_LOSS_WINDOW)
    factor = sel.get("divergence_factor", DIVERGENCE_FACTOR)
    if not isinstance(window, int) or window < 1:
        errors.append(f"[selection] final_loss_window must be an integer >= 1, got {window!r}")
    if not isinstance(factor, (int, float)) or factor <= 1:
        errors.append(f"[selection] divergence_factor must be a number > 1, got {factor!r}")
    evaluation = dict(raw.get("evaluation", {}))
    _unknown(errors, "[evaluation]", evaluation, _EVAL_KEYS)
    evaluation.setdefault("replay_modes", list(REPLAY_MODES))
    evaluation.setdefault("replay_args", [])
    evaluation.setdefault("closed_loop", "auto")
    evaluation.setdefault("closed_loop_episodes", 5)
    evaluation.setdefault("closed_loop_args", [])
    evaluation.setdefault("device", "auto")
    evaluation.setdefault("extra_episodes", [])
    extra = evaluation["extra_episodes"]
    if not isinstance(extra, list) or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in extra):
        errors.append(f"[evaluation] extra_episodes must be a list of episode indices >= 0, got {extra!r}")
    for mode in evaluation["replay_modes"]:
        if mode not in REPLAY_MODES:
            errors.append(f"[evaluation] unknown replay mode {mode!r} (use {', '.join(REPLAY_MODES)})")
    if "noninferiority" in evaluation:
        errors += check_margins(evaluation["noninferiority"])

    stages: dict[str, Stage] = {}
    for name, st in (raw.get("stages") or {}).items():
        where = f"[stages.{name}]"
        if not isinstance(st, dict):
            errors.append(f"{where} must be a table")
            continue
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            errors.append(f"{where}: stage names may only use letters, digits, '_' and '-'")
        _unknown(errors, where, st, _STAGE_KEYS)
        evaluate_of = st.get("evaluate_checkpoint_of")
        init_from = st.get("init_from")
        if init_from is not None and not isinstance(init_from, str):
            errors.append(f"{where}: init_from must name a stage, got {init_from!r}")
            init_from = None
        steps = st.get("steps", 0 if evaluate_of else None)
        if evaluate_of is None and (not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0):
            errors.append(f"{where}: steps must be a positive integer, got {steps!r}")
        sweep = None
        if "sweep" in st:
            sw = flatten(st["sweep"]) if isinstance(st["sweep"], dict) else None
            if not sw or len(sw) != 1:
                errors.append(f"{where}: sweep must name exactly one field, e.g. sweep.\"policy.optimizer_lr\" = [1e-5, 3e-5]")
            else:
                (fname, values), = sw.items()
                if not isinstance(values, list) or not values:
                    errors.append(f"{where}: empty sweep over {fname}: give at least one value")
                elif len(set(map(repr, values))) != len(values):
                    errors.append(f"{where}: sweep over {fname} repeats a value")
                else:
                    sweep = (fname, values)
        select = st.get("select", "final_loss")
        if select != "final_loss" and not (
            isinstance(select, str) and select.split(".", 1)[0] in KNOWN_SELECT_EVALS and "." in select
        ):
            errors.append(
                f"{where}: select must be \"final_loss\" or EVAL.METRIC with EVAL in {', '.join(KNOWN_SELECT_EVALS)}, got {select!r}"
            )
        modes = st.get("replay_modes")
        for mode in modes or []:
            if mode not in REPLAY_MODES:
                errors.append(f"{where}: unknown replay mode {mode!r}")
        stages[name] = Stage(
            name=name,
            label=str(st.get("label", name)),
            steps=int(steps or 0) if isinstance(steps, int) else 0,
            sweep=sweep,
            set=flatten(st.get("set", {})),
            select=select,
            start_early=flatten(st["start_early"]) if isinstance(st.get("start_early"), dict) else None,
            evaluate_checkpoint_of=evaluate_of,
            replay_modes=modes,
            replay_args=list(st.get("replay_args", [])),
            closed_loop=st.get("closed_loop"),
            closed_loop_args=list(st.get("closed_loop_args", [])),
            in_results=bool(st.get("in_results", True)),
            seeds=_parse_seeds(errors, where, st["seeds"]) if "seeds" in st else None,
            init_from=init_from,
        )
        if "seeds" in st and evaluate_of:
            errors.append(f"{where}: an evaluation-only stage uses the seeds of the stage it evaluates; remove `seeds`")
    if not stages:
        errors.append("the plan has no [stages.NAME] section")
    run_stages = raw.get("run_stages")
    if run_stages is not None:
        if not (isinstance(run_stages, list) and run_stages and all(isinstance(n, str) for n in run_stages)):
            errors.append(f"run_stages must be a non-empty list of stage names, got {run_stages!r}")
        elif unknown := [n for n in run_stages if n not in stages]:
            errors.append(f"run_stages: unknown stage {', '.join(map(repr, unknown))} (stages: {', '.join(stages)})")
        else:
            stages = {n: st for n, st in stages.items() if n in stages_with_dependencies(stages, run_stages)}
    if errors:
        raise PlanError(_format_errors(source, errors))
    return Plan(
        name=str(raw.get("name", Path(source).stem)),
        description=str(raw.get("description", "")),
        seeds=seeds,
        dataset=dataset,
        train=train,
        policy=policy,
        final_loss_window=window,
        divergence_factor=float(factor),
        evaluation=evaluation,
        stages=stages,
        raw=raw,
        source=source,
    )


def stages_with_dependencies(stages: dict[str, Stage], wanted: list[str]) -> set[str]:
    """The names in ``wanted`` and every stage they depend on (winner references, evaluated or
    fine-tuned checkpoints), transitively."""
    keep: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in keep or name not in stages:
            continue  # an unknown reference is reported by validate_plan
        keep.add(name)
        todo.extend(stages[name].dependencies)
    return keep


def _parse_seeds(errors: list[str], where: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        errors.append(f"{where}: seeds must be a non-empty list of integers, e.g. seeds = [1000, 1001, 1002]; got {value!r}")
        return [1000]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        errors.append(f"{where}: seeds must be integers, got {value!r}")
        return [1000]
    if len(set(value)) != len(value):
        errors.append(f"{where}: seeds {value!r} repeat a value")
    return list(value)


def _unknown(errors: list[str], where: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        errors.append(f"{where} must be a table")
        return
    for k in table:
        if k not in allowed:
            errors.append(f"{where}: unknown key {k!r} (allowed: {', '.join(sorted(allowed))})")


def _format_errors(source: str, errors: list[str]) -> str:
    return f"invalid plan {source}:\n" + "\n".join(f"  - {e}" for e in errors)


# --------------------------------------------------------------------------- references


def parse_winner_ref(value: Any) -> tuple[str, str | None] | None:
    """"winner:STAGE" -> (STAGE, None); "winner:STAGE:FIELD" -> (STAGE, FIELD); else None."""
    if isinstance(value, str) and value.startswith(WINNER_PREFIX):
        parts = value[len(WINNER_PREFIX):].split(":", 1)
        return parts[0], (parts[1] if len(parts) > 1 else None)
    return None


def parse_same_ref(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(SAME_PREFIX):
        return value[len(SAME_PREFIX):]
    return None


# --------------------------------------------------------------------------- validation


def policy_fields(policy_type: str) -> set[str] | None:
    """Field names of the config dataclass registered for `policy_type`, or None if unknown here."""
    try:
        from lerobot.configs.policies import PreTrainedConfig

        import lerobot.policies  # noqa: F401  (registers LeRobot's own policy types)
        if policy_type == "act_smooth":
            import lerobot_policy_act_smooth  # noqa: F401  (registers act_smooth)
        cls = PreTrainedConfig.get_choice_class(policy_type)
    except Exception:  # noqa: BLE001 - an unknown type is reported by the caller
        return None
    return {f.name for f in dataclasses.fields(cls)}


def train_fields() -> set[str]:
    from lerobot.configs.train import TrainPipelineConfig

    return {f.name for f in dataclasses.fields(TrainPipelineConfig)}


def base_flags(plan: Plan) -> dict[str, Any]:
    flags = dict(plan.train)
    flags.update({f"policy.{k}": v for k, v in plan.policy.items()})
    return flags


def validate_plan(plan: Plan, output_dir: str | Path | None = None) -> None:
    """Semantic checks before any trial starts: stage references, field names, dependency cycles,
    the dataset. Raises PlanError listing every problem."""
    errors: list[str] = []
    stages = plan.stages
    base = base_flags(plan)
    known_train = train_fields()
    type_fields: dict[str, set[str] | None] = {}

    def fields_of(ptype: str) -> set[str] | None:
        if ptype not in type_fields:
            type_fields[ptype] = policy_fields(ptype)
        return type_fields[ptype]

    all_policy_fields = set()
    for ptype in {plan.policy.get("type")} | {st.set.get("policy.type") for st in stages.values()}:
        if isinstance(ptype, str) and not ptype.startswith((WINNER_PREFIX, SAME_PREFIX)):
            f = fields_of(ptype)
            if f is None:
                errors.append(f"unknown policy type {ptype!r} (is its plugin installed?)")
            else:
                all_policy_fields |= f

    def check_field(where: str, name: str) -> None:
        if name in RUNNER_FLAGS:
            errors.append(f"{where}: {name} is set by the runner for every trial; remove it from the plan")
            return
        if name == "steps" and where != "[train]":
            errors.append(f"{where}: set steps with the stage's `steps` key")
            return
        if name.startswith("policy."):
            pname = name[len("policy."):].split(".")[0]
            if pname != "type" and all_policy_fields and pname not in all_policy_fields:
                errors.append(f"{where}: unknown policy field {pname!r} (not a field of the policy config)")
        elif name.split(".")[0] not in known_train:
            errors.append(f"{where}: unknown lerobot-train flag {name!r}")

    for name in plan.train:
        check_field("[train]", name)
    if "steps" in plan.train:
        errors.append("[train]: steps is given per stage (`steps = N` in each [stages.NAME])")
    if "seed" in plan.train:
        errors.append("[train]: the training seed comes from the plan's `seeds = [...]`; remove seed from [train]")
    for name in plan.policy:
        check_field("[policy]", f"policy.{name}")

    order = list(stages)
    for name, st in stages.items():
        where = f"[stages.{name}]"
        fields = dict(st.set)
        if st.sweep:
            fields[st.sweep[0]] = st.sweep[1][0]
            if st.sweep[0] in st.set:
                errors.append(f"{where}: {st.sweep[0]} is both swept and set")
        for fname in fields:
            check_field(where, fname)
        if "seed" in fields:
            errors.append(f"{where}: the training seed comes from `seeds = [...]` (plan or stage); do not set or sweep seed")
        for fname, value in st.set.items():
            ref = parse_winner_ref(value)
            if ref:
                dep, dep_field = ref
                if dep not in stages:
                    errors.append(f"{where}: {fname} = {value!r} references unknown stage {dep!r} (stages: {', '.join(order)})")
                    continue
                if dep == name:
                    errors.append(f"{where}: {fname} references its own stage")
                    continue
                src = stages[dep]
                src_field = dep_field or fname
                src_fields = set(base) | set(src.set) | ({src.sweep[0]} if src.sweep else set())
                if src_field not in src_fields:
                    errors.append(f"{where}: {fname} = {value!r}, but stage {dep!r} never sets {src_field}")
            same = parse_same_ref(value)
            if same is not None and same not in fields and same not in base:
                errors.append(f"{where}: {fname} = {value!r}, but this trial has no field {same}")
        if st.evaluate_checkpoint_of is not None:
            if st.evaluate_checkpoint_of not in stages:
                errors.append(f"{where}: evaluate_checkpoint_of references unknown stage {st.evaluate_checkpoint_of!r}")
            if st.sweep or st.set:
                errors.append(f"{where}: a stage that evaluates another stage's checkpoint cannot sweep or set fields")
        if st.init_from is not None:
            src = stages.get(st.init_from)
            if src is None:
                errors.append(f"{where}: init_from references unknown stage {st.init_from!r} (stages: {', '.join(order)})")
            elif not src.trains:
                errors.append(f"{where}: init_from names {st.init_from!r}, which trains nothing; name a training stage")
            elif st.evaluate_checkpoint_of:
                errors.append(f"{where}: a stage either evaluates a checkpoint or fine-tunes one; remove init_from")
            elif st.seeds and set(st.seeds) - set(plan.stage_seeds(src)):
                errors.append(f"{where}: seeds {sorted(set(st.seeds) - set(plan.stage_seeds(src)))} have no "
                              f"checkpoint in stage {st.init_from!r} (its seeds: {plan.stage_seeds(src)})")
            elif "policy.type" in st.set:
                errors.append(f"{where}: a fine-tune keeps the policy type of the checkpoint; remove policy.type")
        if st.start_early is not None:
            refs = {f for f, v in st.set.items() if parse_winner_ref(v)}
            extra = set(st.start_early) - refs
            if extra:
                errors.append(f"{where}: start_early may only replace winner references; {', '.join(sorted(extra))} are not")
            if refs - set(st.start_early):
                errors.append(
                    f"{where}: start_early must give a value for every winner reference ({', '.join(sorted(refs - set(st.start_early)))} missing)"
                )
            if st.evaluate_checkpoint_of:
                errors.append(f"{where}: start_early is for training stages")
            if st.init_from:
                errors.append(f"{where}: a fine-tune cannot start before the checkpoint it starts from; remove start_early")
    cycle = _find_cycle(plan)
    if cycle:
        errors.append("stage references form a cycle: " + " -> ".join(cycle))

    n_episodes = None
    if plan.dataset.from_hub:
        from .hub import cached_dataset_root, check_hub_dataset

        problem = check_hub_dataset(plan.dataset.repo_id)
        if problem:
            errors.append(problem)
        elif cached_dataset_root(plan.dataset.repo_id) is not None:
            n_episodes = dataset_num_episodes(plan.dataset.resolved_root("."))
            # else: fetched at the start of the run, then checked (check_episode_counts)
    elif plan.dataset.generate is None:
        root = plan.dataset.resolved_root(output_dir or ".")
        if not (root / "meta" / "info.json").is_file():
            errors.append(
                f"missing dataset: {root} is not a LeRobot dataset (no meta/info.json); "
                "give an existing dataset root (--dataset_root=...), or add [dataset.generate] to create one"
            )
        else:
            n_episodes = dataset_num_episodes(root)
    else:
        n_episodes = plan.dataset.generate["episodes"]
    if n_episodes is not None:
        errors += check_episode_counts(plan, n_episodes)
    errors += check_camera_inputs(plan, output_dir)
    if errors:
        raise PlanError(_format_errors(plan.source, errors))


def _camera_sizes(plan: Plan, output_dir: str | Path | None, errors: list[str]) -> dict[str, tuple[int, int]]:
    """{feature key: (height, width)} of the plan's cameras: those it generates (checked against the
    simulator's), else those of its dataset on disk; {} when there are none or they are not known yet."""
    gen = plan.dataset.generate
    if gen is not None:
        if not gen.get("cameras"):
            return {}
        try:
            from ..sim.env import resolve_cameras
        except ImportError:  # no simulator here: the run itself says so before generating
            return {}
        try:
            return {f"observation.images.{k}": v for k, v in resolve_cameras(gen["cameras"]).items()}
        except ValueError as e:
            errors.append(f"[dataset.generate] cameras: {e}")
            return {}
    info = plan.dataset.resolved_root(output_dir or ".") / "meta" / "info.json"
    if not info.is_file():
        return {}
    features = json.loads(info.read_text()).get("features", {})
    return {k: tuple(f["shape"][:2]) for k, f in features.items()
            if f.get("dtype") in ("image", "video") and len(f.get("shape", ())) == 3}


def check_camera_inputs(plan: Plan, output_dir: str | Path | None = None) -> list[str]:
    """Before anything starts: the cameras a plan generates exist in the simulator, every
    vision_backbone its act_smooth trials use is a torchvision classification model, and each leaves
    a feature map of every camera's images (the policy's own checks, on a model without weights)."""
    errors: list[str] = []
    sizes = _camera_sizes(plan, output_dir, errors)
    backbones: dict[str, bool] = {}  # vision_backbone -> replace_final_stride_with_dilation
    for st in plan.stages.values():
        if st.evaluate_checkpoint_of or st.set.get("policy.type", plan.policy.get("type")) != "act_smooth":
            continue
        fields = {**{f"policy.{k}": v for k, v in plan.policy.items()}, **st.set}
        names = st.sweep[1] if st.sweep and st.sweep[0] == "policy.vision_backbone" else \
            [fields.get("policy.vision_backbone", "resnet18")]
        for name in names:
            if isinstance(name, str) and not name.startswith((WINNER_PREFIX, SAME_PREFIX)):
                backbones[name] = bool(fields.get("policy.replace_final_stride_with_dilation", False))
    if not backbones:
        return errors
    import logging

    from lerobot.configs.types import FeatureType, PolicyFeature

    from ..configuration_act_smooth import ACTSmoothConfig

    config_log = logging.getLogger(ACTSmoothConfig.__module__)
    level = config_log.level
    config_log.setLevel(logging.CRITICAL)  # the config logs its error for lerobot-train; here it is listed below
    try:
        for name, dilation in backbones.items():
            try:
                config = ACTSmoothConfig(
                    vision_backbone=name, pretrained_backbone_weights=None, device="cpu",
                    replace_final_stride_with_dilation=dilation,
                    input_features={k: PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
                                    for k, (h, w) in sizes.items()},
                )
                if sizes:
                    from ..modeling_act_smooth import build_backbone

                    build_backbone(config)
            except ValueError as e:
                errors.append(f"[policy] {e}")
    finally:
        config_log.setLevel(level)
    return errors


def check_episode_counts(plan: Plan, n_episodes: int) -> list[str]:
    """Problems of the held-out split and the extra evaluation episodes for a dataset of n episodes."""
    errors = []
    where = "[dataset.generate] episodes" if plan.dataset.generate is not None else f"dataset {plan.dataset.repo_id}"
    if n_episodes <= plan.dataset.heldout_episodes:
        errors.append(f"{where}: {n_episodes} episodes, and heldout_episodes = {plan.dataset.heldout_episodes} "
                      "leaves none to train on")
    outside = [e for e in plan.evaluation.get("extra_episodes", []) if e >= n_episodes]
    if outside:
        errors.append(f"evaluation episodes {outside} are outside the dataset ({where}: {n_episodes} episodes, "
                      f"indices 0..{n_episodes - 1}); give indices below {n_episodes}")
    return errors


def _find_cycle(plan: Plan) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        if state.get(n) == 1:
            return path[path.index(n):] + [n]
        if state.get(n) == 2 or n not in plan.stages:
            return None
        state[n] = 1
        path.append(n)
        for d in plan.stages[n].dependencies:
            c = visit(d)
            if c:
                return c
        path.pop()
        state[n] = 2
        return None

    for n in plan.stages:
        c = visit(n)
        if c:
            return c
    return None


def dataset_num_episodes(root: str | Path) -> int:
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    return int(info["total_episodes"])


def split_episodes(num_episodes: int, heldout: int) -> tuple[list[int], list[int]]:
    """(train, held-out): the last `heldout` episodes are held out and never trained on."""
    cut = num_episodes - heldout
    return list(range(cut)), list(range(cut, num_episodes))


# --------------------------------------------------------------------------- trials


def format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:g}" if math.isfinite(v) else str(v)
    if isinstance(v, list):
        return "[" + ",".join(format_value(x) for x in v) + "]"
    return str(v)


def trial_name(field_name: str, value: Any) -> str:
    short = field_name.split(".")[-1]
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{short}_{format_value(value)}")


def resolve_stage(
    plan: Plan,
    stage: Stage,
    winner_flags: dict[str, dict[str, Any]],
    dataset_flags: dict[str, Any],
    early: bool = False,
) -> list[TrialSpec]:
    """The trials of `stage` with every reference resolved.

    winner_flags: stage name -> flags of its winning trial (for the stages this one depends on).
    early: use the stage's start_early values in place of its winner references.
    """
    ev = plan.evaluation
    common = dict(
        replay_modes=list(stage.replay_modes if stage.replay_modes is not None else ev["replay_modes"]),
        replay_args=list(ev.get("replay_args", [])) + stage.replay_args,
        closed_loop_episodes=int(ev.get("closed_loop_episodes", 5)),
        closed_loop_args=list(ev.get("closed_loop_args", [])) + stage.closed_loop_args,
        eval_seed=int(ev.get("seed", plan.seed)),
        eval_device=str(ev.get("device", "auto")),
        extra_eval_episodes=list(ev.get("extra_episodes", [])),
    )
    seeds = plan.stage_seeds(stage)
    if stage.evaluate_checkpoint_of is not None:
        src = winner_flags[stage.evaluate_checkpoint_of]
        return [
            TrialSpec(stage=stage.name, name=seeded_name("run", seed, seeds),
                      label=stage.label + (f" seed {seed}" if len(seeds) > 1 else ""), steps=0,
                      flags={**src, "seed": seed}, variant="run", seed=seed, **common)
            for seed in seeds
        ]
    variants: list[tuple[str, str, dict[str, Any]]] = []
    if stage.sweep:
        fname, values = stage.sweep
        for v in values:
            variants.append((trial_name(fname, v), f"{stage.label} {fname.split('.')[-1]}={format_value(v)}", {fname: v}))
    else:
        variants.append(("run", stage.label, {}))
    trials = []
    for (name, label, swept), seed in ((v, s) for v in variants for s in seeds):
        flags = base_flags(plan)
        for fname, value in stage.set.items():
            ref = parse_winner_ref(value)
            if ref is None:
                continue
            if early:
                flags[fname] = stage.start_early[fname]
            else:
                dep, dep_field = ref
                flags[fname] = winner_flags[dep][dep_field or fname]
        flags.update({k: v for k, v in stage.set.items() if parse_winner_ref(v) is None and parse_same_ref(v) is None})
        flags.update(swept)
        for fname, value in stage.set.items():
            same = parse_same_ref(value)
            if same is not None:
                flags[fname] = flags[same]
        flags = drop_foreign_policy_fields(flags)
        flags["steps"] = stage.steps
        flags["seed"] = seed
        flags.update(dataset_flags)
        trials.append(
            TrialSpec(
                stage=stage.name,
                name=seeded_name(name, seed, seeds) + (".early" if early else ""),
                label=label + (f" seed {seed}" if len(seeds) > 1 else "") + (" (early start)" if early else ""),
                steps=stage.steps,
                flags=flags,
                early=early,
                variant=name,
                seed=seed,
                **common,
            )
        )
    return trials


def seeded_name(variant: str, seed: int, seeds: list[int]) -> str:
    """A trial folder's name: the variant alone when the stage has one seed (as before seeds existed)."""
    return f"{variant}.seed{seed}" if len(seeds) > 1 else variant


def drop_foreign_policy_fields(flags: dict[str, Any]) -> dict[str, Any]:
    """Drop policy fields that the trial's policy type does not have (e.g. the prefix lengths of
    act_smooth for a vanilla `act` trial). Unknown names were already rejected by validate_plan."""
    ptype = flags.get("policy.type")
    fields = policy_fields(ptype) if isinstance(ptype, str) else None
    if fields is None:
        return flags
    return {
        k: v
        for k, v in flags.items()
        if not k.startswith("policy.") or k == "policy.type" or k[len("policy."):].split(".")[0] in fields
    }
