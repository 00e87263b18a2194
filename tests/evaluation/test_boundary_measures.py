"""The boundary measures of issue 17 (profile, transition spike, replan discontinuity) against
hand-computed values, and the two constructions of the issue: a join head's correction, which the
+-2 spike cannot see, and a blending crossfade's two kinks."""

import math

import numpy as np
import pytest
import torch

from lerobot_policy_act_smooth.evaluation.metrics import (
    PROFILE_HALF_WIDTH,
    TRANSITION_AFTER,
    boundary_acceleration_mask,
    boundary_profiles,
    boundary_spike,
    episode_metrics,
    movement_smoothness,
    profile_peak_ratio,
    replan_discontinuity,
    replan_summary,
    smoothness_metrics,
    transition_spike,
)
from lerobot_policy_act_smooth.evaluation.replay import Stitcher
from lerobot_policy_act_smooth.prefix_join import join_prefix, join_weights


def from_accelerations(acc_by_label: dict[int, float], num_frames: int, default: float) -> np.ndarray:
    """[T, 1] positions whose second difference labelled f (x[f] - 2x[f-1] + x[f-2]) is
    acc_by_label.get(f, default), with x[0] = x[1] = 0."""
    x = np.zeros(num_frames)
    for f in range(2, num_frames):
        x[f] = 2 * x[f - 1] - x[f - 2] + acc_by_label.get(f, default)
    return x[:, None]


def test_the_asymmetric_mask_covers_b_minus_window_to_b_plus_after():
    assert TRANSITION_AFTER == 12 and PROFILE_HALF_WIDTH == 15
    # labels 18..32 are rows 16..30
    assert boundary_acceleration_mask(40, [20], 2, 12).nonzero()[0].tolist() == list(range(16, 31))
    assert boundary_acceleration_mask(40, [20], 2).nonzero()[0].tolist() == [16, 17, 18, 19, 20]  # +-2
    assert boundary_acceleration_mask(30, [20], 2, 12).nonzero()[0].tolist() == list(range(16, 28))  # clipped at T-3


def test_a_bump_at_b_plus_5_is_other_for_the_plan_spike_and_boundary_for_the_transition_spike():
    # |a| = 1 at every label 2..39, except 6 at label 25 = b + 5.
    b, T = 20, 40
    x = from_accelerations({25: 6.0}, T, 1.0)
    plan = boundary_spike(x, [b])  # window labels 18..22: five 1s; the other 33 labels: 32 ones and a 6
    assert plan["boundary_mean"] == pytest.approx(1.0)
    assert plan["other_mean"] == pytest.approx(38 / 33)
    assert plan["spike"] == pytest.approx(33 / 38)  # below 1: the bump looks like "inside"
    wide = transition_spike(x, [b])  # labels 18..32: fourteen 1s and the 6; the other 23 labels are 1
    assert wide["boundary_mean"] == pytest.approx(20 / 15)
    assert wide["other_mean"] == pytest.approx(1.0)
    assert wide["spike"] == pytest.approx(4 / 3)
    assert smoothness_metrics(x, [b])["spike_transition"] == pytest.approx(4 / 3)


def test_profile_of_one_jump_shows_at_offsets_0_and_1():
    # joint 0 jumps by h between x[19] and x[20]; joint 1 is still: the profile is half of joint 0's.
    h, b, T = 3.0, 20, 40
    x = np.stack([h * (np.arange(T) >= b), np.zeros(T)], axis=1)
    prof = boundary_profiles(x, [b])
    acc, jerk = prof["profile_acc"], prof["profile_jerk"]
    assert acc.shape == jerk.shape == (31,)
    expected_acc = np.zeros(31)
    expected_acc[15] = expected_acc[16] = h / 2  # labels b (x[b]-2x[b-1]+x[b-2] = h) and b+1 (-h)
    np.testing.assert_array_equal(acc, expected_acc)
    expected_jerk = np.zeros(31)
    expected_jerk[15:18] = [h / 2, 2 * h / 2, h / 2]  # x[f]-3x[f-1]+3x[f-2]-x[f-3]: h, -2h, h at f = b, b+1, b+2
    np.testing.assert_array_equal(jerk, expected_jerk)
    expected_speed = np.zeros(31)
    expected_speed[15] = h / 2  # x[b] - x[b-1] = h, labelled b
    np.testing.assert_array_equal(prof["profile_speed"], expected_speed)


