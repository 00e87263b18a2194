"""actsmooth-replay end to end on tiny checkpoints trained by the real lerobot-train and a tiny
LeRobotDataset: files, images, JSON/text agreement, reproducibility, the act path, bad input."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import acceleration_variance, boundary_spike
from lerobot_policy_act_smooth.evaluation.replay_cli import main

# The act_smooth checkpoint's dataset (sim_state_dataset_root); the act checkpoint replays on tiny_dataset_root.
DATASET = "test/tiny_sim_state"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # tiny models on a shared 2-core machine: one thread avoids oversubscription
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def replay_args(checkpoint, root, stem, *extra):
    return [f"--policy.path={checkpoint}", f"--dataset.repo_id={DATASET}", f"--dataset.root={root}",
            f"--output={stem}", *extra]


def expected_files(stem, episodes=(0, 1, 2)):
    names = ["results.txt", "metrics.json", "metrics.csv", "stitched.csv", "chunks.npz", "run.json"]
    for e in episodes:
        names += [f"ep{e}_trajectories.png", f"ep{e}_accelerations.png"]
    return [Path(f"{stem}_{n}") for n in names]


@pytest.fixture(scope="module")
def gt_run(tiny_act_smooth_checkpoint, sim_state_dataset_root, tmp_path_factory):
    stem = tmp_path_factory.mktemp("replay") / "gt"
    assert main(replay_args(tiny_act_smooth_checkpoint, sim_state_dataset_root, stem, "--mode=gt_prefix", "--seed=3")) == 0
    return stem


def test_console_script_entry_point_and_missing_policy(tmp_path, capsys):
    # `actsmooth-replay` resolves to this main (a subprocess would spend ~15 s importing LeRobot).
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "actsmooth-replay"]
    assert ep.load() is main
    assert main([f"--output={tmp_path / 'x'}", "--dataset.root=/nowhere"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: no policy given; pass --policy.path=")
    assert list(tmp_path.iterdir()) == []


def test_self_chaining_writes_every_file(tiny_act_smooth_checkpoint, sim_state_dataset_root, tmp_path, capsys):
    from PIL import Image

    stem = tmp_path / "out" / "self"
    assert main(replay_args(tiny_act_smooth_checkpoint, sim_state_dataset_root, stem, "--mode=self_chaining")) == 0
    assert re.search(r"replayed 3 episodes \(self_chaining\) in [\d.]+ s", capsys.readouterr().out)
    for path in expected_files(stem):
        assert path.is_file() and path.stat().st_size > 0, path
    for path in stem.parent.glob("*.png"):
        with Image.open(path) as img:
            img.verify()
            assert img.format == "PNG" and img.size[0] > 100
    metrics = json.loads(Path(f"{stem}_metrics.json").read_text())
    assert metrics["settings"]["mode"] == "self_chaining"
    assert metrics["timing"]["predict_calls"] == [6, 6, 6]  # sequential: one call per chunk


def test_json_matches_text_and_csv(gt_run):
    metrics = json.loads(Path(f"{gt_run}_metrics.json").read_text())
    agg = metrics["aggregate"]
    for key in ("U_a_mean", "U_a_std", "spike_mean", "mae_mean", "truth_U_a_mean", "truth_spike_mean"):
        assert np.isfinite(agg[key]), key
    assert [row["episode"] for row in metrics["episodes"]] == [0, 1, 2]
    assert metrics["run"]["seed"] == 3 and metrics["run"]["packages"]["lerobot"]
    assert metrics["settings"] == {**metrics["settings"], "delay": 2, "advance": 8, "past_length": 4, "chunk_size": 8}
    assert metrics["timing"]["predict_calls"] == [1, 1, 1]  # all boundaries of an episode batched

    text = Path(f"{gt_run}_results.txt").read_text()
    blocks = text.split("Episode ")[1:]
    for row, block in zip(metrics["episodes"], blocks, strict=True):
        pred = re.search(r"Predicted\s+U_v=(\S+)\s+U_a=(\S+)\s+mu_v=(\S+)", block).groups()
        truth = re.search(r"Truth\s+U_v=(\S+)\s+U_a=(\S+)\s+mu_v=(\S+)", block).groups()
        spike = re.search(r"Spike Predicted\s+(\S+)\s+\(boundary mean \|a\| (\S+), other mean \|a\| (\S+)\)", block).groups()
        mae = re.search(r"MAE\s+(\S+) deg", block).group(1)
        split = re.search(r"Predicted\s+U_v=\S+\s+U_a=\S+\s+mu_v=\S+\s+U_a_inside=(\S+)\s+U_a_boundary=(\S+)", block).groups()
        assert [float(v) for v in split] == pytest.approx([row["U_a_inside"], row["U_a_boundary"]], rel=1e-5)
        assert [float(v) for v in pred] == pytest.approx([row["U_v"], row["U_a"], row["mu_v"]], rel=1e-5)
        assert [float(v) for v in truth] == pytest.approx([row["truth_U_v"], row["truth_U_a"], row["truth_mu_v"]], rel=1e-5)
        assert [float(v) for v in spike] == pytest.approx(
            [row["spike"], row["spike_boundary_mean"], row["spike_other_mean"]], rel=1e-5)
        assert float(mae) == pytest.approx(row["mae"], rel=1e-5)
    agg_line = re.search(r"Aggregate.*\n\s+Predicted\s+U_v=\S+ \+- \S+\s+U_a=(\S+) \+- (\S+)", text).groups()
    assert [float(v) for v in agg_line] == pytest.approx([agg["U_a_mean"], agg["U_a_std"]], rel=1e-5)

    with open(f"{gt_run}_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["episode"] for r in rows] == ["0", "1", "2", "mean", "std"]
    assert float(rows[3]["U_a"]) == agg["U_a_mean"]


def test_stitched_csv_recomputes_the_metrics(gt_run):
    metrics = json.loads(Path(f"{gt_run}_metrics.json").read_text())
    with open(f"{gt_run}_stitched.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["episode"] == "1" and r["source"] == "prediction"]
    joints = list(dict.fromkeys(r["joint"] for r in rows))
    frames = sorted({int(r["frame"]) for r in rows})
    assert frames[0] == 4 + 2  # p0 = K + d
    pred = np.array([[float(r["prediction"]) for r in rows if r["joint"] == j] for j in joints]).T
    chunk = np.array([int(r["chunk"]) for r in rows if r["joint"] == joints[0]])
    boundaries = (np.nonzero(np.diff(chunk))[0] + 1).tolist()
    assert boundaries == [8, 16, 24, 32, 40]
    ep1 = metrics["episodes"][1]
    assert acceleration_variance(pred) == pytest.approx(ep1["U_a"], rel=1e-9)
    assert boundary_spike(pred, boundaries)["spike"] == pytest.approx(ep1["spike"], rel=1e-9)


def test_same_seed_gives_identical_numbers(gt_run, tiny_act_smooth_checkpoint, sim_state_dataset_root, tmp_path):
    stem = tmp_path / "again"
    assert main(replay_args(tiny_act_smooth_checkpoint, sim_state_dataset_root, stem, "--mode=gt_prefix", "--seed=3",
                            "--plots=false")) == 0
    first = json.loads(Path(f"{gt_run}_metrics.json").read_text())
    second = json.loads(Path(f"{stem}_metrics.json").read_text())
    assert first["episodes"] == second["episodes"] and first["aggregate"] == second["aggregate"]
    assert Path(f"{gt_run}_stitched.csv").read_text() == Path(f"{stem}_stitched.csv").read_text()


def test_lerobot_act_replays_back_to_back_with_plan_spellings(tiny_act_checkpoint, tiny_dataset_root, tmp_path):
    stem = tmp_path / "act"
    args = [f"--path_policy={tiny_act_checkpoint}", "--id_repo_dataset=test/tiny_state", f"--root={tiny_dataset_root}",
            "--indices_episode=0,2", f"--path_output={stem}"]
    assert main(args) == 0
    metrics = json.loads(Path(f"{stem}_metrics.json").read_text())
    assert metrics["settings"]["policy_type"] == "act" and metrics["settings"]["delay"] == 0
    assert [row["episode"] for row in metrics["episodes"]] == [0, 2]
    assert metrics["episodes"][0]["num_chunks"] == 7  # t = 0, 8, ..., 48
    with open(f"{stem}_stitched.csv") as f:
        sources = {r["source"] for r in csv.DictReader(f)}
    assert sources == {"prediction"}  # no prefix


@pytest.fixture(scope="module")
def short_dataset_root(tmp_path_factory):
    from tiny_dataset import make_tiny_dataset

    from lerobot_policy_act_smooth.sim.env import ENV_STATE_DIM

    root = tmp_path_factory.mktemp("datasets") / "short"
    # 12 frames < K+D+C = 14
    make_tiny_dataset(root, repo_id=DATASET, num_episodes=1, frames_per_episode=12, env_state_dim=ENV_STATE_DIM)
    return root


@pytest.mark.parametrize(
    "case, message",
    [
        ("episode_out_of_range", "episode 7 out of range"),
        ("delay_too_large", r"--delay=3 is outside 1\.\.2"),
        ("missing_checkpoint", "checkpoint not found"),
        ("missing_features", "input features the dataset lacks: observation.environment_state"),
        ("short_episode", "fewer than K\\+D\\+C\\+1 = 15"),
    ],
)
def test_bad_input_one_error_nothing_touched(case, message, gt_run, tiny_act_smooth_checkpoint, sim_state_dataset_root,
                                             tiny_camera_dataset_root, request, tmp_path, capsys):
    before = {p: p.read_bytes() for p in expected_files(gt_run)}
    checkpoint, root, extra = tiny_act_smooth_checkpoint, sim_state_dataset_root, []
    if case == "episode_out_of_range":
        extra = ["--episodes=0,7"]
    elif case == "delay_too_large":
        extra = ["--delay=3"]
    elif case == "missing_checkpoint":
        checkpoint = tmp_path / "no_such_run" / "pretrained_model"
    elif case == "missing_features":
        root = tiny_camera_dataset_root
        extra = ["--dataset.repo_id=test/tiny_camera", "--episodes=0"]
    elif case == "short_episode":
        root = request.getfixturevalue("short_dataset_root")
        extra = ["--episodes=0"]
    capsys.readouterr()
    # --overwrite=true: even a run allowed to replace the earlier results must leave them untouched on bad input.
    assert main(replay_args(checkpoint, root, gt_run, "--overwrite=true", *extra)) == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and re.search(message, err_lines[0]), err_lines
    assert {p: p.read_bytes() for p in expected_files(gt_run)} == before


def test_earlier_results_are_kept_unless_overwrite(tmp_path, capsys):
    stem = tmp_path / "done"
    finished = Path(f"{stem}_metrics.json")
    finished.write_text('{"aggregate": {"U_a_mean": 1.0}}')
    # Refused before the (missing) checkpoint is even looked at, and the finished file is untouched.
    assert main([f"--output={stem}", "--policy.path=/nowhere", "--dataset.root=/nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: results of an earlier run exist") and "--overwrite=true" in err
    assert finished.read_text() == '{"aggregate": {"U_a_mean": 1.0}}'
    # With --overwrite=true the run gets past that check (and stops at the missing checkpoint).
    assert main([f"--output={stem}", "--policy.path=/nowhere", "--dataset.root=/nowhere", "--overwrite=true"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
