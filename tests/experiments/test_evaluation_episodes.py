"""Extra evaluation episodes ([evaluation] extra_episodes): replayed apart from the held-out ones,
asked again of trials that finished before they were added, and reported as trained-on.

The trial folders written here stand for finished trials (what lerobot-train and actsmooth-replay
leave behind); the report only reads them."""

import json

from lerobot_policy_act_smooth.experiments.plan import TrialSpec, load_plan, resolve_stage
from lerobot_policy_act_smooth.experiments.report import write_report
from lerobot_policy_act_smooth.experiments.trial import extra_episodes, missing_evaluations, wanted_evaluations
from plan_helpers import plan_text, write_plan

STAGES = """
[stages.base]
label = "baseline"
steps = 2
"""


def test_extra_episodes_are_evaluated_apart(exp_dataset_root, tmp_path):
    plan = load_plan(write_plan(tmp_path / "p.toml", plan_text(
        exp_dataset_root, STAGES, evaluation='replay_modes = ["gt_prefix"]\nextra_episodes = [0, 1, 4]')))
    (spec,) = resolve_stage(plan, plan.stages["base"], {}, {})
    spec.heldout_episodes = [4]
    assert extra_episodes(spec) == [0, 1]  # a held-out episode is not scored twice
    assert wanted_evaluations(spec) == ["gt_prefix", "gt_prefix_on_trained"]
    # A trial finished before the episodes were added (or changed) runs only the missing evaluation.
    assert missing_evaluations(spec, {"evaluations": {"gt_prefix": {"status": "ok"}}}) == ["gt_prefix_on_trained"]
    earlier = {"gt_prefix": {"status": "ok"}, "gt_prefix_on_trained": {"status": "ok", "episodes": [0]}}
    assert missing_evaluations(spec, {"evaluations": earlier}) == ["gt_prefix_on_trained"]
    earlier["gt_prefix_on_trained"]["episodes"] = [0, 1]
    assert missing_evaluations(spec, {"evaluations": earlier}) == []
    spec.extra_eval_episodes = []
    assert missing_evaluations(spec, {"evaluations": {"gt_prefix": {"status": "ok"}}}) == []


def test_report_labels_trained_and_heldout_episodes(exp_dataset_root, tmp_path):
    plan = load_plan(write_plan(tmp_path / "p.toml", plan_text(
        exp_dataset_root, STAGES, evaluation='replay_modes = ["gt_prefix"]\nextra_episodes = [0, 1]')))
    out = tmp_path / "run"
    (out).mkdir()
    (out / "plan.json").write_text(plan.to_json())
    (spec,) = resolve_stage(plan, plan.stages["base"], {}, {})
    spec.heldout_episodes = [4]
    tdir = out / "base" / "run"
    (tdir / "eval").mkdir(parents=True)
    (tdir / "trial.json").write_text(json.dumps(spec.to_dict()))
    (tdir / "loss.csv").write_text("step,loss,lr,attempt\n1,0.5,0,1\n2,0.4,0,1\n")
    evaluations = {}
    for name, u_a in (("gt_prefix", 0.75), ("gt_prefix_on_trained", 0.125)):
        (tdir / "eval" / f"{name}_metrics.json").write_text(json.dumps(
            {"aggregate": {"U_a_mean": u_a, "U_a_std": 0.01, "spike_mean": 2.5, "mae_mean": 1.5}}))
        evaluations[name] = {"status": "ok", "metrics": f"eval/{name}_metrics.json", "episodes": [0, 1]}
    (tdir / "DONE.json").write_text(json.dumps({"steps": 2, "evaluations": evaluations}))
    report = write_report(out).read_text()
    assert "held-out episodes (never trained on): the last 1 of the dataset: episodes 4" in report
    results = report[report.index("## Results"):report.index("## Episodes that were trained on")]
    assert "| baseline | 2 |" in results and "0.75 ± 0.01" in results and "0.125" not in results
    trained = report[report.index("## Episodes that were trained on"):]
    assert "| baseline | 0, 1 | 0.125 | 2.5 | 1.5 |" in trained
    assert TrialSpec.from_dict(json.loads((tdir / "trial.json").read_text())).extra_eval_episodes == [0, 1]
