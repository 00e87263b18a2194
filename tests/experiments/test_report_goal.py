"""The report's boundary sections (issue 17): the profile summary, the goal table against the
demonstrations with non-inferiority margins, and the margins' checks, on hand-made trials whose
answers are worked out by hand."""

import math

import numpy as np
import pytest

from lerobot_policy_act_smooth.experiments.boundary_report import (
    Margin,
    check_margins,
    goal_lines,
    margins_from_plan,
    summarize_profile,
    variant_profiles,
)
from lerobot_policy_act_smooth.experiments.errors import PlanError
from lerobot_policy_act_smooth.experiments.plan import plan_from_dict
from lerobot_policy_act_smooth.experiments.report import TrialRecord
from lerobot_policy_act_smooth.experiments.statistics import Estimate
from report_fixtures import (
    HELDOUT,
    T_975_DF1,
    T_975_DF2,
    TEST,
    VALIDATION,
    closed_loop_row,
    plan_raw,
    profile,
    replay_row,
    trial_spec,
    write_trial,
)

SEEDS = [1, 2]


def test_summarize_profile_by_hand():
    # 2 seeds x 3 episodes x 31 offsets. The variant: 1.2 everywhere but a hump at +5 of 1.9 (seed 1)
    # and 2.1 (seed 2). The demonstrations: 0.5, 1.0, 1.5 on the three episodes, at every offset.
    policy = np.full((2, 3, 31), 1.2)
    policy[0, :, 20], policy[1, :, 20] = 1.9, 2.1  # index 20 = offset +5
    reference = np.broadcast_to(np.array([0.5, 1.0, 1.5])[None, :, None], (2, 3, 31)).copy()
    s = summarize_profile(policy, reference)
    np.testing.assert_allclose(s.reference, np.ones(31))  # pooled over the cells, per offset
    expected_mean = np.full(31, 1.2)
    expected_mean[20] = 2.0
    np.testing.assert_allclose(s.mean, expected_mean)
    # The ratio divides by the pooled 1.0 (not cell by cell): at +5 the grid is 1.9 / 2.1 per seed.
    # Row means 1.9, 2.1 -> var 0.02, / S = 0.01; columns equal, no residual: V = 0.01, all of it
    # the seeds' -> df = S - 1 = 1.
    assert s.peak_offset == 5
    assert s.peak.mean == pytest.approx(2.0)
    assert s.peak.low == pytest.approx(2.0 - T_975_DF1 * 0.1, rel=1e-9)
    assert s.peak.high == pytest.approx(2.0 + T_975_DF1 * 0.1, rel=1e-9)
    flat = s.ratio[0]
    assert (flat.mean, flat.low, flat.high) == pytest.approx((1.2, 1.2, 1.2))
    # The band: columns 0.5, 1, 1.5 -> var 0.25, / E = 1/12; no seed spread, no residual; the
    # episodes' df E - 1 = 2.
    low, high = s.reference_band
    assert low[0] == pytest.approx(1.0 - T_975_DF2 * math.sqrt(1 / 12), rel=1e-9)
    assert high[30] == pytest.approx(1.0 + T_975_DF2 * math.sqrt(1 / 12), rel=1e-9)


def test_an_episode_too_short_for_a_profile_is_left_out():
    # episode 1's profiles are all NaN (fewer frames than the window): the rest decide
    policy = np.full((2, 2, 31), 1.2)
    reference = np.full((2, 2, 31), 0.8)
    policy[:, 1, :] = reference[:, 1, :] = np.nan
    s = summarize_profile(policy, reference)
    np.testing.assert_allclose(s.reference, np.full(31, 0.8))
    np.testing.assert_allclose(s.mean, np.full(31, 1.2))
    assert (s.peak.mean, s.peak.low, s.peak.high) == pytest.approx((1.5, 1.5, 1.5))


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_a_profile_without_any_finite_reference_is_no_summary():
    assert summarize_profile(np.ones((1, 2, 31)), np.full((1, 2, 31), np.nan)) is None


