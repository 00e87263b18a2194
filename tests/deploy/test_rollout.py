"""`lerobot-rollout` itself (a subprocess) drives act_smooth on the simulated SO-101 with the RTC
engine, records a dataset, and actsmooth-score scores it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import smoothness_metrics
from lerobot_policy_act_smooth.evaluation.replay import DatasetEpisodes
from lerobot_policy_act_smooth.evaluation.score_cli import ScoreConfig, ScoreDataset, boundaries_from_chunk_log, score

LEROBOT_ROLLOUT = str(Path(sys.executable).parent / "lerobot-rollout")
TASK = "Pick up the cube and place it on the target."


def rollout_env(tmp_path, **extra):
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "HF_LEROBOT_HOME": str(tmp_path / "lerobot_home"),  # the robot's (empty) calibration folder
        **extra,
    }


def rollout_command(policy_path, dataset_root, robot_type="so101_sim"):
    return [
        LEROBOT_ROLLOUT,
        f"--robot.type={robot_type}",
        "--robot.seed=3",
        f"--policy.path={policy_path}",
        "--inference.type=rtc",
        "--inference.queue_threshold=2",
        "--strategy.type=episodic",
        "--dataset.repo_id=local/rollout_so101_sim",
        f"--dataset.root={dataset_root}",
        "--dataset.num_episodes=2",
        "--dataset.episode_time_s=2",
        "--dataset.reset_time_s=1",
        f"--dataset.single_task={TASK}",
        "--dataset.video=false",
        "--dataset.push_to_hub=false",
        "--fps=30",
        "--play_sounds=false",
        "--device=cpu",
        "--return_to_initial_position=false",
    ]


def test_rtc_rollout_on_so101_sim_records_and_scores(sim_shaped_checkpoint, tmp_path):
    dataset_root = tmp_path / "rollout"
    chunk_log = tmp_path / "chunks.jsonl"
    proc = subprocess.run(
        rollout_command(sim_shaped_checkpoint, dataset_root),
        capture_output=True, text=True, timeout=240,
        env=rollout_env(tmp_path, ACTSMOOTH_CHUNK_LOG=str(chunk_log)),
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Rollout finished" in log
    assert "RTC inference error" not in log and "Fatal error in RTC thread" not in log, log[-4000:]

    # The engine called predict_action_chunk with a leftover, and every chunk committed d >= 1 actions.
    records = [json.loads(line) for line in chunk_log.read_text().splitlines()]
    assert {r["episode"] for r in records} == {0, 1}
    assert all(r["d"] >= 1 and r["chunk_rows"] == r["d"] + 8 for r in records)
    continued = [r for r in records if r["call"] > 0]
    assert continued and all(r["leftover_rows"] >= r["d"] for r in continued)
    assert any(r["past"] == 4 for r in continued)  # the executed past was recovered from the leftover
    for episode in (0, 1):
        frames = [r["frame"] for r in records if r["episode"] == episode]
        assert frames == sorted(set(frames))  # one chunk start per frame, in order

    result = score(ScoreConfig(dataset=ScoreDataset(root=str(dataset_root)), chunk_log=str(chunk_log)))
    episodes = result["episodes"]
    assert len(episodes) == 2 and all(e["frames"] >= 30 for e in episodes)
    assert all(e["chunks"] >= 3 and e["U_a"] > 0 for e in episodes)
    # The spike is the metrics module's, at the logged chunk starts (whatever its conventions).
    boundaries = boundaries_from_chunk_log(chunk_log)
    data = DatasetEpisodes("local/rollout_so101_sim", str(dataset_root))
    for e in episodes:
        expected = smoothness_metrics(data.actions(e["episode"]), boundaries[e["episode"]])["spike"]
        np.testing.assert_equal(e["spike"], expected)
    assert all(np.isfinite(e["obs_U_a"]) and "obs_spike" in e for e in episodes)  # the measured joints too

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("local/rollout_so101_sim", root=dataset_root)
    names = ds.meta.features["observation.state"]["names"]
    assert names[:6] == ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"]
    states = np.asarray(ds.hf_dataset.with_format("numpy")["observation.state"])
    episode_index = np.asarray(ds.hf_dataset.with_format("numpy")["episode_index"])

    # The robot's success flag was recorded (a 0/1 column) and the score reports it per episode.
    assert result["settings"]["success"] == "success.pos"
    flag = names.index("success.pos")
    for e in episodes:
        recorded = states[episode_index == e["episode"], flag]
        assert set(np.unique(recorded)) <= {0.0, 1.0}
        assert e["success"] is bool(recorded.max() == 1.0)

    # Each episode got its own cube and target (a new episode after the reset phase).
    target = [names.index(n) for n in ("target.x.pos", "target.y.pos")]
    first, second = (states[episode_index == e][0, target] for e in (0, 1))
    assert not np.allclose(first, second)


def test_rollout_refuses_a_robot_type_typo_and_writes_nothing(sim_shaped_checkpoint, tmp_path, monkeypatch, capsys):
    # lerobot-rollout's own entry point, in this process (a subprocess would spend ~15 s importing).
    from lerobot.scripts.lerobot_rollout import main as lerobot_rollout_main

    dataset_root = tmp_path / "rollout"
    monkeypatch.setattr(sys, "argv", rollout_command(sim_shaped_checkpoint, dataset_root, robot_type="so101_simm"))
    with pytest.raises(SystemExit) as exit_info:
        lerobot_rollout_main()
    assert exit_info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error) == 1 and "so101_simm" in error[0] and "'so101_sim'" in error[0]
    assert not dataset_root.exists()
