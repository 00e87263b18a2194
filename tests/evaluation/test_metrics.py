"""The plan's smoothness metrics against arrays whose values are worked out by hand."""

import math

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import (
    acceleration_variance,
    aggregate,
    boundary_acceleration_mask,
    boundary_profile_lists,
    boundary_profiles,
    boundary_spike,
    episode_metrics,
    log_dimensionless_jerk,
    mean_abs_error,
    mean_abs_velocity,
    movement_smoothness,
    replan_discontinuity,
    replan_summary,
    smoothness_metrics,
    sparc,
    split_acceleration_variance,
    velocity_variance,
)


def test_constant_velocity_has_no_acceleration():
    k = np.arange(30, dtype=float)
    x = np.stack([3.0 + 2.0 * k, -1.0 - 0.5 * k], axis=1)  # [T, J] deg
    assert acceleration_variance(x) == 0.0
    assert velocity_variance(x) == 0.0
    assert mean_abs_velocity(x) == pytest.approx((2.0 + 0.5) / 2)  # mean over joints and frames


def test_velocity_variance_is_sample_variance_max_over_joints():
    k = np.arange(11, dtype=float)
    x = np.stack([k**2 / 2, k**2], axis=1)  # v = k + 1/2 and 2k + 1 for k = 0..9
    v_fast = 2 * np.arange(10) + 1.0
    expected = np.sum((v_fast - v_fast.mean()) ** 2) / 9  # ddof=1, as pandas' .var()
    assert velocity_variance(x) == pytest.approx(expected)
    assert velocity_variance(x) == pytest.approx(4 * 82.5 / 9)  # sum of squares of 0..9 about 4.5 is 82.5
    # constant acceleration of 1 and 2 deg/frame^2: no variance
    assert acceleration_variance(x) == pytest.approx(0.0)


def test_step_at_a_boundary_gives_the_hand_computed_spike():
    # x[k] = c k^2 / 2 + h [k >= b]: a = c everywhere, except rows b-2 and b-1 (labelled frames
    # b and b+1, the later end of each backward difference): c + h and c - h.
    c, h, b, T = 0.5, 3.0, 10, 20
    k = np.arange(T, dtype=float)
    x = (c * k**2 / 2 + h * (k >= b))[:, None]
    assert boundary_acceleration_mask(T, [b]).nonzero()[0].tolist() == [6, 7, 8, 9, 10]  # labels 8..12
    # window labels 8..12 = rows 6..10 = |a| of 0.5, 0.5, 3.5, 2.5, 0.5 -> mean 1.5; the other 13 rows 0.5.
    out = boundary_spike(x, [b])
    assert out["boundary_mean"] == pytest.approx(1.5)
    assert out["other_mean"] == pytest.approx(0.5)
    assert out["spike"] == pytest.approx(3.0)

    a = [0.5] * 18
    a[8], a[9] = 3.5, -2.5
    mean = sum(a) / 18
    assert acceleration_variance(x) == pytest.approx(sum((ai - mean) ** 2 for ai in a) / 17)  # ddof=1


def test_u_a_splits_into_inside_chunks_and_boundary_windows_by_hand():
    # The step of the test above: the window rows 6..10 hold a = 0.5, 0.5, 3.5, -2.5, 0.5, the other
    # 13 rows a = 0.5 exactly.
    c, h, b, T = 0.5, 3.0, 10, 20
    k = np.arange(T, dtype=float)
    x = np.stack([c * k**2 / 2 + h * (k >= b), k**3 / 6], axis=1)  # joint 1: a = k - 1 for row k - 2 -> a = row + 1
    window = [0.5, 0.5, 3.5, -2.5, 0.5]
    m = sum(window) / 5
    step_boundary = sum((w - m) ** 2 for w in window) / 4  # ddof=1 over the 5 window rows
    rows_outside = [r + 1.0 for r in range(18) if not 6 <= r <= 10]  # joint 1 outside the window
    mo = sum(rows_outside) / 13
    cubic_inside = sum((r - mo) ** 2 for r in rows_outside) / 12
    cubic_boundary = sum((r + 1.0 - 9.0) ** 2 for r in range(6, 11)) / 4  # rows 6..10 -> a 7..11, mean 9
    out = split_acceleration_variance(x, [b])
    assert out["U_a_inside"] == pytest.approx(max(0.0, cubic_inside))  # joint 0 is constant there
    assert out["U_a_boundary"] == pytest.approx(max(step_boundary, cubic_boundary))
    assert step_boundary == pytest.approx(4.5) and cubic_boundary == pytest.approx(2.5)
    # the same keys come with every sequence's metrics
    assert smoothness_metrics(x, [b])["U_a_boundary"] == out["U_a_boundary"]
    # no boundary: everything is inside, the boundary part is undefined
    whole = split_acceleration_variance(x, [])
    assert whole["U_a_inside"] == pytest.approx(acceleration_variance(x)) and math.isnan(whole["U_a_boundary"])