def test_speed_profile_shows_a_stop_at_every_switch_that_the_acceleration_hardly_sees():
    # A ramp at 1 deg/frame that eases to a stop and back over 10 frames around each switch
    # (a cosine dip of the speed): gentle in acceleration, but the speed at the switch is ~0.
    T, switches = 120, [30, 60, 90]
    speed = np.ones(T)
    for b in switches:
        k = np.arange(b - 5, b + 5)
        speed[k] = 0.5 - 0.5 * np.cos(2 * np.pi * (k - b) / 10)
    x = np.cumsum(speed)[:, None]
    prof = boundary_profiles(x, switches)
    assert prof["profile_speed"][15] == pytest.approx(0.0, abs=1e-12)  # speed[b] = 0 at every switch
    assert prof["profile_speed"][0] == pytest.approx(1.0)  # 15 frames away: full speed
    assert np.nanmax(prof["profile_acc"]) < 0.35  # |a| stays below a third of a deg/frame^2


def test_profile_averages_only_the_boundaries_whose_label_exists():
    h, T = 2.0, 40
    x = (h * (np.arange(T) >= 10))[:, None]  # jump at 10; boundaries 10 and 25
    acc = boundary_profiles(x, [10, 25])["profile_acc"]
    # offset -15: b=10 -> label -5 (none), b=25 -> label 10 (h): mean over one boundary = h
    assert acc[0] == pytest.approx(h) and acc[1] == pytest.approx(h)  # offset -14: label 11 of b=25
    assert acc[15] == pytest.approx(h / 2) and acc[16] == pytest.approx(h / 2)  # b=10: h, b=25: 0
    assert acc[7] == 0.0  # offset -8: label 2 of b=10 and 17 of b=25, both 0
    assert acc[30] == 0.0  # offset +15: label 25 of b=10 (0); label 40 of b=25 does not exist


def test_profile_is_nan_where_no_boundary_reaches_and_without_boundaries():
    x = np.random.default_rng(0).normal(size=(31, 2))
    prof = boundary_profiles(x, [3])  # labels -12..18; second differences exist from label 2, third from 3
    assert np.isnan(prof["profile_acc"][:14]).all() and np.isfinite(prof["profile_acc"][14:]).all()
    assert np.isnan(prof["profile_jerk"][:15]).all() and np.isfinite(prof["profile_jerk"][15:]).all()
    empty = boundary_profiles(x, [])
    assert np.isnan(empty["profile_acc"]).all() and np.isnan(empty["profile_jerk"]).all()


def test_a_profile_window_longer_than_the_episode_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"31 frames is longer than the episode \(30 frames\); lower half_width"):
        boundary_profiles(np.zeros((30, 2)), [10])
    assert boundary_profiles(np.zeros((30, 2)), [10], half_width=14)["profile_acc"].shape == (29,)


def test_profile_peak_ratio_skips_offsets_without_a_positive_finite_reference():
    profile = [1.0, 2.0, math.nan, 4.0, 5.0]
    reference = [1.0, 1.0, 1.0, 0.0, 2.0]  # ratios 1, 2, -, -, 2.5
    assert profile_peak_ratio(profile, reference) == 2.5
    assert math.isnan(profile_peak_ratio([1.0, 2.0], [0.0, math.nan]))
    with pytest.raises(ValueError, match="same shape"):
        profile_peak_ratio([1.0, 2.0], [1.0])


