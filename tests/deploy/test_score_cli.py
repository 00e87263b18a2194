"""actsmooth-score on LeRobot datasets: metrics through evaluation/metrics.py, boundaries, bad input."""

import json
import math

import numpy as np

import pytest

from lerobot_policy_act_smooth.evaluation.metrics import boundary_profiles, smoothness_metrics
from lerobot_policy_act_smooth.evaluation.replay import DatasetEpisodes
from lerobot_policy_act_smooth.evaluation.score_cli import (
    ScoreConfig,
    ScoreDataset,
    ScoreInputError,
    boundaries_from_chunk_log,
    main,
    score,
)


def test_scores_every_episode_with_fixed_chunk_period(tiny_dataset_root, tmp_path, capsys):
    stem = tmp_path / "out" / "tiny"
    stem.parent.mkdir()
    result = score(ScoreConfig(dataset=ScoreDataset(root=str(tiny_dataset_root)), chunk_every=8, output=str(stem)))
    data = DatasetEpisodes("local/tiny_state", str(tiny_dataset_root))
    assert len(result["episodes"]) == data.num_episodes
    for row in result["episodes"]:
        actions = data.actions(row["episode"])
        boundaries = list(range(8, len(actions), 8))
        expected = smoothness_metrics(actions, boundaries, fps=data.fps)
        for key in ("U_v", "U_a", "mu_v", "spike", "spike_transition", "sparc", "ldlj"):
            assert row[key] == pytest.approx(expected[key], rel=1e-12)
        assert row["profile_acc"] == boundary_profiles(actions, boundaries)["profile_acc"].tolist()
        assert len(row["profile_jerk"]) == 31
        assert math.isnan(row["replan_mean"]) and math.isnan(row["replan_max"])  # no predicted chunks recorded
        assert "success" not in row  # no success flag in this recording
    assert "replan discontinuity not available from a recording" in capsys.readouterr().out
    written = json.loads((tmp_path / "out" / "tiny_metrics.json").read_text())
    assert written["settings"]["boundaries"] == "every 8"
    assert written["episodes"][0]["profile_acc"] == result["episodes"][0]["profile_acc"]
    header = (tmp_path / "out" / "tiny_metrics.csv").read_text().splitlines()[0]
    assert "sparc" in header and "profile" not in header  # the lists live in the JSON only
    # Finished results are not replaced without --overwrite=true.
    assert main([f"--dataset.root={tiny_dataset_root}", f"--output={stem}"]) == 2




def test_boundaries_from_chunk_log(tmp_path):
    log = tmp_path / "chunks.jsonl"
    lines = [{"episode": 0, "call": c, "frame": f} for c, f in enumerate([0, 29, 58, 87])]
    lines += [{"episode": 1, "call": 0, "frame": 1}, {"episode": 1, "call": 1, "frame": None}, {"episode": 1, "call": 2, "frame": 60}]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert boundaries_from_chunk_log(log) == {0: [29, 58, 87], 1: [60]}
    log.write_text("not json\n")
    with pytest.raises(ScoreInputError, match="line 1 is not a chunk record"):
        boundaries_from_chunk_log(log)


def test_dataset_without_actions_is_refused_with_one_line(tmp_path, capsys):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = tmp_path / "no_action"
    ds = LeRobotDataset.create(
        repo_id="test/no_action", fps=30, root=root, use_videos=False,
        features={"observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]}},
    )
    for _ in range(5):
        ds.add_frame({"observation.state": np.array([0.0, 1.0], dtype=np.float32), "task": "t"})
    ds.save_episode()
    ds.finalize()
    capsys.readouterr()  # LeRobot's progress bars while writing the dataset
    stem = tmp_path / "scored"
    assert main([f"--dataset.root={root}", f"--output={stem}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no 'action' feature" in err[0]
    assert not list(tmp_path.glob("scored*"))
    assert main([f"--dataset.root={tmp_path / 'missing'}"]) == 2
    assert main(["--dataset.root=x", "--chunk_every=4", "--chunk_log=y"]) == 2
