"""SPARC and LDLJ against references worked out without the functions under test: the analytic
Fourier transform of a Gaussian speed profile, a quadrature of the minimum-jerk speed's transform,
and the minimum-jerk reach's closed-form jerk integral."""

import math

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import log_dimensionless_jerk, movement_smoothness, sparc

FPS = 30.0


def arc_length(freqs: np.ndarray, magnitude: np.ndarray) -> float:
    """Minus the arc length of (f / f_c, |V|) up to the last f whose |V| >= 0.05."""
    last = np.flatnonzero(magnitude >= 0.05)[-1]
    f, m = freqs[: last + 1] / freqs[last], magnitude[: last + 1]
    return -float(np.sum(np.hypot(np.diff(f), np.diff(m))))


def minimum_jerk_reach(amplitude: float, seconds: float, rest_frames: int = 15) -> np.ndarray:
    """[N] deg: rest, x = A (10 s^3 - 15 s^4 + 6 s^5) over `seconds` at 30 fps, rest."""
    s = np.linspace(0.0, 1.0, int(round(seconds * FPS)) + 1)
    reach = amplitude * (10 * s**3 - 15 * s**4 + 6 * s**5)
    return np.concatenate([np.zeros(rest_frames), reach, np.full(rest_frames, amplitude)])


def test_sparc_of_a_gaussian_speed_profile_matches_its_analytic_spectrum():
    # The transform of exp(-t^2 / 2 sigma^2) is a Gaussian; normalised and cut where it falls to 0.05
    # it is V(u) = 0.05^(u^2) on u = f / f_c in 0..1, whatever sigma is.
    u = np.linspace(0.0, 1.0, 200_001)
    reference = -float(np.sum(np.hypot(np.diff(u), np.diff(0.05 ** (u**2)))))
    assert reference == pytest.approx(-1.4165, abs=1e-4)
    t = np.arange(-3.0, 3.0, 1 / FPS)
    for sigma in (0.1, 0.3):
        assert sparc(np.exp(-(t**2) / (2 * sigma**2)), FPS) == pytest.approx(reference, abs=2e-3)


def test_sparc_of_a_minimum_jerk_reach_matches_a_quadrature_of_its_spectrum():
    # speed of a 1 s reach: v(s) = 30 s^2 (1 - s)^2; |V(f)| by the trapezoid rule on a fine time grid
    s = np.linspace(0.0, 1.0, 1001)
    v = 30 * s**2 * (1 - s) ** 2
    freqs = np.linspace(0.0, 10.0, 5001)
    spectrum = np.abs(np.trapezoid(v[None, :] * np.exp(-2j * np.pi * np.outer(freqs, s)), s, axis=1))
    reference = arc_length(freqs, spectrum / spectrum[0])
    # about -1.41: in the range the literature gives for a minimum-jerk profile (-1.4 .. -1.6)
    assert -1.45 < reference < -1.40
    x = minimum_jerk_reach(20.0, 1.0)
    # sampled at 30 fps, speed from first differences (a slight low-pass): within 0.02
    assert movement_smoothness(x[:, None], FPS)["sparc"] == pytest.approx(reference, abs=0.02)
    # a different amplitude or duration does not change it (the measure is dimensionless)
    assert movement_smoothness(minimum_jerk_reach(5.0, 2.0)[:, None], FPS)["sparc"] == pytest.approx(reference, abs=0.02)


def test_ldlj_of_a_minimum_jerk_reach_is_minus_ln_720_scaled_by_the_duration():
    # jerk = A / T^3 (60 - 360 s + 360 s^2): its squared integral is 720 A^2 / T^5, and the path
    # length is A. Over the reach alone DLJ = T^5 / A^2 * 720 A^2 / T^5 = 720; the rest frames make
    # the duration D = (N - 1) / fps longer, and DLJ grows by (D / T)^5.
    for amplitude, seconds in ((20.0, 2.0), (3.0, 1.0)):
        x = minimum_jerk_reach(amplitude, seconds)
        duration = (len(x) - 1) / FPS
        expected = -math.log(720.0) - 5 * math.log(duration / seconds)
        assert log_dimensionless_jerk(x[:, None], FPS) == pytest.approx(expected, abs=0.1)


def test_ldlj_of_four_hand_made_frames():
    # x = 0, 0, 0, 1 on two joints at 2 fps: path length sqrt(2) deg; jerk = 8 (third difference 1
    # times fps^3) per joint, sum of |jerk|^2 / fps = 2 * 64 / 2 = 64; D = 3 / 2 s:
    # DLJ = 1.5^5 / 2 * 64 = 243
    x = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    assert log_dimensionless_jerk(x, 2.0) == pytest.approx(-math.log(243.0), abs=1e-12)


def test_ldlj_is_not_fooled_by_a_jump_that_raises_the_peak_speed():
    # A one-frame jump raises the peak speed a lot; a peak-speed normalisation would divide most of
    # the added jerk away. The amplitude form must call the jumpy sequence rougher.
    x = minimum_jerk_reach(20.0, 2.0)
    jumpy = x.copy()
    jumpy[len(x) // 3] += 3.0
    assert log_dimensionless_jerk(jumpy[:, None], FPS) < log_dimensionless_jerk(x[:, None], FPS) - 3.0


def test_ldlj_uses_the_speed_over_all_joints():
    x = minimum_jerk_reach(10.0, 2.0)
    one = movement_smoothness((5 * x)[:, None], FPS)
    # the same path on two joints (3:4): speed and jerk are 5x the single joint's
    two = movement_smoothness(np.stack([3 * x, 4 * x], axis=1), FPS)
    assert two["ldlj"] == pytest.approx(one["ldlj"], abs=1e-9)
    assert two["sparc"] == pytest.approx(one["sparc"], abs=1e-9)
    # a second joint moving on its own adds to the speed: not the same as the first joint alone
    other = movement_smoothness(np.stack([x, np.roll(x, 20)], axis=1), FPS)
    assert other["sparc"] != pytest.approx(movement_smoothness(x[:, None], FPS)["sparc"], abs=1e-3)


@pytest.mark.parametrize("change", ["step", "tremor"])
def test_a_step_or_a_tremor_makes_both_measures_worse(change):
    x = minimum_jerk_reach(20.0, 2.0)
    smooth = movement_smoothness(x[:, None], FPS)
    rough = x.copy()
    if change == "step":
        rough[len(x) // 2 :] += 2.0  # a 2 deg jump mid-reach
    else:
        rough += 0.3 * np.sin(2 * np.pi * 8.0 * np.arange(len(x)) / FPS)  # 8 Hz, inside the 10 Hz band
    worse = movement_smoothness(rough[:, None], FPS)
    assert worse["sparc"] < smooth["sparc"] - 0.3  # more negative = less smooth
    assert worse["ldlj"] < smooth["ldlj"] - 3.0  # lower = less smooth


def test_nothing_moved_is_nan_and_too_short_is_refused():
    still = np.full((40, 3), 7.0)
    out = movement_smoothness(still, FPS)
    assert math.isnan(out["sparc"]) and math.isnan(out["ldlj"])
    with pytest.raises(ValueError, match="at least 4 frames"):
        log_dimensionless_jerk(np.zeros((3, 2)), FPS)
