"""Plan files: shipped plans load, references resolve, bad plans fail with one clear error
(exit 2) before any trial starts."""

import json

import pytest

from lerobot_policy_act_smooth.experiments.plan import (
    PlanError,
    load_plan,
    plan_from_dict,
    resolve_stage,
    split_episodes,
    validate_plan,
)
from plan_helpers import plan_text, run_cli, write_plan

TWO_STAGES = """
[stages.lr]
steps = 4
sweep."policy.optimizer_lr" = [1e-4, 1e-3]
set."policy.optimizer_lr_backbone" = "same:policy.optimizer_lr"
[stages.second]
steps = 3
set."policy.optimizer_lr" = "winner:lr"
set."policy.dim_model" = 8
"""


def _load(tmp_path, root, stages=TWO_STAGES, **kw):
    return load_plan(write_plan(tmp_path / "p.toml", plan_text(root, stages, **kw)))


def test_shipped_plans_are_valid(exp_dataset_root, tmp_path, monkeypatch):
    small = load_plan("cpu-small")
    validate_plan(small, tmp_path)  # generates its dataset: no dataset needed yet
    assert small.dataset.generate is not None
    paper = load_plan("paper")
    assert [s for s in paper.stages] == ["lr_sweep", "dropout", "relative", "baseline", "relative_dropout",
                                         "vanilla_act", "blending"]
    assert paper.stages["lr_sweep"].sweep == ("policy.optimizer_lr", [1e-5, 3e-5, 5e-5, 1e-4, 3e-4])
    assert paper.stages["lr_sweep"].steps == 5000 and paper.stages["dropout"].steps == 30000
    assert paper.stages["dropout"].sweep == ("policy.p_drop_obs", [0.1, 0.3, 0.5])
    assert paper.stages["relative"].start_early == {"policy.optimizer_lr": 3e-5, "policy.optimizer_lr_backbone": 3e-5}
    assert paper.policy["chunk_size"] == 30 and paper.train["batch_size"] == 32 and paper.train["save_freq"] == 10000
    assert paper.dataset.repo_id == "giacomoran/lerobot_policy_act_smooth_30fps" and paper.dataset.from_hub
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PlanError, match="missing dataset"):
        validate_plan(paper, tmp_path)  # the hub recordings are not in the cache, and the hub is offline
    paper.dataset.root = str(exp_dataset_root)
    validate_plan(paper, tmp_path)


def test_references_resolve(exp_dataset_root, tmp_path):
    plan = _load(tmp_path, exp_dataset_root)
    validate_plan(plan, tmp_path)
    ds = {"dataset.repo_id": "r", "dataset.root": "x", "dataset.episodes": [0, 1]}
    lr_trials = resolve_stage(plan, plan.stages["lr"], {}, ds)
    assert [t.name for t in lr_trials] == ["optimizer_lr_0.0001", "optimizer_lr_0.001"]
    assert all(t.flags["policy.optimizer_lr_backbone"] == t.flags["policy.optimizer_lr"] for t in lr_trials)
    second = resolve_stage(plan, plan.stages["second"], {"lr": lr_trials[1].flags}, ds)
    assert second[0].flags["policy.optimizer_lr"] == 1e-3 and second[0].flags["steps"] == 3
    assert plan.stages["second"].dependencies == ["lr"]


def test_act_trials_drop_prefix_fields(exp_dataset_root, tmp_path):
    stages = """
[stages.a]
steps = 2
set."policy.type" = "act"
"""
    plan = _load(tmp_path, exp_dataset_root, stages=stages,
                 extra_policy='length_prefix_past = 4\n').__class__  # noqa: F841 (type only)
    text = plan_text(exp_dataset_root, stages).replace('type = "act"\n', 'type = "act_smooth"\nlength_prefix_past = 4\n', 1)
    plan = load_plan(write_plan(tmp_path / "q.toml", text))
    validate_plan(plan, tmp_path)
    (trial,) = resolve_stage(plan, plan.stages["a"], {}, {})
    assert trial.flags["policy.type"] == "act" and "policy.length_prefix_past" not in trial.flags