# -- the goal table on hand-made trials --------------------------------------------------------


def _variant(tmp_path, stage, *, sc_profile, cl_profile, ua=1.2, cl_ua=1.25, sparc=-1.5, ldlj=-5.75):
    """2 seeds of a stage with the same values on every episode: self-chaining against demonstrations
    with U_a 1.0, SPARC -1.625, LDLJ -6.0 and a flat profile of 1.0 (closed loop the same)."""
    recs = []
    for seed in SEEDS:
        spec = trial_spec(stage, seed, SEEDS, HELDOUT, VALIDATION, replay_modes=["self_chaining"],
                          closed_loop_episodes=3)
        sc = [replay_row(e, U_a=ua, truth_U_a=1.0, sparc=sparc, truth_sparc=-1.625, ldlj=ldlj, truth_ldlj=-6.0,
                         profile_acc=sc_profile, truth_profile_acc=profile(1.0)) for e in HELDOUT]
        cl = [closed_loop_row(e, action_U_a=cl_ua, demo_action_U_a=1.0, action_sparc=sparc, demo_action_sparc=-1.625,
                              action_ldlj=ldlj, demo_action_ldlj=-6.0, action_profile_acc=cl_profile,
                              demo_action_profile_acc=profile(1.0)) for e in range(3)]
        recs.append(TrialRecord(write_trial(tmp_path, spec, {"self_chaining": sc, "closed_loop": cl})))
    return (stage, f"{stage}/run", recs)


def _goal_rows(tmp_path):
    hump = profile(1.2, {5: 1.4})
    groups = [
        _variant(tmp_path, "base", sc_profile=profile(2.5), cl_profile=profile(2.5)),
        _variant(tmp_path, "good", sc_profile=hump, cl_profile=hump),
        # exactly at every threshold: peak 1.5x, U_a 1.5x, SPARC and LDLJ equal to the demonstrations'
        _variant(tmp_path, "edge", sc_profile=profile(1.0, {-3: 1.5}), cl_profile=hump, ua=1.5, cl_ua=1.5,
                 sparc=-1.625, ldlj=-6.0),
        _variant(tmp_path, "humped", sc_profile=profile(1.2, {7: 2.0}), cl_profile=hump),
        _variant(tmp_path, "wide_mae", sc_profile=hump, cl_profile=hump),
        _variant(tmp_path, "sparc_worse", sc_profile=hump, cl_profile=hump, sparc=-1.75),
        _variant(tmp_path, "ua_high", sc_profile=hump, cl_profile=hump, cl_ua=1.6),
    ]
    inside = {"gt MAE": Estimate(0.05, -0.1, 0.2), "sc MAE": Estimate(0.05, -0.1, 0.2),
              "CL success": Estimate(0.0, -0.03, 0.03)}
    diffs = {key: dict(inside) for _, key, _ in groups if key != "base/run"}
    diffs["wide_mae/run"]["gt MAE"] = Estimate(0.05, -0.3, 0.4)  # crosses the +0.25 margin: not shown
    labels = {key: stage for stage, key, _ in groups}
    profiles = variant_profiles(groups, TEST)
    lines = goal_lines(groups, labels, TEST, profiles, diffs, "base/run", margins_from_plan({}))
    return {ln.split(" | ")[0][2:]: ln for ln in lines if ln.startswith("| ") and not ln.startswith("| run")}, lines


