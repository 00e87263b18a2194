"""A tiny plan end to end on a local Ray: two learning rates, then a stage at the winner; the
report lists every trial; a second run re-runs nothing."""

import json

import pytest

from lerobot_policy_act_smooth.experiments.plan import load_plan
from lerobot_policy_act_smooth.experiments.runner import RunOptions, run_plan
from plan_helpers import plan_text, write_plan
from test_training_stats import assert_trained_on_subset_stats

STAGES = """
[stages.lr]
steps = 4
sweep."policy.optimizer_lr" = [1e-4, 1e-2]
set."policy.optimizer_lr_backbone" = "same:policy.optimizer_lr"
replay_modes = []
in_results = false
[stages.second]
label = "at the winning lr"
steps = 2
set."policy.optimizer_lr" = "winner:lr"
set."policy.optimizer_lr_backbone" = "winner:lr"
# The simulator's closed loop cannot run a policy trained on the synthetic dataset (other
# features): the report must show "-" with a note instead of failing.
closed_loop = true
"""


def test_tiny_plan_end_to_end(local_ray, exp_dataset_root, tmp_path):
    plan_path = write_plan(tmp_path / "tiny.toml",
                           plan_text(exp_dataset_root, STAGES, evaluation='replay_modes = ["gt_prefix"]\nclosed_loop_episodes = 1'))
    out = tmp_path / "run"
    lines = []
    rc = run_plan(load_plan(plan_path), RunOptions(output_dir=out, poll_s=0.5), out=lines.append)
    log = "\n".join(lines)
    assert rc == 0, log

    stage = json.loads((out / "lr" / "stage.json").read_text())
    finals = stage["final_losses"]
    assert set(finals) == {"lr/optimizer_lr_0.0001", "lr/optimizer_lr_0.01"}
    assert stage["winner"] == min(finals, key=finals.get)  # no divergence with factor 100
    winner_lr = json.loads((out / stage["winner"] / "trial.json").read_text())["flags"]["policy.optimizer_lr"]
    second = json.loads((out / "second" / "run" / "trial.json").read_text())
    assert second["flags"]["policy.optimizer_lr"] == winner_lr
    assert second["flags"]["dataset.episodes"] == [0, 1, 2, 3]  # episode 4 held out
    assert second["heldout_episodes"] == [4]
    # normalised with the training episodes' statistics, not the whole dataset's (held-out episode 4 included)
    assert_trained_on_subset_stats(out / "second" / "run" / "train" / "checkpoints" / "last" / "pretrained_model",
                                   exp_dataset_root, [0, 1, 2, 3])

    for trial in ("lr/optimizer_lr_0.0001", "lr/optimizer_lr_0.01", "second/run"):
        done = json.loads((out / trial / "DONE.json").read_text())
        rows = (out / trial / "loss.csv").read_text().splitlines()
        assert len(rows) == 1 + done["steps"]  # log_freq 1: one row per step
        assert (out / trial / "train" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()
    done = json.loads((out / "second" / "run" / "DONE.json").read_text())
    replay = done["evaluations"]["gt_prefix"]
    assert replay["status"] == "ok", replay  # the replay of the held-out episode ran and wrote its metrics
    replayed = json.loads((out / "second" / "run" / replay["metrics"]).read_text())
    assert [row["episode"] for row in replayed["episodes"]] == [4]
    assert "train step" in log  # live progress lines

    report = (out / "report.md").read_text()
    sweep_rows = [ln for ln in report.splitlines() if ln.startswith("| ") and "| 4 |" in ln.replace("*", "")]
    assert len(sweep_rows) == 2  # every trial of the sweep, the winner in bold
    winner_value = "0.0001" if stage["winner"].endswith("0.0001") else "0.01"
    assert f"| **{winner_value}** |" in report
    assert "at the winning lr" in report and stage["winner"] in report
    assert done["evaluations"]["closed_loop"]["status"] != "ok"
    per_trial = report[report.index("## Results per trial"):]
    row = next(ln for ln in per_trial.splitlines() if ln.startswith("| at the winning lr"))
    assert "- [1]" in row and "1. at the winning lr: closed_loop" in report
    assert (out / "loss_lr.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "run.json").is_file() and (out / "plan.json").is_file()
    finish = json.loads((out / "runs.jsonl").read_text().splitlines()[-1])
    assert finish["complete"] is True and finish["wall_s"] >= 1 and f"finished after {finish['wall_s']} s wall" in report

    # Idempotent: a second run starts no trial and changes no result.
    before = {p: p.read_bytes() for p in out.rglob("DONE.json")}
    lines.clear()
    assert run_plan(load_plan(plan_path), RunOptions(output_dir=out, poll_s=0.5), out=lines.append) == 0
    assert not any(" start " in ln for ln in lines), lines
    assert {p: p.read_bytes() for p in out.rglob("DONE.json")} == before

    # A changed plan into the same output_dir: the changed trial is refused, nothing is overwritten.
    changed = write_plan(tmp_path / "changed.toml", plan_path.read_text().replace("steps = 2", "steps = 3"))
    lines.clear()
    assert run_plan(load_plan(changed), RunOptions(output_dir=out, poll_s=0.5), out=lines.append) == 1
    assert any("FAILED second/run" in ln and "different settings (steps)" in ln for ln in lines), lines
    assert {p: p.read_bytes() for p in out.rglob("DONE.json")} == before