def test_split_episodes():
    assert split_episodes(10, 3) == (list(range(7)), [7, 8, 9])


BAD = {
    "unknown stage reference": ('set."policy.optimizer_lr" = "winner:nope"', "unknown stage 'nope'"),
    "unknown policy field": ('set."policy.not_a_field" = 1', "unknown policy field 'not_a_field'"),
    "negative steps": (None, "steps must be a positive integer"),
    "empty sweep": ('sweep."policy.optimizer_lr" = []', "empty sweep"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_plans_fail_before_any_trial(case, exp_dataset_root, tmp_path):
    line, message = BAD[case]
    stage = "[stages.s]\nsteps = -5\n" if line is None else f"[stages.s]\nsteps = 2\n{line}\n"
    path = write_plan(tmp_path / "bad.toml", plan_text(exp_dataset_root, stage))
    with pytest.raises(PlanError, match=message):
        validate_plan(load_plan(path), tmp_path / "out")


def test_missing_dataset_cli_exit_2(tmp_path):
    path = write_plan(tmp_path / "bad.toml", plan_text(tmp_path / "no_such_dataset", TWO_STAGES))
    out = tmp_path / "out"
    res = run_cli(["run", f"--plan={path}", f"--output_dir={out}"], timeout=120)
    assert res.returncode == 2
    assert "missing dataset" in res.stderr and res.stderr.count("error:") == 1
    assert not out.exists()  # nothing started, nothing written


def test_unknown_plan_name_and_cycle(exp_dataset_root, tmp_path):
    with pytest.raises(PlanError, match="unknown plan"):
        load_plan("no-such-plan")
    cyc = """
[stages.a]
steps = 1
set."policy.optimizer_lr" = "winner:b"
[stages.b]
steps = 1
set."policy.optimizer_lr" = "winner:a"
"""
    with pytest.raises(PlanError, match="cycle"):
        validate_plan(_load(tmp_path, exp_dataset_root, stages=cyc), tmp_path)


def test_plan_round_trips_through_json(exp_dataset_root, tmp_path):
    plan = _load(tmp_path, exp_dataset_root)
    again = plan_from_dict(json.loads(plan.to_json())["plan"])
    assert list(again.stages) == list(plan.stages) and again.stages["lr"].sweep == plan.stages["lr"].sweep


def test_cpu_plan_has_the_evidence_the_answer_needs(tmp_path):
    """The converged CPU plan: >= 3 seeds per reported variant, >= 10 reported replay episodes apart
    from the validation ones, >= 20 closed-loop episodes, and every stage resolves."""
    plan = load_plan("cpu")
    validate_plan(plan, tmp_path)
    assert len(plan.seeds) >= 3
    assert plan.dataset.heldout_episodes - plan.dataset.validation_episodes >= 10
    assert plan.dataset.validation_episodes > 0 and plan.evaluation["closed_loop_episodes"] >= 20
    ds = {"dataset.repo_id": "r", "dataset.root": "x", "dataset.episodes": [0]}
    winners: dict = {}
    trials = {}
    for name, stage in plan.stages.items():  # file order is a valid order here
        deps = {d: winners[d] for d in stage.dependencies}
        trials[name] = resolve_stage(plan, stage, deps, ds)
        winners[name] = trials[name][0].flags
        if stage.in_results and stage.trains:
            assert sorted(t.seed for t in trials[name]) == sorted(plan.seeds), name
    assert [t.name for t in trials["baseline"]] == ["run.seed1000", "run.seed1001", "run.seed1002"]
    assert len(trials["dropout_sweep"]) == 3 and all(t.seed == 1000 for t in trials["dropout_sweep"])
    lr = winners["lr_sweep"]["policy.optimizer_lr"]
    act = trials["vanilla_act"][0].flags
    assert act["optimizer.lr"] == lr and "policy.scheduler" not in act  # act gets the schedule through lerobot-train
    assert trials["dropout"][0].flags["policy.p_drop_obs"] == winners["dropout_sweep"]["policy.p_drop_obs"]
    assert len(trials["blending"]) == 3  # each seed's baseline checkpoint


def test_cpu_methods_plan_compares_every_method_with_the_same_baseline(tmp_path):
    plan = load_plan("cpu-methods")
    validate_plan(plan, tmp_path)
    base = load_plan("cpu")
    assert plan.policy == base.policy and plan.dataset.generate == base.dataset.generate
    assert plan.evaluation["baseline"] == "baseline" and len(plan.seeds) >= 3
    methods = {name: st.set for name, st in plan.stages.items() if st.trains and name != "baseline"}
    assert methods["smooth_head"]["policy.chunk_basis"] == "dct"
    assert methods["perturbed_prefix"]["policy.p_prefix_perturb"] > 0
    assert methods["own_prefix"]["policy.p_prefix_own"] > 0
    for name, prefix_flag in (("smooth_join_perturbed", "policy.p_prefix_perturb"), ("smooth_join_own", "policy.p_prefix_own")):
        assert methods[name]["policy.chunk_basis"] == "dct" and methods[name]["policy.prefix_join_horizon"] > 0, name
        assert methods[name][prefix_flag] > 0, name
    assert plan.stages["history"].sweep == ("policy.length_prefix_past", [8, 16])


def test_cpu_recipe_plan_is_the_methods_plan_cut_to_three_stages(tmp_path):
    plan = load_plan("cpu-recipe")
    validate_plan(plan, tmp_path)
    methods = load_plan("cpu-methods")
    # run_stages keeps the named stages and what they depend on, nothing else
    assert list(plan.stages) == ["lr_sweep", "baseline", "blending", "smooth_join_own"]
    for name in plan.stages:
        assert plan.stages[name].set == methods.stages[name].set and plan.stages[name].steps == methods.stages[name].steps
    assert plan.policy == methods.policy and plan.dataset.generate == methods.dataset.generate
    assert plan.evaluation["noninferiority"] == {"gt MAE": 0.25, "sc MAE": 0.25, "CL success": -0.05}


@pytest.mark.parametrize("extra, message", [
    ('run_stages = ["nope"]', "run_stages: unknown stage 'nope'"),
    ('run_stages = []', "run_stages must be a non-empty list"),
])
def test_bad_run_stages(extra, message, exp_dataset_root, tmp_path):
    path = write_plan(tmp_path / "bad.toml", extra + "\n" + plan_text(exp_dataset_root, "[stages.s]\nsteps = 2\n"))
    with pytest.raises(PlanError, match=message):
        load_plan(path)


@pytest.mark.parametrize("table, message", [
    ('{ "gt MAE" = -0.25 }', r"noninferiority.gt MAE = -0.25: lower is better .* must be > 0"),
    ('{ "CL success" = 0.05 }', r"noninferiority.CL success = 0.05: higher is better .* must be < 0"),
    ('{ "U_a" = 0.1 }', "noninferiority: unknown metric 'U_a'"),
])
def test_a_margin_of_the_wrong_sign_is_refused(table, message, exp_dataset_root, tmp_path):
    text = plan_text(exp_dataset_root, "[stages.s]\nsteps = 2\n", evaluation=f"replay_modes = []\nnoninferiority = {table}")
    with pytest.raises(PlanError, match=message):
        load_plan(write_plan(tmp_path / "bad.toml", text))


def test_a_folder_named_like_a_shipped_plan_does_not_shadow_it(tmp_path, monkeypatch):
    # A run folder called `cpu` in the working directory (runs/cpu's parent) is not the plan `cpu`
    # that `cpu-methods` extends.
    (tmp_path / "cpu").mkdir()
    monkeypatch.chdir(tmp_path)
    assert "finetune" in load_plan("cpu-methods").stages
