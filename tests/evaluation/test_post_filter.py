"""The EMA post-filter with velocity clip against sequences worked out by hand."""

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.post_filter import EmaVelocityClip, ema_velocity_clip


def test_step_input_without_clip_is_a_geometric_approach():
    # y_t = y_{t-1} + 0.25 (8 - y_{t-1}) from y_0 = 0: 2, 3.5, 4.625 (8 (1 - 0.75^t)).
    y = ema_velocity_clip(np.array([[0.0], [8.0], [8.0], [8.0]]), alpha=0.25, max_delta=None)
    assert y[:, 0].tolist() == [0.0, 2.0, 3.5, 4.625]


def test_velocity_clip_limits_each_joint_per_frame():
    # Joint 0 jumps by 8: the EMA step 2.0 is clipped to 1.25, then 0.25 * (8 - 1.25) = 1.6875
    # is clipped again. Joint 1 moves by 2: its steps 0.5, 0.375 stay under the clip.
    x = np.array([[0.0, 10.0], [8.0, 12.0], [8.0, 12.0]])
    y = ema_velocity_clip(x, alpha=0.25, max_delta=1.25)
    np.testing.assert_allclose(y, [[0.0, 10.0], [1.25, 10.5], [2.5, 10.875]])


def test_alpha_one_without_clip_passes_commands_through():
    x = np.random.default_rng(0).normal(size=(20, 6))
    np.testing.assert_allclose(ema_velocity_clip(x, alpha=1.0, max_delta=None), x, rtol=0, atol=1e-12)


def test_reset_starts_the_next_episode_from_its_own_first_command():
    filt = EmaVelocityClip(alpha=0.5, max_delta=None)
    filt(np.array([0.0])), filt(np.array([4.0]))
    filt.reset()
    assert filt(np.array([100.0])).tolist() == [100.0]


@pytest.mark.parametrize(("alpha", "max_delta"), [(0.0, 1.0), (1.5, 1.0), (-0.2, 1.0), (0.25, 0.0), (0.25, -1.0),
                                                  (0.25, float("nan"))])
def test_bad_filter_settings_are_refused(alpha, max_delta):
    with pytest.raises(ValueError, match="alpha must be in|velocity clip must be"):
        EmaVelocityClip(alpha, max_delta)