def test_pure_ramp_with_step_spike_is_infinite_and_means_are_reported():
    h, b = 2.0, 6
    x = (np.arange(15, dtype=float) + h * (np.arange(15) >= b))[:, None]
    out = boundary_spike(x, [b])
    assert out["boundary_mean"] == pytest.approx(2 * h / 5)
    assert out["other_mean"] == 0.0
    assert math.isinf(out["spike"])


def test_spike_averages_over_joints_and_merges_close_windows():
    c, h, T = 1.0, 4.0, 24
    k = np.arange(T, dtype=float)
    joint0 = c * k**2 / 2 + h * (k >= 8)
    joint1 = c * k**2 / 2  # no step
    x = np.stack([joint0, joint1], axis=1)
    mask = boundary_acceleration_mask(T, [8, 10])
    assert mask.nonzero()[0].tolist() == [4, 5, 6, 7, 8, 9, 10]  # rows 4..8 and 6..10 merged
    out = boundary_spike(x, [8, 10])
    # joint 0 rows 4..10: 1, 1, 5, 3, 1, 1, 1 (|c-h| = 3); joint 1: seven 1s
    assert out["boundary_mean"] == pytest.approx((13 + 7) / 14)
    assert out["other_mean"] == pytest.approx(1.0)


def test_window_is_clipped_at_the_sequence_ends():
    assert boundary_acceleration_mask(10, [1]).nonzero()[0].tolist() == [0, 1]  # labels 2..3 exist
    assert boundary_acceleration_mask(10, [9]).nonzero()[0].tolist() == [5, 6, 7]  # rows 0..7 exist


def test_no_boundary_gives_nan_spike():
    x = np.random.default_rng(0).normal(size=(20, 3))
    assert math.isnan(boundary_spike(x, [])["spike"])


def test_mean_abs_error_and_shape_checks():
    pred = np.zeros((4, 2))
    truth = np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 0.0], [0.0, 4.0]])
    assert mean_abs_error(pred, truth) == pytest.approx(8 / 8)
    with pytest.raises(ValueError, match="same shape"):
        mean_abs_error(pred, truth[:3])
    with pytest.raises(ValueError, match=r"\[T, J\]"):
        acceleration_variance(np.zeros((2, 3, 4)))


def test_episode_metrics_and_aggregate():
    rng = np.random.default_rng(1)
    truth = np.cumsum(rng.normal(size=(40, 3)), axis=0)
    pred = truth + rng.normal(scale=0.1, size=truth.shape)
    row = episode_metrics(pred, truth, [10, 20, 30])
    assert row["U_a"] == pytest.approx(acceleration_variance(pred))
    assert row["truth_U_a"] == pytest.approx(acceleration_variance(truth))
    assert row["mae"] == pytest.approx(mean_abs_error(pred, truth))
    assert set(smoothness_metrics(pred, [10])) <= set(row)

    agg = aggregate([{"episode": 0, "U_a": 1.0, "mae": 2.0}, {"episode": 1, "U_a": 3.0, "mae": 2.0}])
    assert agg["U_a_mean"] == 2.0 and agg["U_a_std"] == pytest.approx(math.sqrt(2))  # sample std, ddof=1
    assert math.isnan(aggregate([{"U_a": 1.0}])["U_a_std"])  # one episode: no spread to estimate
    assert agg["mae_std"] == 0.0
    assert "episode_mean" not in agg and agg["num_episodes"] == 2
    # yes/no values count as 1/0: their mean is a rate (closed-loop success)
    flags = aggregate([{"success": True, "note": "x"}, {"success": False}, {"success": True}, {"success": True}])
    assert flags["success_mean"] == 0.75 and "note_mean" not in flags