def test_goal_rows_met_and_not_met(tmp_path):
    rows, lines = _goal_rows(tmp_path)
    header = next(ln for ln in lines if ln.startswith("| run"))
    assert header.endswith("| gt MAE vs baseline (margin +0.25) | sc MAE vs baseline (margin +0.25) "
                           "| CL success vs baseline (margin -0.05) | goal |")
    # peak 1.4x at +5; U_a 1.2 / 1.0 and 1.25 / 1.0; SPARC -1.5 - (-1.625) = +0.125, LDLJ -5.75 - (-6) = +0.25
    assert rows["good"] == ("| good | 1.4x @ +5 | 1.2x | +0.12, +0.25 | 1.4x @ +5 | 1.25x | +0.12, +0.25 "
                            "| +0.05 [-0.1, +0.2]: non-inferior | +0.05 [-0.1, +0.2]: non-inferior "
                            "| +0 [-0.03, +0.03]: non-inferior | met |")
    assert rows["edge"].startswith("| edge | 1.5x @ -3 | 1.5x | +0, +0 |") and rows["edge"].endswith("| met |")
    assert rows["humped"].startswith("| humped | 2x @ +7 |") and rows["humped"].endswith("| not met |")
    assert "| +0.05 [-0.3, +0.4]: not shown |" in rows["wide_mae"] and rows["wide_mae"].endswith("| not met |")
    assert rows["sparc_worse"].startswith("| sparc_worse | 1.4x @ +5 | 1.2x | -0.12, +0.25 |")
    assert rows["sparc_worse"].endswith("| not met |")
    assert "| 1.6x |" in rows["ua_high"] and rows["ua_high"].endswith("| not met |")
    assert rows["base"].startswith("| base | 2.5x @ ")
    assert rows["base"].endswith("| (baseline) | (baseline) | (baseline) | not met |")


def test_a_missing_difference_is_not_met(tmp_path):
    hump = profile(1.2, {5: 1.4})
    groups = [_variant(tmp_path, "good", sc_profile=hump, cl_profile=hump)]
    profiles = variant_profiles(groups, TEST)
    margins = [Margin("gt MAE", 0.25, True)]
    met = goal_lines(groups, {"good/run": "good"}, TEST, profiles, {"good/run": {"gt MAE": Estimate(0.0, -0.1, 0.1)}},
                     None, margins)
    missing = goal_lines(groups, {"good/run": "good"}, TEST, profiles, {}, None, margins)
    assert met[6].endswith("| +0 [-0.1, +0.1]: non-inferior | met |")
    assert missing[6].endswith("| - | not met |")
    assert goal_lines(groups, {"good/run": "good"}, TEST, {}, {}, None, margins) == []  # no profiles: no goal


def test_check_margins_names_the_problem_and_the_fix():
    assert check_margins({"gt MAE": 0.25, "sc MAE": 0.5, "CL success": -0.05}) == []
    (wrong_sign,) = check_margins({"gt MAE": -0.25})
    assert "lower is better for gt MAE" in wrong_sign and "must be > 0, e.g. 0.25" in wrong_sign
    (wrong_sign,) = check_margins({"CL success": 0.05})
    assert "higher is better for CL success" in wrong_sign and "must be < 0, e.g. -0.05" in wrong_sign
    (unknown,) = check_margins({"MAE": 0.25})
    assert unknown == "[evaluation] noninferiority: unknown metric 'MAE' (use gt MAE, sc MAE, CL success)"
    assert "must be a number" in check_margins({"gt MAE": "0.25"})[0]
    assert "must be a number" in check_margins({"gt MAE": True})[0]
    assert len(check_margins({"gt MAE": 0.0, "CL success": 0.0})) == 2
    assert "must be a table" in check_margins([0.25])[0]


def test_the_plan_refuses_a_margin_of_the_wrong_sign_and_reads_a_good_one():
    raw = plan_raw({"a": {"steps": 1}}, {"noninferiority": {"sc MAE": -0.25}}, [1], 2, 0)
    with pytest.raises(PlanError, match=r"noninferiority.sc MAE = -0.25: lower is better"):
        plan_from_dict(raw)
    raw["evaluation"]["noninferiority"] = {"sc MAE": 0.5}
    plan = plan_from_dict(raw)
    assert margins_from_plan(plan.evaluation) == [Margin("sc MAE", 0.5, True)]
    assert margins_from_plan({}) == [Margin("gt MAE", 0.25, True), Margin("sc MAE", 0.25, True),
                                     Margin("CL success", -0.05, False)]
