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


def test_paper_methods_dry_run_counts_the_own_prefix_image_loading(tmp_path, capsys):
    """The paper-methods plan (paper + the recipe and its ablations) resolves; its dry run lists every
    trial, starts nothing, and counts the earlier frame's images that the own-prediction prefix loads."""
    import ray
    from tiny_dataset import make_tiny_dataset

    from lerobot_policy_act_smooth.experiments.plan import load_plan

    plan = load_plan("paper-methods")
    assert list(plan.stages)[-4:] == ["smooth_head", "prefix_join", "smooth_join", "smooth_join_own"]
    recipe = plan.stages["smooth_join_own"].set
    assert recipe["policy.chunk_basis"] == "dct" and recipe["policy.chunk_basis_size"] == 8
    assert recipe["policy.prefix_join_horizon"] == 10 and recipe["policy.p_prefix_own"] == 0.5
    assert recipe["policy.reanchor_horizon"] == 10 and recipe["policy.reanchor_profile"] == "minimum_jerk"
    assert plan.policy["device"] == "cuda" and plan.dataset.from_hub  # the paper plan's hub dataset, on GPUs

    root = tmp_path / "cameras"  # a local copy with a camera stands in for the hub recordings
    make_tiny_dataset(root, repo_id="test/cams", num_episodes=7, frames_per_episode=10, camera=(8, 8))
    out = tmp_path / "out"
    args = ["run", "--plan=paper-methods", f"--output_dir={out}", "--dry_run=true", f"--dataset_root={root}",
            "--step_time_s=0.5"]
    assert main(args) == 0
    text = capsys.readouterr().out
    lines = {ln.split(":")[0].strip(): ln for ln in text.splitlines() if ln.startswith("  ")}
    for stage in ("lr_sweep", "dropout", "baseline", "vanilla_act", "blending",
                  "smooth_head", "prefix_join", "smooth_join", "smooth_join_own"):
        assert any(key.startswith(f"{stage}/") for key in lines), stage
    own = lines["smooth_join_own/run"]
    assert "2 image loads per sample" in own and "backbone passes 1 + p_prefix_own = 1.5" in own
    assert "30000 steps, about 8:20:00" in own  # 30000 x 0.5 s x 2
    assert "about 4:10:00" in lines["smooth_join/run"] and "image loads" not in lines["smooth_join/run"]
    assert not out.exists() and not ray.is_initialized()