def test_replan_discontinuity_of_two_hand_made_chunks():
    old = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])  # frames 10..13
    new = np.array([[1.5, 1.0], [2.0, 4.0], [3.0, 3.0], [9.0, 9.0]])  # frames 11..14
    # shared frames 11..13: |new - old| = [0.5, 0], [0, 2], [0, 0]; frame 14 is the new chunk's alone
    assert replan_discontinuity(old, 10, new, 11) == 2.0
    moved_first = new.copy()
    moved_first[0, 0] = 9.0  # frame 11, the first shared one: |9 - 1|
    assert replan_discontinuity(old, 10, moved_first, 11) == 8.0
    assert math.isnan(replan_discontinuity(old, 0, new, 4))  # back to back: no shared frame
    with pytest.raises(ValueError, match="joints"):
        replan_discontinuity(old, 0, new[:, :1], 1)
    summary = replan_summary([old, new, old], [10, 11, 30])  # the second pair shares nothing
    assert summary == {"replan_mean": 2.0, "replan_max": 2.0}
    shifted = old + np.array([0.0, 1.0])  # joint 1 one degree higher on every shared frame
    summary = replan_summary([old, new, shifted], [10, 11, 12])
    # pair 2: new rows 1..3 (frames 12..14) against shifted rows 0..2: [2-0, 4-1], [3-1, 3-2], [9-2, 9-3]
    assert summary["replan_max"] == 7.0 and summary["replan_mean"] == pytest.approx((2.0 + 7.0) / 2)
    assert all(math.isnan(v) for v in replan_summary([old, new], [0, 4]).values())


def test_smoothness_metrics_carry_the_new_scalars_for_every_prefix():
    x = np.cumsum(np.cumsum(np.random.default_rng(2).normal(size=(90, 3)), axis=0), axis=0)
    row = smoothness_metrics(x, [30, 60])
    assert set(row) == {"U_v", "U_a", "U_a_inside", "U_a_boundary", "mu_v", "spike", "spike_boundary_mean",
                        "spike_other_mean", "spike_transition", "sparc", "ldlj"}
    assert row["spike_transition"] == transition_spike(x, [30, 60])["spike"]
    # a tremor of period 5 frames is 6 Hz at fps 30, inside SPARC's 10 Hz band, and 12 Hz at fps 60, outside it
    tremor = demonstration()[:90] + 0.5 * np.sin(2 * np.pi * np.arange(90) / 5)[:, None]
    at_60 = smoothness_metrics(tremor, [30, 60], fps=60.0)
    assert at_60["sparc"] == movement_smoothness(tremor, 60.0)["sparc"]
    assert smoothness_metrics(tremor, [30, 60], fps=30.0)["sparc"] < at_60["sparc"] - 0.3
    both = episode_metrics(x + 0.1, x, [30, 60], fps=60.0)
    assert both["truth_sparc"] == movement_smoothness(x, 60.0)["sparc"] and "truth_spike_transition" in both


# ---------------------------------------------------------------- the constructions of issue 17

T, JOINTS, CHUNK, ADVANCE, HORIZON = 300, 6, 30, 20, 10


def demonstration() -> np.ndarray:
    """[300, 6] deg: slow sines (periods 8..13 s at 30 fps), a smooth demonstration."""
    t = np.arange(T)[:, None] / 30.0
    amplitude = np.array([20.0, 15.0, 25.0, 10.0, 12.0, 18.0])
    period = np.array([8.0, 10.0, 12.0, 9.0, 11.0, 13.0])
    phase = np.random.default_rng(0).uniform(0.0, 2 * np.pi, JOINTS)
    return amplitude * np.sin(2 * np.pi * t / period + phase)


