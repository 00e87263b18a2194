"""Replay semantics (gt_prefix, self_chaining, overwrite, blending, act) with stand-in predictors
of known behaviour: the stitched sequences must equal what is derived by hand below."""

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.replay import ReplayInputError, replay_episode
from replay_stand_ins import StandInPredictor, frame_observer


def truth_actions(n=30, a=2):
    # distinct values per frame and joint: truth[f, j] = 100 j + f^2 / 10
    f = np.arange(n, dtype=float)
    return np.stack([100 * j + f**2 / 10 for j in range(a)], axis=1)


def test_gt_prefix_repeat_last_places_each_chunk_after_its_prefix():
    # K=2, d=2, C=5, advance 5, N=30: boundaries t = 2, 7, 12, 17, 22 (t + D + C < 30, D = 2),
    # chunks placed at p = 4, 9, 14, 19, 24, each = truth[p - 1] (the last committed action).
    truth = truth_actions()
    pred = StandInPredictor("repeat_last")
    rep = replay_episode(pred, truth, frame_observer, mode="gt_prefix")
    assert rep.schedule.observation_frames == [2, 7, 12, 17, 22]
    assert (rep.start, rep.stop) == (4, 29)
    expected = np.full_like(truth, np.nan)
    for p in (4, 9, 14, 19, 24):
        expected[p : p + 5] = truth[p - 1]
    np.testing.assert_array_equal(rep.stitched, expected)
    assert rep.chunk_index.tolist() == [-1] * 4 + [i for i in range(5) for _ in range(5)] + [-1]
    assert rep.boundaries == [9, 14, 19, 24]
    # one batched call; prefixes were ground truth frames t-2..t+1
    assert rep.predict_calls == 1 and len(pred.calls) == 1
    np.testing.assert_array_equal(pred.calls[0]["frames"], [2, 7, 12, 17, 22])
    np.testing.assert_array_equal(pred.calls[0]["past"][1], truth[[5, 6]])
    np.testing.assert_array_equal(pred.calls[0]["committed"][1], truth[[7, 8]])


def test_self_chaining_repeat_last_holds_the_seed():
    # Chunk 0 repeats truth[3]; every later prefix is read from that chunk, so it never moves.
    truth = truth_actions()
    rep = replay_episode(StandInPredictor("repeat_last"), truth, frame_observer, mode="self_chaining")
    np.testing.assert_array_equal(rep.prediction_in_range(), np.repeat(truth[3:4], 25, axis=0))
    assert rep.predict_calls == 5


def test_self_chaining_feeds_own_predictions_and_seeds_from_truth():
    # advance 1: t = 2, 3, ...; p0 = 4. Ramp stand-in continues a line from its last committed
    # action, so the whole stitched sequence is truth[3] + (f - 3) for f >= 4.
    truth = truth_actions()
    pred = StandInPredictor("ramp", step=1.0)
    rep = replay_episode(pred, truth, frame_observer, mode="self_chaining", advance=1)
    frames = np.arange(rep.start, rep.stop)
    np.testing.assert_allclose(rep.prediction_in_range(), truth[3] + (frames - 3)[:, None])
    # chunk 1 is observed at t=3: past frames 1, 2 and committed frame 3 are ground truth
    # (before p0), committed frame 4 is chunk 0's first action truth[3] + 1.
    second = pred.calls[1]
    np.testing.assert_array_equal(second["past"][0], truth[[1, 2]])
    np.testing.assert_array_equal(second["committed"][0], np.stack([truth[3], truth[3] + 1]))
    # in gt_prefix mode the same predictor restarts from the ground truth at every boundary
    gt = replay_episode(StandInPredictor("ramp"), truth, frame_observer, mode="gt_prefix", advance=1)
    assert not np.allclose(gt.prediction_in_range(), rep.prediction_in_range())


def test_later_chunk_overwrites_shared_frames():
    # advance 3 < C=5 without blending: chunk i supplies frames p_i .. p_i + 2, the last one 5 frames.
    truth = truth_actions()
    rep = replay_episode(StandInPredictor("repeat_last"), truth, frame_observer, advance=3)
    placements = rep.schedule.placements
    assert placements == list(range(4, 23, 3))  # t = 2, 5, ..., 20 (t + D + C < 30)
    expected = np.full_like(truth, np.nan)
    for i, p in enumerate(placements):
        expected[p : p + 5] = truth[p - 1]  # later chunks written last win
    np.testing.assert_array_equal(rep.stitched, expected)
    assert rep.chunk_index[placements[1] - 1] == 0 and rep.chunk_index[placements[1]] == 1