# ------------------------------------------- small cases, parameters and edges (mutation testing)


def with_accelerations(acc_by_label: dict[int, float], num_frames: int, default: float) -> np.ndarray:
    """[T, 1] positions whose second difference labelled f is acc_by_label.get(f, default); x[0] = x[1] = 0."""
    x = np.zeros(num_frames)
    for f in range(2, num_frames):
        x[f] = 2 * x[f - 1] - x[f - 2] + acc_by_label.get(f, default)
    return x[:, None]


def test_mean_abs_error_of_a_nonzero_prediction():
    pred = np.array([[1.0, 2.0], [3.0, -1.0]])
    truth = np.array([[0.0, 4.0], [3.0, 1.0]])  # |pred - truth| = 1, 2, 0, 2
    assert mean_abs_error(pred, truth) == pytest.approx(5 / 4)


def test_shortest_sequences_each_measure_accepts_and_one_frame_fewer():
    assert velocity_variance([0.0, 1.0, 3.0, 6.0]) == pytest.approx(1.0)  # 1-D: one joint, v = 1, 2, 3
    assert velocity_variance([[0.0], [1.0], [3.0]]) == pytest.approx(0.5)  # 3 frames: v = 1, 2
    assert acceleration_variance([[0.0], [0.0], [1.0], [4.0]]) == pytest.approx(0.5)  # 4 frames: a = 1, 2
    assert mean_abs_velocity([[0.0, 0.0], [1.0, -3.0]]) == pytest.approx(2.0)  # 2 frames: |v| = 1, 3
    with pytest.raises(ValueError, match="U_v needs at least 3 frames"):
        velocity_variance(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="U_a needs at least 4 frames"):
        acceleration_variance(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="mu_v needs at least 2 frames"):
        mean_abs_velocity(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="LDLJ needs at least 4 frames, got 3"):
        log_dimensionless_jerk(np.zeros((3, 2)), 30.0)
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        sparc([1.0], 30.0)
    assert boundary_acceleration_mask(2, [1]).shape == (0,)  # no second difference at all


def test_a_window_of_one_row_and_a_still_sequence_at_a_boundary():
    assert boundary_acceleration_mask(10, [5], window=0).nonzero()[0].tolist() == [3]  # label 5 only
    ramp = np.arange(20.0)[:, None]  # constant velocity: every acceleration is 0, at the boundary too
    out = boundary_spike(ramp, [10])
    assert out["boundary_mean"] == 0.0 and out["other_mean"] == 0.0 and math.isnan(out["spike"])


def test_window_and_transition_after_reach_every_windowed_measure():
    # |a| = 1 at every label 2..39 except 4 at label 22 = b + 2.
    x = with_accelerations({22: 4.0}, 40, 1.0)
    plan = smoothness_metrics(x, [20])  # +-2: labels 18..22 hold 1, 1, 1, 1, 4
    assert plan["spike"] == pytest.approx(8 / 5)
    assert plan["U_a_boundary"] == pytest.approx(1.8) and plan["U_a_inside"] == pytest.approx(0.0)
    assert plan["spike_transition"] == pytest.approx(18 / 15)  # labels 18..32: fourteen 1s and the 4
    narrow = smoothness_metrics(x, [20], window=1, transition_after=1)  # labels 19..21: all 1
    assert narrow["spike"] == pytest.approx(35 / 38)  # the other 35 labels: 34 ones and the 4
    assert narrow["spike_transition"] == pytest.approx(35 / 38)
    # the 4 is inside now: var of 34 ones and a 4 = (50 - 38^2 / 35) / 34 = 9/35
    assert narrow["U_a_boundary"] == pytest.approx(0.0) and narrow["U_a_inside"] == pytest.approx(9 / 35)
    assert boundary_spike(x, [20], window=1)["spike"] == pytest.approx(35 / 38)
    assert split_acceleration_variance(x, [20], window=1)["U_a_inside"] == pytest.approx(9 / 35)


