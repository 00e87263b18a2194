"""Stage order and the plan's early start, decided from recorded trial results on disk.

The DONE.json / loss.csv files written here stand for finished trials (what lerobot-train and the
evaluations leave behind); the Scheduler only reads them. No Ray, no training."""

import json

from lerobot_policy_act_smooth.experiments.plan import load_plan, validate_plan
from lerobot_policy_act_smooth.experiments.runner import Scheduler
from lerobot_policy_act_smooth.experiments.trial import trial_dir
from plan_helpers import plan_text, write_plan

STAGES = """
[stages.lr]
steps = 4
sweep."policy.optimizer_lr" = [1e-4, 1e-3]
[stages.rel]
steps = 4
set."policy.optimizer_lr" = "winner:lr"
start_early = { "policy.optimizer_lr" = 1e-4 }
[stages.after_rel]
steps = 4
set."policy.optimizer_lr" = "winner:rel"
"""


def _finish(out, spec, losses):
    tdir = trial_dir(out, spec)
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "loss.csv").write_text("step,loss,lr,attempt\n" + "".join(f"{i + 1},{x},0,1\n" for i, x in enumerate(losses)))
    (tdir / "DONE.json").write_text(json.dumps({"evaluations": {}}))


def _scheduler(tmp_path, root):
    plan = load_plan(write_plan(tmp_path / "p.toml", plan_text(root, STAGES)))
    validate_plan(plan, tmp_path)
    return Scheduler(plan, tmp_path / "out", {"dataset.episodes": [0, 1, 2]}, [3], closed_loop=False)


def test_early_start_adopted_when_winner_matches(exp_dataset_root, tmp_path):
    sched = _scheduler(tmp_path, exp_dataset_root)
    keys = [s.key for s in sched.wanted()]
    assert keys == ["lr/optimizer_lr_0.0001", "lr/optimizer_lr_0.001", "rel/run.early"]  # after_rel waits
    specs = {s.key: s for s in sched.wanted()}
    _finish(sched.output_dir, specs["lr/optimizer_lr_0.0001"], [1.0, 0.2, 0.1])  # lr 1e-4 wins
    _finish(sched.output_dir, specs["lr/optimizer_lr_0.001"], [1.0, 0.5, 0.4])
    _finish(sched.output_dir, specs["rel/run.early"], [1.0, 0.3])
    assert sched.update_winners() == ["lr"]
    wanted = {s.key: s for s in sched.wanted()}
    assert "rel/run" not in wanted and sched.final_trials["rel"][0].key == "rel/run.early"  # adopted, not re-run
    assert sched.update_winners() == ["rel"]
    after = next(s for s in sched.wanted() if s.stage == "after_rel")
    assert after.flags["policy.optimizer_lr"] == 1e-4


def test_early_start_rerun_when_winner_differs(exp_dataset_root, tmp_path):
    sched = _scheduler(tmp_path, exp_dataset_root)
    specs = {s.key: s for s in sched.wanted()}
    _finish(sched.output_dir, specs["lr/optimizer_lr_0.0001"], [1.0, 0.5, 0.4])
    _finish(sched.output_dir, specs["lr/optimizer_lr_0.001"], [1.0, 0.2, 0.1])  # lr 1e-3 wins
    sched.update_winners()
    wanted = {s.key: s for s in sched.wanted()}
    assert wanted["rel/run"].flags["policy.optimizer_lr"] == 1e-3  # re-run at the better lr
    assert "rel/run.early" not in wanted  # the early result stays on disk, superseded
    assert sched.update_winners() == []  # rel/run not finished yet: after_rel still waits
    assert not any(s.stage == "after_rel" for s in sched.wanted())


def test_all_diverged_blocks_dependents(exp_dataset_root, tmp_path):
    sched = _scheduler(tmp_path, exp_dataset_root)
    specs = {s.key: s for s in sched.wanted()}
    for key in ("lr/optimizer_lr_0.0001", "lr/optimizer_lr_0.001"):
        _finish(sched.output_dir, specs[key], [1.0, float("nan")])
    assert sched.update_winners() == []
    assert "every trial diverged" in sched.no_winner["lr"]
    assert "rel" in sched.failed_stages and "after_rel" in sched.failed_stages
    assert not any(s.stage in ("rel", "after_rel") for s in sched.wanted())
