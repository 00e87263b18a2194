"""`run --dry_run=true`: every trial listed with its changes, resources, steps and an estimated
duration; nothing started (no Ray) and nothing written. With an earlier run's files in
output_dir: its step time is used, its finished trials and decided winners are shown."""

import json

from lerobot_policy_act_smooth.experiments.cli import main
from plan_helpers import plan_text, write_plan

STAGES = """
[stages.lr]
steps = 100
sweep."policy.optimizer_lr" = [1e-4, 1e-3]
[stages.rel]
steps = 200
set."policy.optimizer_lr" = "winner:lr"
start_early = { "policy.optimizer_lr" = 1e-4 }
[stages.ref]
evaluate_checkpoint_of = "rel"
"""


def _files(path):
    return sorted((p.relative_to(path), p.stat().st_mtime_ns) for p in path.rglob("*")) if path.exists() else []


def test_dry_run_lists_trials_and_starts_nothing(exp_dataset_root, tmp_path, capsys):
    import ray

    plan = write_plan(tmp_path / "p.toml", plan_text(exp_dataset_root, STAGES,
                                                     extra_policy='device = "cuda"\n'))
    out = tmp_path / "out"
    args = ["run", f"--plan={plan}", f"--output_dir={out}", "--dry_run=true"]
    assert main(args + ["--step_time_s=0.5", "--max_concurrent_trials=2"]) == 0
    text = capsys.readouterr().out
    lines = {ln.split(":")[0].strip(): ln for ln in text.splitlines() if ln.startswith("  ")}
    assert list(lines) == ["lr/optimizer_lr_0.0001", "lr/optimizer_lr_0.001", "rel/run.early", "rel/run", "ref/run"]
    assert "100 steps, about 0:00:50; policy.optimizer_lr=0.0001" in lines["lr/optimizer_lr_0.0001"]
    assert "policy.optimizer_lr=<winner of lr>" in lines["rel/run"] and "only if" in lines["rel/run"]
    assert "200 steps, about 0:01:40; policy.optimizer_lr=0.0001" in lines["rel/run.early"]
    assert "evaluates the checkpoint of rel" in lines["ref/run"]
    assert "1 CPU, 1 GPU, device cuda" in text
    assert "5 trial(s) to start, 600 training steps, about 0:05:00" in text
    assert not out.exists() and not ray.is_initialized()

    # An earlier run: the lr sweep finished (lr 1e-3 won), its logs give the step time.
    for name, lr in (("optimizer_lr_0.0001", 1e-4), ("optimizer_lr_0.001", 1e-3)):
        tdir = out / "lr" / name
        tdir.mkdir(parents=True)
        (tdir / "trial.json").write_text(json.dumps({"stage": "lr", "name": name, "flags": {"policy.optimizer_lr": lr}}))
        (tdir / "DONE.json").write_text(json.dumps({"evaluations": {}}))
        (tdir / "train.log").write_text("".join(f"INFO step:{s} loss:0.1 updt_s:0.100 data_s:0.020\n" for s in (1, 2, 3)))
    (out / "lr" / "stage.json").write_text(json.dumps({"winner": "lr/optimizer_lr_0.001"}))
    before = _files(out)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "step time: 0.120 s (median of earlier trials" in text
    assert text.count("[done: not re-run]") == 2
    rel = next(ln for ln in text.splitlines() if ln.startswith("  rel/run:"))
    assert "policy.optimizer_lr=0.001" in rel and "about 0:00:24" in rel
    assert "rel/run.early" not in text  # the winner is known: no early start
    assert _files(out) == before


def test_dry_run_with_seeds(exp_dataset_root, tmp_path, capsys):
    """One trial per seed; a decided winner is a variant whose seeds sit in <variant>.seed<N>."""
    stages = STAGES.split("[stages.rel]")[0] + '[stages.second]\nsteps = 10\nset."policy.optimizer_lr" = "winner:lr"\n'
    plan = write_plan(tmp_path / "p.toml", plan_text(exp_dataset_root, stages).replace("seed = 7", "seeds = [1, 2]"))
    out = tmp_path / "out"
    tdir = out / "lr" / "optimizer_lr_0.001.seed2"
    tdir.mkdir(parents=True)
    (tdir / "trial.json").write_text(json.dumps({"flags": {"policy.optimizer_lr": 1e-3, "seed": 2}}))
    (out / "lr" / "stage.json").write_text(json.dumps({"winner": "lr/optimizer_lr_0.001"}))
    assert main(["run", f"--plan={plan}", f"--output_dir={out}", "--dry_run=true"]) == 0
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")]
    assert [ln.split(":")[0] for ln in lines] == [
        "lr/optimizer_lr_0.0001.seed1", "lr/optimizer_lr_0.0001.seed2", "lr/optimizer_lr_0.001.seed1",
        "lr/optimizer_lr_0.001.seed2", "second/run.seed1", "second/run.seed2"]
    assert lines[-1].endswith("policy.optimizer_lr=0.001, seed=2")