def test_u_a_split_of_one_joint_with_two_boundary_rows():
    # b = 1: the window holds labels 2 and 3 only (rows 0, 1): a = 3, 1 -> var 2. The other eight
    # labels 4..11 hold one 2 and seven 0s: var = (4 - 8 * (1/4)^2) / 7 = 1/2.
    x = with_accelerations({2: 3.0, 3: 1.0, 7: 2.0}, 12, 0.0)
    out = split_acceleration_variance(x, [1])
    assert out["U_a_boundary"] == pytest.approx(2.0) and out["U_a_inside"] == pytest.approx(0.5)


def test_episode_metrics_pass_window_transition_and_fps_to_both_sequences():
    # |a| = 1 except 6 at label 25 = b + 5: the +-2 spike is 33/38, the transition spike
    # (labels 18..32) 4/3 (test_boundary_measures has the counts). The truth is the same motion
    # 0.5 deg lower: the same measures, and an MAE of 0.5.
    x = with_accelerations({25: 6.0}, 40, 1.0)
    row = episode_metrics(x, x - 0.5, [20], fps=60.0)
    for prefix in ("", "truth_"):
        assert row[prefix + "spike"] == pytest.approx(33 / 38)
        assert row[prefix + "spike_transition"] == pytest.approx(4 / 3)
    assert row["mae"] == pytest.approx(0.5)
    # a transition of 3 frames (labels 18..23) leaves the 6 outside: 1 against (31 + 6) / 32
    short = episode_metrics(x, x - 0.5, [20], fps=60.0, transition_after=3)
    assert short["spike_transition"] == pytest.approx(32 / 37)
    assert short["truth_spike_transition"] == pytest.approx(32 / 37)
    # fps reaches SPARC: a tremor of period 5 frames is 12 Hz at 60 fps, outside the 10 Hz band
    k = np.arange(90)
    tremor = (20 * np.sin(2 * np.pi * k / 300) + 0.5 * np.sin(2 * np.pi * k / 5))[:, None]
    at_60 = movement_smoothness(tremor, 60.0)["sparc"]
    assert all(abs(at_60 - movement_smoothness(tremor, fps)["sparc"]) > 0.1 for fps in (12.0, 30.0))
    both = episode_metrics(tremor, tremor + 1.0, [30, 60], fps=60.0)
    assert both["sparc"] == pytest.approx(at_60, abs=1e-12) and both["truth_sparc"] == pytest.approx(at_60, abs=1e-12)


def test_sparc_of_a_two_sample_speed_by_hand():
    # speed 1, 1 zero-padded to 2^(1 + 4) = 32 samples: |V(k)| = |1 + exp(-2 pi i k / 32)| = 2 cos(pi k / 32),
    # normalised cos(pi k / 32), at k * fps / 32 Hz; it stays >= 0.05 up to k = 15.
    def arc(last):
        m = np.cos(np.pi * np.arange(last + 1) / 32)
        return -float(np.sum(np.hypot(1 / last, np.diff(m))))

    assert sparc([1.0, 1.0], 32.0) == pytest.approx(arc(10), abs=1e-12)  # bin 10 lies on the 10 Hz cutoff
    assert sparc([1.0, 1.0], 20.0) == pytest.approx(arc(15), abs=1e-12)  # bin 16 (10 Hz) is 0: the threshold cuts
    assert sparc([1.0, 1.0], 200.0) == pytest.approx(arc(1), abs=1e-12)  # 6.25 Hz in, 12.5 Hz out
    assert math.isnan(sparc([1.0, 1.0], 400.0))  # 12.5 Hz is the first bin: only 0 Hz is in the band


def test_ldlj_of_constant_velocity_and_of_a_nearly_straight_path():
    assert log_dimensionless_jerk(np.arange(10.0)[:, None], 30.0) == math.inf  # no jerk at all
    # x = 0, 1, 2, 3.1: third difference 0.1, path length 3.1, D = 3 frames; DLJ = 3^5 * 0.1^2 / 3.1^2
    # = 0.253 (< 1: LDLJ > 0), whatever the fps
    expected = -math.log(243 * 0.01 / 3.1**2)
    for fps in (1.0, 30.0):
        assert log_dimensionless_jerk(np.array([[0.0], [1.0], [2.0], [3.1]]), fps) == pytest.approx(expected, rel=1e-12)