def test_blend_crossfades_the_overlap_linearly():
    # Each chunk is the constant t_i (its observation frame). advance 3 of C=5: 2 shared frames,
    # new-chunk weights 1/3 and 2/3.
    truth = truth_actions()
    rep = replay_episode(StandInPredictor("obs_frame"), truth, frame_observer, advance=3, blend=True)
    t, p = rep.schedule.observation_frames, rep.schedule.placements
    x = rep.stitched[:, 0]
    assert x[p[0]] == t[0] and x[p[0] + 2] == t[0]
    assert x[p[1]] == pytest.approx(2 / 3 * t[0] + 1 / 3 * t[1])
    assert x[p[1] + 1] == pytest.approx(1 / 3 * t[0] + 2 / 3 * t[1])
    assert x[p[1] + 2] == t[1]
    assert x[p[-1] + 4] == t[-1]
    # blending smooths the junction compared with overwriting
    hard = replay_episode(StandInPredictor("obs_frame"), truth, frame_observer, advance=3)
    assert rep.metrics()["spike_boundary_mean"] < hard.metrics()["spike_boundary_mean"]


def test_act_chunks_back_to_back_without_prefix():
    truth = truth_actions()
    pred = StandInPredictor("obs_frame", policy_type="act", chunk_size=5, n_action_steps=5)
    rep = replay_episode(pred, truth, frame_observer, mode="self_chaining")
    assert rep.schedule.observation_frames == [0, 5, 10, 15, 20]  # t + C < 30 (D = 0)
    assert (rep.start, rep.stop) == (0, 25)
    np.testing.assert_array_equal(rep.stitched[:25, 1], np.repeat([0, 5, 10, 15, 20], 5))
    assert pred.calls[0]["past"].shape == (5, 0, 2) and pred.calls[0]["committed"].shape == (5, 0, 2)
    with pytest.raises(ReplayInputError, match="does not apply"):
        replay_episode(pred, truth, frame_observer, delay=1)


def test_batch_size_changes_calls_not_results():
    truth = truth_actions()
    a = replay_episode(StandInPredictor("ramp"), truth, frame_observer, advance=2, batch_size=3)
    b = replay_episode(StandInPredictor("ramp"), truth, frame_observer, advance=2, batch_size=64)
    np.testing.assert_array_equal(a.stitched, b.stitched)
    n = len(a.schedule.observation_frames)
    assert a.predict_calls == -(-n // 3) and b.predict_calls == 1


def test_delay_one_places_chunks_one_frame_earlier():
    truth = truth_actions()
    rep = replay_episode(StandInPredictor("repeat_last"), truth, frame_observer, delay=1)
    assert rep.schedule.placements[:2] == [3, 8]
    np.testing.assert_array_equal(rep.stitched[3], truth[2])


def test_metrics_use_stitched_frames_and_relative_boundaries():
    truth = truth_actions()
    rep = replay_episode(StandInPredictor("repeat_last"), truth, frame_observer)
    row = rep.metrics()
    # stitched = steps of constant values: velocity is zero except at the 4 junctions
    assert row["mu_v"] > 0 and row["spike_other_mean"] == 0.0
    assert row["truth_U_a"] == pytest.approx(0.0, abs=1e-12)  # f^2/10 has constant acceleration
    assert row["num_chunks"] == 5 and row["episode"] == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"delay": 3}, r"outside 1\.\.2"),
        ({"delay": 0}, r"outside 1\.\.2"),
        ({"advance": 6}, r"outside 1\.\.5"),
        ({"blend": True}, "overlapping"),
        ({"mode": "closed_loop"}, "not one of"),
    ],
)
def test_bad_settings_raise_one_clear_error(kwargs, match):
    with pytest.raises(ReplayInputError, match=match):
        replay_episode(StandInPredictor(), truth_actions(), frame_observer, **kwargs)


def test_short_episode_is_refused():
    with pytest.raises(ReplayInputError, match=r"8 frames, fewer than K\+D\+C\+1 = 2\+2\+5\+1 = 10"):
        replay_episode(StandInPredictor(), truth_actions(8), frame_observer)