def offset_chunks(offset_sd: float, join: bool):
    """Chunks of 30 frames = the demonstration + one constant offset per chunk, each executed for 20
    frames (the next chunk overwrites the rest). With ``join`` every chunk after the first goes
    through the real prefix join (H = 10) on the two frames stitched before it. Returns the stitched
    [N, 6] sequence, the chunks as executed, their start frames and the boundaries."""
    demo = demonstration()
    rng = np.random.default_rng(1)
    starts = list(range(0, T - CHUNK + 1, ADVANCE))
    stitched = np.full((T, JOINTS), np.nan)
    weights = join_weights(HORIZON, CHUNK).double()
    chunks = []
    for i, p in enumerate(starts):
        chunk = demo[p : p + CHUNK] + rng.normal(0.0, offset_sd, JOINTS)
        if join and i > 0:
            prefix = torch.tensor(stitched[None, p - 2 : p])  # slots a_{-1}, a_0 (K = 1, d = 1)
            joined = join_prefix(torch.tensor(chunk[None, None]), prefix, torch.ones(1, 2, dtype=torch.bool), [1], 1, weights)
            chunk = joined[0, 0].numpy()
        stitched[p : p + CHUNK] = chunk
        chunks.append(chunk)
    stop = starts[-1] + CHUNK
    return stitched[:stop], chunks, starts, starts[1:]


def measures(offset_sd: float, join: bool) -> dict:
    x, chunks, starts, boundaries = offset_chunks(offset_sd, join)
    demo = demonstration()[: len(x)]
    row = smoothness_metrics(x, boundaries)
    peak = profile_peak_ratio(boundary_profiles(x, boundaries)["profile_acc"],
                              boundary_profiles(demo, boundaries)["profile_acc"])
    return {"spike": row["spike"], "spike_transition": row["spike_transition"], "peak": peak,
            **replan_summary(chunks, starts)}


def test_the_plan_spike_cannot_see_a_join_heads_correction_but_the_new_measures_do():
    plain = {sd: measures(sd, join=False) for sd in (0.5, 2.0)}
    joined = {sd: measures(sd, join=True) for sd in (0.0, 0.5, 2.0)}
    # without the join every measure flags the offsets
    assert plain[0.5]["spike"] > 5 and plain[2.0]["spike"] > plain[0.5]["spike"]
    # with it the +-2 spike stays below the goal's 1.2 whatever the offsets ...
    assert all(m["spike"] < 1.2 for m in joined.values())
    # ... while the profile peak, the transition spike and the replan discontinuity grow with them
    for key in ("peak", "spike_transition", "replan_max", "replan_mean"):
        assert joined[0.5][key] > 1.8 * joined[0.0][key], key
        assert joined[2.0][key] > 2.5 * joined[0.5][key], key
    assert joined[2.0]["peak"] > 10 and joined[2.0]["spike_transition"] > 5
    # the join does not change how much the plan moves: its first frames follow the old chunk, the
    # rest is the new offset, so the largest |new - old| is the largest offset change either way
    assert joined[2.0]["replan_max"] == pytest.approx(plain[2.0]["replan_max"], rel=0.05)


def test_a_blended_trajectory_shows_both_kinks_and_both_count_as_boundaries():
    demo = demonstration()
    rng = np.random.default_rng(3)
    starts = list(range(0, T - CHUNK + 1, ADVANCE))
    stitcher = Stitcher(T, JOINTS, blend=True)
    for i, p in enumerate(starts):
        stitcher.place(i, p, demo[p : p + CHUNK] + rng.normal(0.0, 1.0, JOINTS))
    x = stitcher.values[: starts[-1] + CHUNK]
    switches = starts[1:]
    shared = CHUNK - ADVANCE  # L = 10 crossfaded frames p .. p+L-1; p+L is the new chunk alone
    acc = boundary_profiles(x, switches)["profile_acc"]
    offsets = np.arange(-15, 16)
    # the old chunk's weight bends at label p (the start) and at p+L+1 (it reaches 0 at frame p+L)
    kinks = {0, shared + 1, shared + 1 - ADVANCE}  # the last: the previous crossfade's end
    calm = np.median(acc)
    for o in kinks:
        assert acc[offsets == o][0] > 10 * calm, o
    assert all(acc[offsets == o][0] < 2 * calm for o in offsets if o not in kinks)
    one_kink = boundary_spike(x, switches)["spike"]
    both_kinks = boundary_spike(x, sorted(switches + [p + shared for p in switches]))["spike"]
    assert both_kinks > 1.5 * one_kink
