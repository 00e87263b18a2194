"""Fine-tune stages (`init_from`) and plans that extend another plan (`extends`).

The fine-tune test runs the real lerobot-train twice on a local Ray: a base stage, then a stage
that starts from each seed's base checkpoint through LeRobot's `--policy.path`. With a learning
rate of 0 the fine-tuned weights must equal the checkpoint's bit for bit (a fresh initialisation,
or the wrong seed's checkpoint, would not)."""

import json

import pytest
from safetensors.torch import load_file

from lerobot_policy_act_smooth.experiments.plan import PlanError, load_plan, resolve_stage, validate_plan
from lerobot_policy_act_smooth.experiments.runner import RunOptions, run_plan
from plan_helpers import plan_text, write_plan

FINETUNE = """
[stages.base]
steps = 10
set."policy.optimizer_lr" = 1e-3
replay_modes = []
[stages.tune]
init_from = "base"
steps = 2
set."policy.optimizer_lr" = 0.0
set."policy.optimizer_lr_backbone" = 0.0
replay_modes = []
"""


def _weights(trial_dir):
    return load_file(str(trial_dir / "train" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors"))


def test_finetune_starts_from_each_seeds_checkpoint(local_ray, exp_dataset_root, tmp_path):
    text = plan_text(exp_dataset_root, FINETUNE, batch_size=16, save_freq=5).replace("seed = 7\n", "seeds = [5, 6]\n")
    plan = load_plan(write_plan(tmp_path / "ft.toml", text))
    out = tmp_path / "run"
    lines = []
    assert run_plan(plan, RunOptions(output_dir=out, poll_s=0.5), out=lines.append) == 0, "\n".join(lines)
    for seed in (5, 6):
        base, tuned = out / "base" / f"run.seed{seed}", out / "tune" / f"run.seed{seed}"
        spec = json.loads((tuned / "trial.json").read_text())
        assert spec["init_checkpoint_of"] == str(base)
        model = (base / "train" / "checkpoints" / "last" / "pretrained_model").resolve()  # the step, not "last"
        assert f"--policy.path={model}" in (tuned / "train.log").read_text()
        before, after = _weights(base), _weights(tuned)
        assert before.keys() == after.keys()
        assert all((before[k] == after[k]).all() for k in before), f"seed {seed}: lr 0 changed the weights"
    other = _weights(out / "base" / "run.seed6")
    assert any((other[k] != _weights(out / "tune" / "run.seed5")[k]).any() for k in other)  # seeds differ


@pytest.mark.parametrize("stage, message", [
    ('[stages.t]\ninit_from = "nope"\nsteps = 1\n', "init_from references unknown stage 'nope'"),
    ('[stages.t]\ninit_from = "base"\nsteps = 1\nseeds = [99]\n', "seeds \\[99\\] have no checkpoint"),
    ('[stages.t]\ninit_from = "base"\nsteps = 1\nset."policy.type" = "act"\n', "keeps the policy type"),
    ('[stages.t]\ninit_from = "base"\nsteps = 1\nset."policy.optimizer_lr" = "winner:base"\n'
     'start_early."policy.optimizer_lr" = 1e-4\n', "cannot start before the checkpoint"),
])
def test_bad_finetune_stages_are_refused(stage, message, exp_dataset_root, tmp_path):
    text = plan_text(exp_dataset_root, "[stages.base]\nsteps = 2\n" + stage)
    with pytest.raises(PlanError, match=message):
        validate_plan(load_plan(write_plan(tmp_path / "bad.toml", text)), tmp_path)


def test_extends_merges_tables_and_appends_stages(exp_dataset_root, tmp_path):
    base = write_plan(tmp_path / "base.toml", plan_text(exp_dataset_root, """
[stages.a]
steps = 2
[stages.b]
steps = 3
set."policy.dim_model" = 8
"""))
    child = write_plan(tmp_path / "child.toml", """
extends = "base.toml"
name = "child"
[policy]
dim_model = 32
[stages.b]
steps = 5
[stages.c]
steps = 1
set."policy.dim_model" = "winner:a"
""")
    plan = load_plan(child)
    validate_plan(plan, tmp_path)
    assert plan.name == "child" and list(plan.stages) == ["a", "b", "c"]
    assert plan.policy["dim_model"] == 32 and plan.policy["type"] == "act"  # merged over the base's [policy]
    assert plan.stages["b"].steps == 5 and plan.stages["b"].set == {}  # a stage is replaced whole
    assert plan.train["batch_size"] == 4
    ds = {"dataset.repo_id": "r", "dataset.root": "x", "dataset.episodes": [0]}
    assert resolve_stage(plan, plan.stages["a"], {}, ds)[0].flags["policy.dim_model"] == 32

    loop = write_plan(tmp_path / "loop.toml", 'extends = "loop.toml"\n')
    with pytest.raises(PlanError, match="cycle"):
        load_plan(loop)
    with pytest.raises(PlanError, match="unknown plan"):
        load_plan(write_plan(tmp_path / "orphan.toml", 'extends = "no-such-plan"\n'))


def test_cpu_methods_reuses_the_cpu_plans_trials(tmp_path):
    """Run into a finished `cpu` output_dir, the methods plan must resolve the cpu stages to the
    very same trials (same folders, same flags), so that they are reused, not retrained."""
    cpu, methods = load_plan("cpu"), load_plan("cpu-methods")
    validate_plan(methods, tmp_path)
    assert list(methods.stages)[: len(cpu.stages)] == list(cpu.stages)
    ds = {"dataset.repo_id": "r", "dataset.root": "x", "dataset.episodes": [0]}
    winners = {"lr_sweep": {"policy.optimizer_lr": 1e-3, "policy.optimizer_lr_backbone": 1e-3}}
    for name in ("lr_sweep", "baseline", "vanilla_act"):
        deps = {d: winners[d] for d in cpu.stages[name].dependencies}
        same = [(t.name, t.flags) for t in resolve_stage(cpu, cpu.stages[name], deps, ds)]
        assert [(t.name, t.flags) for t in resolve_stage(methods, methods.stages[name], deps, ds)] == same
    assert methods.stages["finetune"].init_from == "baseline"
    assert methods.stage_seeds(methods.stages["finetune"]) == cpu.seeds
    for name in ("smooth_head", "perturbed_prefix", "own_prefix", "sampled_delays"):
        assert methods.stages[name].set["policy.optimizer_lr"] == "winner:lr_sweep", name
        assert methods.stage_seeds(methods.stages[name]) == cpu.seeds
