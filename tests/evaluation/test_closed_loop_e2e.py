"""actsmooth-sim-eval end to end: a tiny act_smooth checkpoint trained by the real
lerobot-train (the replay tests' one, on a dataset of the simulator's shapes) drives the real
simulator; every file is written, and numbers repeat."""

import json

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.closed_loop import output_paths, plot_path
from lerobot_policy_act_smooth.evaluation.sim_eval_cli import main

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run_cli(checkpoint, stem, *extra):
    return main([f"--policy.path={checkpoint}", "--episodes=2", "--seed=3", "--max_steps=30", f"--output={stem}", *extra])


def test_tiny_checkpoint_runs_end_to_end_and_repeats(tiny_act_smooth_checkpoint, tmp_path):
    assert run_cli(tiny_act_smooth_checkpoint, tmp_path / "first") == 0
    paths = output_paths(tmp_path / "first")
    for p in [*paths.values(), plot_path(tmp_path / "first", 0), plot_path(tmp_path / "first", 1)]:
        assert p.is_file() and p.stat().st_size > 0, p
    assert plot_path(tmp_path / "first", 1).read_bytes()[:4] == b"\x89PNG"
    first = json.loads(paths["json"].read_text())
    agg = first["aggregate"]
    episodes = first["episodes"]
    assert agg["num_episodes"] == len(episodes) == 2
    # The aggregate is the episodes' mean: the success rate the share of successful episodes.
    assert agg["num_successes"] == sum(ep["success"] is True for ep in episodes)
    assert agg["success_rate"] == agg["num_successes"] / 2
    for key in ("obs_U_a", "action_U_a"):
        assert np.isfinite(agg[f"{key}_mean"])
        assert agg[f"{key}_mean"] == pytest.approx((episodes[0][key] + episodes[1][key]) / 2, rel=1e-12)
    settings = first["settings"]
    assert settings["policy_type"] == "act_smooth" and settings["committed_actions"] == 2 and settings["threshold"] == 2
    ep = first["episodes"][0]
    assert ep["num_frames"] == 30
    # C=8, d=2: the first chunk takes over at 2, later ones every 8 frames.
    assert ep["switch_frames"] == [2, 10, 18, 26]
    assert first["run"]["config"]["policy"]["path"] == str(tiny_act_smooth_checkpoint)
    assert "Success rate" in paths["results"].read_text()

    # Same seed, same numbers (a second run into another stem, no plots).
    assert run_cli(tiny_act_smooth_checkpoint, tmp_path / "second", "--plots=false") == 0
    second = json.loads(output_paths(tmp_path / "second")["json"].read_text())
    assert second["episodes"] == first["episodes"]
    assert output_paths(tmp_path / "second")["trajectories"].read_text() == paths["trajectories"].read_text()


def test_latency_and_threshold_errors_on_a_real_checkpoint(tiny_act_smooth_checkpoint, tmp_path, capsys):
    assert run_cli(tiny_act_smooth_checkpoint, tmp_path / "x", "--latency_ms=300") == 2
    assert "largest latency this policy can run at is 266.7 ms" in capsys.readouterr().err  # C = 8
    assert run_cli(tiny_act_smooth_checkpoint, tmp_path / "x", "--threshold=9") == 2
    assert "between the committed actions d=2 and the chunk size C=8" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_policy_trained_on_other_observations_is_refused(tiny_act_checkpoint, tmp_path, capsys):
    # The act fixture's policy was trained on tiny_dataset_root, whose environment state has 4 values; the simulator's has 10.
    assert run_cli(tiny_act_checkpoint, tmp_path / "x") == 2
    err = capsys.readouterr().err
    assert "observation.environment_state (policy (4,), environment (10,))" in err
    assert not any(tmp_path.iterdir())
