"""The plan's smoothness metrics against arrays whose values are worked out by hand."""

import math

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import (
    acceleration_variance,
    aggregate,
    boundary_acceleration_mask,
    boundary_spike,
    episode_metrics,
    mean_abs_error,
    mean_abs_velocity,
    smoothness_metrics,
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
