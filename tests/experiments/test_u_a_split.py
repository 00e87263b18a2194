"""U_a inside chunks / at the joins in the report, for evaluations scored before the split existed:
recomputed from the trajectory files the evaluation wrote (real file formats, hand-made values)."""

import json

import numpy as np
import pandas as pd
import pytest

from lerobot_policy_act_smooth.evaluation.closed_loop_results import EpisodeRecord, episode_row, format_trajectories_csv
from lerobot_policy_act_smooth.evaluation.metrics import smoothness_metrics, split_acceleration_variance
from lerobot_policy_act_smooth.experiments.results_table import split_rows

SPLIT_KEYS = ("U_a_inside", "U_a_boundary")
JOINTS = ["shoulder_pan.pos", "elbow_flex.pos"]


def jerky_chunks(episode: int, frames: int = 24, chunk: int = 6) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """A smooth ramp per joint with a step at every chunk start (as a self-chained policy's joins)."""
    rng = np.random.default_rng(episode)
    k = np.arange(frames, dtype=float)[:, None]
    truth = np.hstack([0.5 * k, -0.2 * k]) + rng.normal(0, 0.05, (frames, 2))
    chunk_index = k[:, 0].astype(int) // chunk
    prediction = truth + 0.8 * chunk_index[:, None] * np.array([1.0, -0.5])
    boundaries = list(range(chunk, frames, chunk))
    return prediction, truth, boundaries


def write_old_replay(tdir, episodes=(3, 4)) -> dict:
    """A self-chaining replay's stitched CSV and a metrics JSON without the split keys."""
    rows, episode_rows = [], []
    for ep in episodes:
        prediction, truth, boundaries = jerky_chunks(ep)
        for f in range(prediction.shape[0]):
            for j, name in enumerate(JOINTS):
                # as replay.stitched_csv writes them: repr of the float
                rows.append([ep, f, name, repr(float(truth[f, j])), repr(float(prediction[f, j])), "prediction", f // 6])
        old = {k: v for k, v in smoothness_metrics(prediction, boundaries).items() if k not in SPLIT_KEYS}
        episode_rows.append({"episode": ep, **old})
    (tdir / "eval").mkdir(parents=True)
    pd.DataFrame(rows, columns=["episode", "frame", "joint", "truth", "prediction", "source", "chunk"]).to_csv(
        tdir / "eval" / "self_chaining_stitched.csv", index=False)
    (tdir / "eval" / "self_chaining_metrics.json").write_text(json.dumps({"aggregate": {}, "episodes": episode_rows}))
    return {"evaluations": {"self_chaining": {"status": "ok", "metrics": "eval/self_chaining_metrics.json"}}}


def test_old_replay_is_rescored_from_its_stitched_file(tmp_path):
    done = write_old_replay(tmp_path)
    rows = split_rows(tmp_path, done, "self_chaining")
    assert [r["episode"] for r in rows] == [3, 4]
    for row in rows:
        prediction, truth, boundaries = jerky_chunks(row["episode"])
        expected = split_acceleration_variance(prediction, boundaries)
        assert row["U_a_inside"] == pytest.approx(expected["U_a_inside"])
        assert row["U_a_boundary"] == pytest.approx(expected["U_a_boundary"])
        # the steps sit in the boundary windows: the joins carry the U_a
        assert row["U_a_boundary"] > 10 * row["U_a_inside"]
        assert row["truth_U_a_inside"] == pytest.approx(split_acceleration_variance(truth, boundaries)["U_a_inside"])


def test_rescoring_is_refused_when_the_file_does_not_reproduce_the_stored_u_a(tmp_path):
    done = write_old_replay(tmp_path)
    path = tmp_path / "eval" / "self_chaining_metrics.json"
    payload = json.loads(path.read_text())
    payload["episodes"][1]["U_a"] *= 1.01
    path.write_text(json.dumps(payload))
    assert split_rows(tmp_path, done, "self_chaining") is None
    (tmp_path / "eval" / "self_chaining_stitched.csv").unlink()
    assert split_rows(tmp_path, done, "self_chaining") is None


def test_rows_that_have_the_split_are_used_as_stored(tmp_path):
    done = write_old_replay(tmp_path)
    path = tmp_path / "eval" / "self_chaining_metrics.json"
    payload = json.loads(path.read_text())
    for row in payload["episodes"]:
        row.update(U_a_inside=1.0, U_a_boundary=2.0)
    path.write_text(json.dumps(payload))
    assert [r["U_a_inside"] for r in split_rows(tmp_path, done, "self_chaining")] == [1.0, 1.0]


def test_old_closed_loop_run_is_rescored_from_its_trajectories(tmp_path):
    records = []
    for ep in (0, 1):
        commanded, observed, boundaries = jerky_chunks(ep + 10, frames=30)
        records.append(EpisodeRecord(
            episode=ep, seed=ep, commanded=commanded, observed=observed, source=[f // 6 for f in range(30)],
            requests=[{}] * 5, switch_frames=[0, *boundaries], boundaries=boundaries, success=True, success_frame=20,
            terminated=True, truncated=False, predict_seconds=[]))
    rows = []
    for rec in records:
        row = {k: v for k, v in episode_row(rec).items() if not k.endswith(SPLIT_KEYS)}
        rows.append({**row, "boundaries": rec.boundaries})
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "closed_loop_trajectories.csv").write_text(format_trajectories_csv(records))
    (tmp_path / "eval" / "closed_loop_metrics.json").write_text(json.dumps({"aggregate": {}, "episodes": rows}))
    done = {"evaluations": {"closed_loop": {"status": "ok", "metrics": "eval/closed_loop_metrics.json"}}}
    out = split_rows(tmp_path, done, "closed_loop")
    for rec, row in zip(records, out):
        expected = split_acceleration_variance(rec.commanded, rec.boundaries)
        assert row["action_U_a_inside"] == pytest.approx(expected["U_a_inside"])
        assert row["action_U_a_boundary"] == pytest.approx(expected["U_a_boundary"])
        assert row["success"] is True  # the stored row's other keys are kept
