"""`actsmooth-experiment latency`: a tiny sweep through the real command (a real tiny checkpoint,
the real simulator and sim-eval), its resume, its bad input, and the goal's reading on hand-made
cells."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lerobot_policy_act_smooth.experiments.latency_sweep import (
    VARIANTS,
    Cell,
    goal_lines,
    parse_latencies,
    time_to_success_s,
)
from lerobot_policy_act_smooth.experiments.latency_reference import record_reference, with_reference
from lerobot_policy_act_smooth.experiments.statistics import Estimate


def _cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lerobot_policy_act_smooth.experiments.cli", "latency", *args],
                          capture_output=True, text=True, env=env, timeout=900)


def _run_folder(tmp_path: Path, checkpoint: Path) -> Path:
    """A run folder as `actsmooth-experiment run` leaves it, for the parts the sweep reads: a
    finished baseline trial with the tiny checkpoint."""
    out = tmp_path / "run"
    for name in ("run.seed1000",):
        trial = out / "baseline" / name
        (trial / "train" / "checkpoints" / "last").mkdir(parents=True)
        (trial / "train" / "checkpoints" / "last" / "pretrained_model").symlink_to(checkpoint)
        (trial / "DONE.json").write_text("{}")
    return out


def test_tiny_sweep_through_the_real_command(tiny_act_smooth_checkpoint, tmp_path):
    out = _run_folder(tmp_path, tiny_act_smooth_checkpoint)
    args = [f"--output_dir={out}", "--variants=baseline,baseline_ema,recipe", "--latencies_ms=100,0", "--episodes=2",
            "--max_steps=30"]
    res = _cli(*args)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "recipe: no finished trial of stage smooth_join_own; left out" in res.stdout
    summary = json.loads((out / "latency" / "summary.json").read_text())
    assert summary["latencies_ms"] == [0.0, 100.0] and summary["missing_variants"] == ["recipe"]
    assert set(summary["variants"]) == {"baseline", "baseline_ema"}
    base = summary["variants"]["baseline"]
    assert base["trials"] == 1 and set(base["latency"]) == {"0", "100"}
    # 100 ms at 30 fps commits d = 3 > the checkpoint's D = 2: run, with one stale frame.
    assert base["latency"]["100"]["committed_actions"] == 3 and base["latency"]["0"]["committed_actions"] == 1
    stem = out / "latency" / "baseline_ema" / "run.seed1000" / "L100"
    settings = json.loads(Path(f"{stem}_metrics.json").read_text())["settings"]
    assert settings["ema_alpha"] == 0.25 and settings["ema_max_delta"] == 1.25 and settings["stale_frames"] == 1
    assert settings["seeds"] == [1000, 1001]  # the same scenes for every trial
    report = (out / "latency" / "report.md").read_text()
    assert "## baseline, D = 2 (1 trial)" in report and "| 100 | 3 |" in report
    assert (out / "latency" / "latency_curve.png").stat().st_size > 0

    # The demonstrator ran once for the sweep; scored at an evaluation's own boundaries it gives exactly
    # what sim-eval's --reference=true writes for the same episodes.
    assert (out / "latency" / "reference.npz").is_file()
    direct = tmp_path / "direct"
    res = subprocess.run([sys.executable, "-m", "lerobot_policy_act_smooth.evaluation.sim_eval_cli",
                          f"--policy.path={tiny_act_smooth_checkpoint}", "--episodes=2", "--seed=1000", "--latency_ms=100",
                          "--max_steps=30", "--plots=false", f"--output={direct}", "--reference=true"],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})  # one thread, as a sweep worker
    assert res.returncode == 0, res.stderr
    expected = json.loads(Path(f"{direct}_metrics.json").read_text())["episodes"]
    shared = record_reference(out / "latency", [1000, 1001])
    swept = json.loads(Path(f"{out / 'latency' / 'baseline' / 'run.seed1000' / 'L100'}_metrics.json").read_text())["episodes"]
    assert "demo_action_U_a" not in swept[0]  # the evaluations ran without the demonstrator
    for mine, theirs in zip(swept, expected):
        scored = with_reference(mine, shared[mine["seed"]], 30.0)
        demo_keys = [k for k in theirs if k.startswith("demo_") and k not in ("demo_boundaries", "demo_initial_environment_state")]
        assert len(demo_keys) > 20
        assert json.dumps({k: scored[k] for k in demo_keys}) == json.dumps({k: theirs[k] for k in demo_keys})
        # An evaluation in a reused sweep worker gives what a fresh sim-eval process gives.
        own_keys = ["success", "num_frames", "action_U_a", "obs_U_a", "action_sparc", "action_profile_acc"]
        assert json.dumps({k: mine[k] for k in own_keys}) == json.dumps({k: theirs[k] for k in own_keys})

    # Resumable: the same command runs nothing again and keeps every evaluation file.
    before = {p: p.stat().st_mtime_ns for p in (out / "latency").rglob("*_metrics.json")}
    again = _cli(*args)
    assert again.returncode == 0 and "4 of 4 evaluations already done; running 0" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in (out / "latency").rglob("*_metrics.json")} == before
    # Resumed with other scenes: refused, nothing rerun or mixed into the table.
    other = _cli(*[a for a in args if not a.startswith("--episodes")], "--episodes=3")
    assert other.returncode == 2 and "ran other scenes" in other.stderr and "move" in other.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "latency").rglob("*_metrics.json")} == before


@pytest.mark.parametrize(("flag", "message"), [("--latencies_ms=0,fast", "comma-separated numbers"),
                                               ("--latencies_ms=-10", "finite number >= 0"),
                                               ("--variants=baseline,magic", "unknown magic"),
                                               ("--episodes=0", "--episodes must be >= 1")])
def test_bad_input_is_one_error_and_nothing_is_written(flag, message, tmp_path, capsys):
    from lerobot_policy_act_smooth.experiments.cli import main

    out = tmp_path / "run"
    (out / "baseline").mkdir(parents=True)
    assert main(["latency", f"--output_dir={out}", flag]) == 2
    err = capsys.readouterr().err
    assert message in err and "nothing was started" in err and len(err.strip().splitlines()) == 1
    assert not (out / "latency").exists()


def test_parse_latencies_sorts_and_deduplicates():
    assert parse_latencies("500, 0,33,0") == [0.0, 33.0, 500.0]


def test_time_to_success_counts_a_failure_at_its_last_frame():
    assert time_to_success_s({"success": True, "success_frame": 150, "num_frames": 151}, 30.0) == 5.0
    assert time_to_success_s({"success": False, "success_frame": None, "num_frames": 600}, 30.0) == 20.0


def _cell(success, time_s, sparc, peak):
    def e(x):
        return Estimate(x, x, x)
    return Cell(e(success), e(time_s), 1.0, 1.0, e(sparc), e(peak), 0, 2)


def test_goal_reads_every_latency_and_the_references():
    lat = [0.0, 166.0, 500.0]
    refs = {l: _cell(0.9, 8.0, -2.0, 3.0) for l in lat}
    good = {0.0: _cell(0.95, 6.0, -0.5, 1.0), 166.0: _cell(0.92, 6.5, -0.6, 1.2), 500.0: _cell(0.91, 6.6, -0.7, 1.4)}
    slow = dict(good) | {500.0: _cell(0.95, 7.0, -0.5, 1.0)}  # 7.0 s > 1.10 x 6.0 s
    jerky = dict(good) | {166.0: _cell(0.95, 6.0, -0.5, 1.6)}  # profile peak over 1.5x
    cells = {"baseline": slow, "recipe": good, "recipe_d10": jerky, "vanilla_act_sync": refs, "baseline_ema": refs,
             "baseline_blend": refs}
    lines = goal_lines(cells, lat)
    assert f"- {VARIANTS['recipe'].label}: met" in lines
    assert any(l.startswith(f"- {VARIANTS['baseline'].label}: not met: time 7.00 s at 500 ms (0 ms: 6.00 s)") for l in lines)
    assert any(l.startswith(f"- {VARIANTS['recipe_d10'].label}: not met: profile peak 1.60x at 166 ms") for l in lines)
    assert len(lines) == 3  # the references are not judged
    worse_than_ema = {**cells, "baseline_ema": {l: _cell(0.9, 5.0, -2.0, 3.0) for l in lat}}
    assert any("time not below baseline_ema's at 166 ms" in l for l in goal_lines(worse_than_ema, lat))
    smoother_blend = {**cells, "baseline_blend": {l: _cell(0.9, 8.0, 0.0, 3.0) for l in lat}}
    assert any("SPARC not above baseline_blend's at 166 ms" in l for l in goal_lines(smoother_blend, lat))
