"""The command line: --help, --stages (with the stages they depend on), --dataset_seed, the
evaluation-episode flag; each bad value is one error line, exit 2, nothing written."""

import json

import pytest

from lerobot_policy_act_smooth.experiments.cli import main
from lerobot_policy_act_smooth.experiments.overrides import select_stages, set_dataset_seed, set_training_seeds
from lerobot_policy_act_smooth.experiments.plan import PlanError, load_plan, validate_plan
from lerobot_policy_act_smooth.experiments.runner import prepare_dataset
from plan_helpers import plan_text, write_plan


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and err.startswith("error: "), err  # one message (a plan's lists each problem)
    return err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "actsmooth-experiment run" in capsys.readouterr().out
    for command in ("run", "validate", "report"):
        with pytest.raises(SystemExit) as e:
            main([command, "--help"])
        assert e.value.code == 0
    assert "--dataset_seed" in capsys.readouterr().out
    assert main([]) == 2  # no command: usage, and a failure


@pytest.mark.parametrize("wanted, kept", [
    ("baseline", ["lr_sweep", "baseline"]),
    ("blending,relative", ["lr_sweep", "relative", "baseline", "blending"]),
    ("relative_dropout", ["lr_sweep", "dropout", "relative_dropout"]),
    ("lr_sweep", ["lr_sweep"]),
])
def test_stages_keep_what_they_depend_on(wanted, kept, tmp_path):
    plan = load_plan("cpu-small")
    assert select_stages(plan, wanted) == kept
    assert list(plan.stages) == kept
    validate_plan(plan, tmp_path)  # the kept stages resolve on their own
    assert len(plan.raw["stages"]) == 7  # plan.json still describes the whole plan


def test_stages_flag_runs_only_those_stages(exp_dataset_root, tmp_path, capsys):
    stages = """
[stages.lr]
steps = 4
sweep."policy.optimizer_lr" = [1e-4, 1e-3]
[stages.second]
steps = 3
set."policy.optimizer_lr" = "winner:lr"
[stages.other]
steps = 3
"""
    plan = write_plan(tmp_path / "p.toml", plan_text(exp_dataset_root, stages))
    out = tmp_path / "out"
    assert main(["run", f"--plan={plan}", f"--output_dir={out}", "--stages=second", "--dry_run=true"]) == 0
    listed = capsys.readouterr().out
    assert "lr/optimizer_lr_0.0001" in listed and "second/run" in listed and "other/run" not in listed
    assert main(["run", f"--plan={plan}", f"--output_dir={out}", "--stages=second,nope"]) == 2
    err = _one_error(capsys)
    assert "unknown stage 'nope'" in err and "lr, second, other" in err
    assert not out.exists()


def test_dataset_seed(tmp_path, capsys, exp_dataset_root):
    plan = load_plan("cpu-small")
    set_dataset_seed(plan, 5, None)
    assert plan.dataset.generate["seed"] == 5 and plan.raw["dataset"]["generate"]["seed"] == 5
    out = tmp_path / "out"
    bad = {
        "--dataset_seed=abc": "--dataset_seed",
        "--dataset_seed=1.5": "--dataset_seed",
    }
    for flag, name in bad.items():
        assert main(["run", "--plan=cpu-small", f"--output_dir={out}", flag]) == 2
        assert name in _one_error(capsys)
    assert main(["run", "--plan=cpu-small", f"--output_dir={out}", "--dataset_seed=3",
                 f"--dataset_root={exp_dataset_root}"]) == 2
    assert "nothing is generated" in _one_error(capsys)
    with pytest.raises(PlanError, match="does not generate"):
        set_dataset_seed(load_plan("paper"), 3, None)
    assert not out.exists()


def test_generated_dataset_of_another_seed_is_not_reused(exp_dataset_root, tmp_path):
    """A dataset the plan generated earlier into output_dir (stand-in: the tiny dataset with the
    simulator's generation record) is reused only for the same seed."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(exp_dataset_root, out / "dataset")
    (out / "dataset" / "meta" / "actsmooth_generation.json").write_text(json.dumps({"generation": {"seed": 0}}))
    plan = load_plan("cpu-small")
    plan.dataset.generate["episodes"] = 5
    assert prepare_dataset(plan, out, print) == out / "dataset"
    set_dataset_seed(plan, 9, None)
    with pytest.raises(PlanError, match="seed 0, not 9"):
        prepare_dataset(plan, out, print)


def test_evaluation_episodes_outside_the_dataset(exp_dataset_root, tmp_path, capsys):
    plan = write_plan(tmp_path / "p.toml", plan_text(exp_dataset_root, "[stages.s]\nsteps = 2\n"))
    out = tmp_path / "out"
    assert main(["run", f"--plan={plan}", f"--output_dir={out}", "--evaluation_extra_episodes=0,7"]) == 2
    err = _one_error(capsys)
    assert "[7] are outside the dataset" in err and "5 episodes" in err
    assert main(["run", f"--plan={plan}", f"--output_dir={out}", "--evaluation_extra_episodes=0,x"]) == 2
    assert "--evaluation_extra_episodes" in _one_error(capsys)
    assert not out.exists()


def test_seeds_flag_replaces_the_plans_seeds_and_keeps_a_stages_own(tmp_path, capsys):
    plan = load_plan("cpu-recipe")
    set_training_seeds(plan, "1000,1001,1002,1003,1004")
    assert plan.stage_seeds(plan.stages["baseline"]) == [1000, 1001, 1002, 1003, 1004]
    assert plan.stage_seeds(plan.stages["blending"]) == [1000, 1001, 1002, 1003, 1004]  # evaluates the baseline's
    assert plan.stage_seeds(plan.stages["lr_sweep"]) == [1000]  # the stage names its own seed
    assert plan.raw["seeds"] == [1000, 1001, 1002, 1003, 1004]
    for bad, message in (("1000,1000", "repeats a seed"), ("", "names no seed"), ("10,x", "must be an integer")):
        assert main(["run", "--plan=cpu-recipe", f"--output_dir={tmp_path / 'r'}", f"--seeds={bad}", "--dry_run=true"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
