"""The self-chaining prefix error spread that sets act_smooth's prefix_perturb_scale."""

import json
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.boundary_error import main, prefix_error_spread, prefix_offsets

K, d, D = 2, 2, 2  # prefix frames -2 .. 1 around each observation frame, slope span K + D = 4


def episode_with_offsets(offsets):
    """Truth and a stitched prediction whose prefix before boundary b carries e(f) = c + s f / 4."""
    truth = np.cumsum(np.random.default_rng(0).normal(size=(60, 2)), axis=0)
    stitched = truth.copy()
    stitched[:10] = np.nan  # before the first placement: the replay used the ground truth
    boundaries = [20, 35, 50]
    for b, (c, s) in zip(boundaries, offsets):
        f = np.arange(-K, d)
        stitched[b - d - K : b] += np.asarray(c) + np.outer(f / (K + D), s)
    return stitched, truth, boundaries


def test_prefix_offsets_recover_constant_and_slope():
    offsets = [([1.0, -2.0], [0.5, 0.0]), ([0.0, 3.0], [-4.0, 1.0]), ([2.0, 0.0], [0.0, 0.0])]
    consts, slopes = prefix_offsets(*episode_with_offsets(offsets), past_length=K, delay=d)
    np.testing.assert_allclose(consts, [c for c, _ in offsets], atol=1e-9)
    np.testing.assert_allclose(slopes, [s for _, s in offsets], atol=1e-9)


def test_spread_in_raw_and_normalised_units():
    first = episode_with_offsets([([1.0, 0.0], [0.0, 0.0]), ([3.0, 0.0], [2.0, 0.0]), ([5.0, 0.0], [4.0, 0.0])])
    second = episode_with_offsets([([1.0, 0.0], [0.0, 0.0])] * 3)
    out = prefix_error_spread([first, second], past_length=K, delay=d, action_std=[2.0, 1.0])
    c = np.array([1, 3, 5, 1, 1, 1.0])  # joint 0's constants; joint 1 has none
    s = np.array([0, 2, 4, 0, 0, 0.0])
    assert out["num_boundaries"] == 6
    np.testing.assert_allclose(out["offset_std"], [c.std(ddof=1), 0.0], atol=1e-9)
    np.testing.assert_allclose(out["slope_std"], [s.std(ddof=1), 0.0], atol=1e-9)
    assert out["offset_rms_std"] == pytest.approx(c.std(ddof=1) / np.sqrt(2))
    np.testing.assert_allclose(out["offset_std_normalised"], [c.std(ddof=1) / 2, 0.0], atol=1e-9)


def test_bad_input_is_refused():
    stitched, truth, _ = episode_with_offsets([])
    with pytest.raises(ValueError, match="inside"):
        prefix_offsets(stitched, truth, [2], past_length=K, delay=d)
    with pytest.raises(ValueError, match="at least 2 boundaries"):
        prefix_error_spread([(stitched, truth, [20])], past_length=K, delay=d)


def write_replay_files(stem, mode="self_chaining"):
    """A self-chaining replay's files as actsmooth-replay writes them (stitched_csv of an EpisodeReplay)."""
    from lerobot_policy_act_smooth.evaluation.replay import EpisodeReplay, Stitcher, chunk_schedule, stitched_csv

    truth = np.cumsum(np.random.default_rng(1).normal(size=(40, 2)), axis=0)
    schedule = chunk_schedule(40, past_length=K, delay=d, chunk_size=8, advance=6)
    stitcher = Stitcher(40, 2, blend=False)
    for i, p in enumerate(schedule.placements):  # each chunk: truth + a drift growing along the chunk
        stitcher.place(i, p, truth[p : p + 8] + 0.3 * (i + 1) * np.arange(8)[:, None])
    replay = EpisodeReplay(0, truth, stitcher.values, stitcher.chunk_index, schedule)
    Path(f"{stem}_stitched.csv").write_text(stitched_csv([replay], ["a", "b"]))
    settings = {"mode": mode, "delay": d, "past_length": K}
    Path(f"{stem}_metrics.json").write_text(json.dumps({"settings": settings}))
    return replay


def test_command_reads_a_self_chaining_replay(tmp_path, capsys):
    replay = write_replay_files(tmp_path / "self")
    stats = tmp_path / "ds" / "meta"
    stats.mkdir(parents=True)
    (stats / "stats.json").write_text(json.dumps({"action": {"std": [2.0, 4.0]}}))
    out = tmp_path / "spread.json"
    args = [f"--replay={tmp_path / 'self'}", f"--dataset_root={tmp_path / 'ds'}", f"--output={out}"]
    assert main(args) == 0
    written = json.loads(out.read_text())
    expected = prefix_error_spread([(replay.stitched, replay.truth, replay.boundaries)], K, d, action_std=[2.0, 4.0])
    assert written["num_boundaries"] == len(replay.boundaries) == 4
    np.testing.assert_allclose(written["offset_std_normalised"], expected["offset_std_normalised"], atol=1e-12)
    assert written["slope_rms_std"] > 0 and "normalised action units" in capsys.readouterr().out
    assert main(args) == 2 and "--overwrite=true" in capsys.readouterr().err  # finished results are kept


def test_command_refuses_a_gt_prefix_replay(tmp_path, capsys):
    write_replay_files(tmp_path / "gt", mode="gt_prefix")
    assert main([f"--replay={tmp_path / 'gt'}", f"--output={tmp_path / 'x.json'}"]) == 2
    assert "self_chaining" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