def test_replan_discontinuity_when_the_old_chunk_outlasts_the_new_one():
    old = np.arange(10.0)[:, None] + 10.0  # frames 10..19, value = frame
    new = np.array([[12.0], [14.0], [14.0], [15.5]])  # frames 12..15: off by 0, 1, 0, 0.5
    assert replan_discontinuity(old, 10, new, 12) == 1.0
    with pytest.raises(ValueError, match="2 chunks but 1 start frames; pass one start per chunk"):
        replan_summary([old, new], [10])
    assert set(replan_summary([old, new], [0, 10])) == {"replan_mean", "replan_max"}  # NaN, same keys


def test_profile_of_half_width_zero_and_the_result_file_lists():
    h = 3.0
    x = (h * (np.arange(40) >= 20))[:, None]  # one jump between frames 19 and 20
    zero = boundary_profiles(x, [20], half_width=0)  # offset 0 only: |first|, |second|, |third| difference h
    assert [zero[k].tolist() for k in ("profile_speed", "profile_acc", "profile_jerk")] == [[h], [h], [h]]
    lists = boundary_profile_lists(x, [20], "truth_")
    assert set(lists) == {"truth_profile_speed", "truth_profile_acc", "truth_profile_jerk"}
    assert lists["truth_profile_acc"] == [0.0] * 15 + [h, h] + [0.0] * 14
    assert type(lists["truth_profile_acc"][0]) is float
    assert lists["truth_profile_jerk"] == [0.0] * 15 + [h, 2 * h, h] + [0.0] * 13
    assert lists["truth_profile_speed"] == [0.0] * 15 + [h] + [0.0] * 15
    narrow = boundary_profile_lists(x, [20], half_width=10)
    assert narrow["profile_acc"] == [0.0] * 10 + [h, h] + [0.0] * 9
    # 31 frames fill the window; 30 are shorter than it: NaN lists of the window's length, not an error
    assert boundary_profile_lists(x[:31], [20])["profile_acc"][15:17] == [h, h]
    short = boundary_profile_lists(x[:30], [20])
    assert set(short) == {"profile_speed", "profile_acc", "profile_jerk"}
    assert all(len(v) == 31 and all(math.isnan(f) for f in v) for v in short.values())


def test_float32_and_unsigned_actions_are_measured_in_float64():
    # The policy's predictions are float32: converted to float64 first, they give exactly the
    # figures of their float64 copy (float32 variances differ in the 8th digit).
    x = (100.0 + 0.01 * np.cumsum(np.random.default_rng(3).normal(size=(40, 6)), axis=0)).astype(np.float32)
    for measure in (velocity_variance, acceleration_variance, mean_abs_velocity):
        assert measure(x) == measure(x.astype(np.float64))
    # uint8 positions 3, 1, 2, 0: v = -2, 1, -2 (uint8 arithmetic would wrap -2 to 254), mean -1,
    # var = (1 + 4 + 1) / 2 = 3; a = 3, -3, var = 18; mu_v = 5 / 3.
    ticks = np.array([[3], [1], [2], [0]], dtype=np.uint8)
    assert velocity_variance(ticks) == pytest.approx(3.0)
    assert acceleration_variance(ticks) == pytest.approx(18.0)
    assert mean_abs_velocity(ticks) == pytest.approx(5 / 3)


def test_sparc_is_nan_only_when_nothing_moved_not_when_the_first_bin_vanishes():
    # speed 1, 0, 1, 0 without padding (4 samples): |V| = 2, 0, 2 at 0, 1, 2 Hz (fps 4), normalised
    # 1, 0, 1. 0 Hz is not 0, so it is measured: bins 0 and 2 pass the threshold, the curve
    # (0, 1), (1/2, 0), (1, 1) has arc length 2 sqrt(1/4 + 1) = sqrt(5).
    assert sparc([1.0, 0.0, 1.0, 0.0], 4.0, padding_levels=0) == pytest.approx(-math.sqrt(5), abs=1e-12)


def test_sparc_keeps_a_bin_exactly_at_the_amplitude_threshold():
    # speed 21, 19 without padding: |V| = 40, 2 at 0 and 1 Hz (fps 2), normalised 1 and 2/40 = 0.05,
    # the threshold itself: kept (>=), arc length hypot(1, 0.95). Dropping it leaves only 0 Hz: NaN.
    assert sparc([21.0, 19.0], 2.0, padding_levels=0) == pytest.approx(-math.hypot(1.0, 0.95), abs=1e-12)
