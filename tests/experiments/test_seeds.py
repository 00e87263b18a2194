"""Several training seeds per variant, winners chosen on validation episodes only, and the
results table with intervals: a tiny plan end to end on a local Ray, plus the plan checks."""

import json

import pytest

from lerobot_policy_act_smooth.experiments.plan import PlanError, load_plan, plan_from_dict
from lerobot_policy_act_smooth.experiments.runner import RunOptions, run_plan
from plan_helpers import plan_text, write_plan

STAGES = """
[stages.lr]
steps = 8
sweep."policy.optimizer_lr" = [3e-3, 3e-2]
set."policy.optimizer_lr_backbone" = "same:policy.optimizer_lr"
select = "gt_prefix.mae_mean"
in_results = false
[stages.baseline]
label = "baseline"
steps = 8
set."policy.optimizer_lr" = "winner:lr"
set."policy.optimizer_lr_backbone" = "winner:lr"
[stages.blend]
label = "blending"
evaluate_checkpoint_of = "baseline"
replay_args = ["--blend=true", "--advance=5"]
"""


def seeded_plan_text(root, stages=STAGES):
    text = plan_text(root, stages, batch_size=16, save_freq=8, heldout=3, evaluation='replay_modes = ["gt_prefix"]\nbaseline = "baseline"')
    return (text.replace("seed = 7", "seeds = [1, 2]")
            .replace("heldout_episodes = 3", "heldout_episodes = 3\nvalidation_episodes = 1"))


def _validation_mae(out, trial, episode):
    metrics = json.loads((out / trial / "eval" / "gt_prefix_metrics.json").read_text())
    return next(r["mae"] for r in metrics["episodes"] if r["episode"] == episode)


def test_seeds_validation_selection_and_intervals(local_ray, exp_dataset_root, tmp_path):
    plan_path = write_plan(tmp_path / "seeds.toml", seeded_plan_text(exp_dataset_root))
    out = tmp_path / "run"
    lines = []
    assert run_plan(load_plan(plan_path), RunOptions(output_dir=out, poll_s=0.5), out=lines.append) == 0, lines

    # every variant once per seed, the seed in the folder name and in lerobot-train's flags
    for variant in ("optimizer_lr_0.003", "optimizer_lr_0.03"):
        for seed in (1, 2):
            spec = json.loads((out / "lr" / f"{variant}.seed{seed}" / "trial.json").read_text())
            assert spec["flags"]["seed"] == seed and spec["variant"] == variant
            assert spec["heldout_episodes"] == [2, 3, 4] and spec["validation_episodes"] == [2]

    # the winner is the variant with the lowest seed-averaged MAE on the validation episode alone
    stage = json.loads((out / "lr" / "stage.json").read_text())
    val = {v: sum(_validation_mae(out, f"lr/{v}.seed{s}", 2) for s in (1, 2)) / 2
           for v in ("optimizer_lr_0.003", "optimizer_lr_0.03")}
    assert stage["winner"] == "lr/" + min(val, key=val.get)
    assert stage["metric_values"][stage["winner"]] == pytest.approx(min(val.values()))
    assert stage["selected_on_episodes"] == [2] and stage["seeds"] == [1, 2]

    # the evaluation-only stage evaluates each seed's checkpoint of the baseline
    for seed in (1, 2):
        spec = json.loads((out / "blend" / f"run.seed{seed}" / "trial.json").read_text())
        assert spec["evaluate_checkpoint_of"].endswith(f"baseline/run.seed{seed}")

    report = (out / "report.md").read_text()
    section = report[report.index("## Results with 95% intervals"):report.index("## Results per trial")]
    assert "the 2 test episodes (3, 4)" in section and "validation episodes (2)" in section
    baseline_row = next(ln for ln in section.splitlines() if ln.startswith("| baseline (baseline) | 2 |"))
    assert "[" in baseline_row  # mean [low, high]
    assert "- blending vs baseline:" in section
    assert "Difference from the baseline" in section


@pytest.mark.parametrize(
    "change, message",
    [
        (("seed = 7", "seeds = []"), "seeds must be a non-empty list"),
        (("seed = 7", 'seeds = ["a"]'), "seeds must be integers"),
        (("seed = 7", "seeds = [1, 1]"), "repeat a value"),
        (("seed = 7", "seed = 7\nseeds = [1]"), "both `seed` and `seeds`"),
        (("heldout_episodes = 1", "heldout_episodes = 1\nvalidation_episodes = 1"), "must be fewer than"),
    ],
)
def test_bad_seed_and_validation_settings_are_one_clear_error(tmp_path, change, message):
    import tomllib

    text = plan_text(tmp_path, "[stages.a]\nsteps = 1\n").replace(*change)
    with pytest.raises(PlanError, match=message):
        plan_from_dict(tomllib.loads(text))


def test_single_seed_keeps_the_plain_trial_names(tmp_path):
    import tomllib

    from lerobot_policy_act_smooth.experiments.plan import resolve_stage

    plan = plan_from_dict(tomllib.loads(plan_text(tmp_path, "[stages.a]\nsteps = 1\n")))
    (spec,) = resolve_stage(plan, plan.stages["a"], {}, {})
    assert spec.name == "run" and spec.seed == 7 and spec.flags["seed"] == 7
