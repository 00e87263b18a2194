"""The report's numbers and verdicts on hand-made seeds x episodes grids (issue 17 item 8): the grid
read from the trial files, the differences from the baseline and their direction, seeds paired by
shared checkpoints, the convergence and U_a-split sections, and a whole report."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_act_smooth.experiments.plan import plan_from_dict
from lerobot_policy_act_smooth.experiments.report import (
    TrialRecord,
    convergence_lines,
    interval_section,
    shared_checkpoint_order,
    u_a_split_lines,
    write_report,
)
from lerobot_policy_act_smooth.experiments.results_table import (
    differences,
    episode_rows,
    fmt_difference,
    metric_grid,
    verdict_sentence,
)
from lerobot_policy_act_smooth.experiments.statistics import difference_interval, verdict
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
    write_plan_json,
    write_trial,
)



def cells(line: str) -> list[str]:
    """The cells of a markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


# -- metric_grid ---------------------------------------------------------------------------------


def test_metric_grid_is_seeds_by_the_asked_episodes_in_their_order():
    seed_a = [{"episode": 5, "U_a": 9.0}, {"episode": 3, "U_a": 1.0}, {"episode": 4, "U_a": 2.0}]
    seed_b = [{"episode": 4, "U_a": 20.0}, {"episode": 3, "U_a": 10.0}, {"episode": 5, "U_a": 90.0}]
    np.testing.assert_array_equal(metric_grid([seed_a, seed_b], "U_a", [3, 4]), [[1.0, 2.0], [10.0, 20.0]])
    np.testing.assert_array_equal(metric_grid([seed_a, seed_b], "U_a", [4, 3]), [[2.0, 1.0], [20.0, 10.0]])
    # None: every episode, in the first seed's order
    np.testing.assert_array_equal(metric_grid([seed_a, seed_b], "U_a", None), [[9.0, 1.0, 2.0], [90.0, 10.0, 20.0]])
    assert metric_grid([seed_a, seed_b[:2]], "U_a", [3, 5]) is None  # seed b lacks episode 5
    assert metric_grid([seed_a, None], "U_a", [3]) is None  # seed b has no such evaluation
    assert metric_grid([seed_a, seed_b], "mae", [3]) is None  # no seed has the key
    assert metric_grid([], "U_a", [3]) is None
    assert metric_grid([seed_a], "U_a", []) is None
    with_none = [{"episode": 3, "spike": None}, {"episode": 4, "spike": 1.5}]
    grid = metric_grid([with_none], "spike", [3, 4])
    assert math.isnan(grid[0, 0]) and grid[0, 1] == 1.5


# -- differences and their sentence ----------------------------------------------------------------

# Independently trained 2 seeds x 3 episodes, additive (no residual). Baseline rows 2, 4 and
# variant rows 7/6, 19/6: var 2 each, / S = 1 + 1; episode means of variant - baseline -1, -1,
# -0.5: var 1/12, / E = 1/36. V = 73/36, the seeds 72/73 of it, so df = Satterthwaite over the
# two seed terms = (1 + 1)^2 / (1 + 1) = 2.
MAE_BASE = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
MAE_VARIANT = np.array([[0.0, 1.0, 2.5], [2.0, 3.0, 4.5]])
# Seeds 0.25 apart, the variant 1 lower on every cell: seed terms 0.015625 each, no episode or
# residual term: V = 1/32, df 2.
UA_BASE = np.array([[1.0, 2.0, 3.0], [1.25, 2.25, 3.25]])
UA_VARIANT = UA_BASE - 1.0
SUCCESS_BASE = np.ones((2, 3))
SUCCESS_VARIANT = np.full((2, 3), 0.5)


def _hand_grids():
    return ({"gt MAE": MAE_VARIANT, "sc U_a": UA_VARIANT, "CL success": SUCCESS_VARIANT},
            {"gt MAE": MAE_BASE, "sc U_a": UA_BASE, "CL success": SUCCESS_BASE})


def test_differences_are_variant_minus_baseline_with_the_hand_computed_interval():
    variant, baseline = _hand_grids()
    diffs = differences(variant, baseline)
    mae = diffs["gt MAE"]
    half = T_975_DF2 * math.sqrt(73 / 36)
    assert mae.mean == pytest.approx(-5 / 6, rel=1e-12)
    assert mae.df == pytest.approx(2.0, rel=1e-12)
    assert mae.low == pytest.approx(-5 / 6 - half, rel=1e-9) and mae.high == pytest.approx(-5 / 6 + half, rel=1e-9)
    ua = diffs["sc U_a"]
    half = T_975_DF2 * math.sqrt(1 / 32)
    assert ua.mean == pytest.approx(-1.0, rel=1e-12)
    assert (ua.low, ua.high) == pytest.approx((-1.0 - half, -1.0 + half), rel=1e-9)
    success = diffs["CL success"]
    assert (success.mean, success.low, success.high) == (-0.5, -0.5, -0.5)
    assert verdict(ua, lower_is_better=True) == "better"
    assert verdict(mae, lower_is_better=True) == "not distinguishable"  # the interval holds 0
    assert verdict(success, lower_is_better=False) == "worse"  # higher is better, and it is lower


def test_verdict_sentence_reads_direction_and_interval_of_each_headline_metric():
    variant, baseline = _hand_grids()
    sentence = verdict_sentence("recipe", differences(variant, baseline), "baseline")
    # in the order of HEADLINE; -0.83 - 6.13 = -6.96, -0.83 + 6.13 = +5.29; -1 -+ 0.76
    assert sentence == ("recipe vs baseline: better on sc U_a (-1 [-1.8, -0.24]); not distinguishable on "
                        "gt MAE (-0.83 [-7, +5.3]); worse on CL success (-0.5 [-0.5, -0.5]).")
    swapped = verdict_sentence("baseline", differences(baseline, variant), "recipe")
    assert "worse on sc U_a (+1 [+0.24, +1.8])" in swapped and "better on CL success (+0.5" in swapped
    assert verdict_sentence("x", {}, "baseline") == "x: no metric to compare with baseline."


def test_differences_need_the_same_episodes_and_for_paired_seeds_the_same_seeds():
    variant, baseline = _hand_grids()
    baseline["gt MAE"] = MAE_BASE[:, :2]
    del baseline["CL success"]
    diffs = differences(variant, baseline)
    assert diffs["gt MAE"] is None and diffs["CL success"] is None and diffs["sc U_a"] is not None
    assert differences({"sc U_a": UA_VARIANT[:1]}, {"sc U_a": UA_BASE}, paired_seeds=True)["sc U_a"] is None


# -- seeds paired by shared checkpoints --------------------------------------------------------------

SEEDS3 = [1, 2, 3]
SEED_EFFECT = {1: 0.0, 2: 3.0, 3: 6.0}  # large: pairing or not decides the verdict
NOISE = {1: [0.1, 0.0, -0.1], 2: [0.1, 0.1, 0.1], 3: [0.0, -0.1, 0.0]}


def _baseline_mae(seed):
    return [SEED_EFFECT[seed] + k for k in (1.0, 2.0, 3.0)]


def _shared_trials(tmp_path):
    """Baseline (3 seeds), blending on its checkpoints, a fine-tune of it and an independent stage,
    gt-prefix MAE on the test episodes; blending is 0.3 lower than its own seed's baseline, plus noise."""
    out = {}
    for stage in ("baseline", "indep"):
        out[stage] = []
        for seed in SEEDS3:
            rows = [replay_row(10, mae=50.0)] + [replay_row(e, mae=m) for e, m in zip(TEST, _baseline_mae(seed))]
            spec = trial_spec(stage, seed, SEEDS3, HELDOUT, VALIDATION, replay_modes=["gt_prefix"])
            out[stage].append(TrialRecord(write_trial(tmp_path, spec, {"gt_prefix": rows})))
    base_dirs = {seed: r.dir for seed, r in zip(SEEDS3, out["baseline"])}
    for stage, link in (("blend", "evaluate_checkpoint_of"), ("tune", "init_checkpoint_of")):
        out[stage] = []
        for seed in (3, 1, 2):  # listed in another order than the baseline's
            rows = [replay_row(10, mae=50.0)] + [replay_row(e, mae=m - 0.3 + n) for e, m, n in
                                                 zip(TEST, _baseline_mae(seed), NOISE[seed])]
            spec = trial_spec(stage, seed, SEEDS3, HELDOUT, VALIDATION, replay_modes=["gt_prefix"],
                              label="blending" if stage == "blend" else "fine-tune", **{link: base_dirs[seed]})
            out[stage].append(TrialRecord(write_trial(tmp_path, spec, {"gt_prefix": rows})))
    return out


def test_shared_checkpoint_order_pairs_each_trial_with_its_own_baseline_seed(tmp_path):
    trials = _shared_trials(tmp_path)
    base = trials["baseline"]
    for stage in ("blend", "tune"):
        order = shared_checkpoint_order(trials[stage], base)
        assert [r.spec["seed"] for r in order] == [3, 1, 2]  # row s of the variant's grid: its own seed
        assert [r.dir for r in order] == [base[2].dir, base[0].dir, base[1].dir]
    assert shared_checkpoint_order(trials["indep"], base) is None  # trained independently
    # on the checkpoints of another stage, whose trial folders have the baseline's names
    on_indep = [TrialRecord(write_trial(tmp_path, trial_spec("blend_indep", seed, SEEDS3, HELDOUT, VALIDATION,
                                                             evaluate_checkpoint_of=r.dir), {}))
                for seed, r in zip(SEEDS3, trials["indep"])]
    assert shared_checkpoint_order(on_indep, base) is None
    # two trials on one checkpoint, or one on a checkpoint that is not the baseline's: not paired
    assert shared_checkpoint_order([trials["blend"][0], trials["blend"][0]], base) is None
    assert shared_checkpoint_order(trials["blend"], base[:2]) is None
    assert shared_checkpoint_order([], base) is None


def test_a_copied_output_dir_keeps_its_pairing(tmp_path):
    # trial.json holds the absolute path of the checkpoint's trial; a run copied off the cluster
    # (or moved) still evaluates the same baseline trials
    _shared_trials(tmp_path / "cluster")
    shutil.move(tmp_path / "cluster", tmp_path / "laptop")
    load = lambda stage: [TrialRecord(d) for d in sorted((tmp_path / "laptop" / stage).iterdir())]  # noqa: E731
    base, blend = load("baseline"), load("blend")
    assert not Path(blend[0].spec["evaluate_checkpoint_of"]).exists()
    assert [r.dir for r in shared_checkpoint_order(blend, base)] == [r.dir for r in base]
    assert shared_checkpoint_order(load("indep"), base) is None


def test_the_report_pairs_seeds_for_a_stage_on_the_baselines_checkpoints(tmp_path):
    trials = _shared_trials(tmp_path)
    del trials["tune"]
    raw = plan_raw({"baseline": {"label": "baseline", "steps": 8}, "indep": {"label": "indep", "steps": 8},
                    "blend": {"label": "blending", "evaluate_checkpoint_of": "baseline"}},
                   {"replay_modes": ["gt_prefix"], "closed_loop": False, "baseline": "baseline"}, SEEDS3, 4, 1)
    plan = plan_from_dict(raw)
    lines = interval_section(trials, plan, {"baseline": "baseline/run"})
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| run | gt U_a"))  # the differences' table
    column = cells(lines[start]).index("gt MAE")
    blend_row = next(ln for ln in lines[start:] if ln.startswith("| blending | "))
    indep_row = next(ln for ln in lines[start:] if ln.startswith("| indep | "))

    def grid(recs):
        return metric_grid([episode_rows(r.dir, r.done, "gt_prefix") for r in recs], "mae", TEST)

    blend = grid(trials["blend"])  # seeds 3, 1, 2
    base = trials["baseline"]
    paired = difference_interval(blend, grid([base[2], base[0], base[1]]), paired_seeds=True)
    unpaired = difference_interval(blend, grid(base))
    assert cells(blend_row)[column] == fmt_difference(paired)
    assert fmt_difference(paired) != fmt_difference(unpaired)
    assert paired.mean == pytest.approx(-0.3 + 0.2 / 9)  # the noise sums to 0.2 over 9 cells
    assert cells(indep_row)[column] == fmt_difference(difference_interval(grid(trials["indep"]), grid(base)))
    assert "(and on seeds for blending: they evaluate or continue the baseline's own checkpoints)" in "\n".join(lines)
    sentence = next(ln for ln in lines if ln.startswith("- blending vs baseline: "))
    assert f"better on gt MAE ({fmt_difference(paired)})" in sentence
    assert verdict(unpaired, lower_is_better=True) == "not distinguishable"


# -- convergence and the U_a split -------------------------------------------------------------------


def _convergence_plan():
    raw = plan_raw({"baseline": {"label": "baseline", "steps": 8}, "baseline_half": {"steps": 4, "in_results": False}},
                   {"baseline": "baseline", "convergence_reference": "baseline_half"}, [1, 2, 3], 4, 1)
    return plan_from_dict(raw)


def _half_trial(tmp_path):
    rows = [replay_row(10, mae=100.0)] + [replay_row(e, mae=2.0) for e in TEST]
    spec = trial_spec("baseline_half", 1, [1], HELDOUT, VALIDATION, replay_modes=["gt_prefix"])
    return {"baseline_half": [TrialRecord(write_trial(tmp_path, spec, {"gt_prefix": rows}))]}


def test_convergence_criteria_met_at_their_thresholds(tmp_path):
    success = np.ones((3, 20))
    success[:, :2] = 0.0  # 18 of 20 per seed: 90%, the criterion itself
    # U_a 0.75 / 0.25: 3x, the criterion itself
    g = {"CL success": success, "gt U_a": np.full((3, 3), 0.75), "gt MAE": np.full((3, 3), 1.96)}
    lines = convergence_lines(_convergence_plan(), _half_trial(tmp_path), g, np.full((1, 3), 0.25))
    assert lines == [
        "### Is the baseline converged?", "",
        "- closed-loop success 90% over 20 episodes x 3 seeds (criterion >= 90% over >= 20 episodes): met",
        "- gt-prefix U_a 3.00x the demonstrations' on the same episodes (criterion <= 3x): met",
        # 1 - 1.96 / 2 = 2%; the validation episode's 100 is not part of the reference
        "- gt-prefix MAE 1.96 deg after the full run vs 2 deg after half the steps (baseline_half): doubling the "
        "training improved it by 2.0% (criterion < 5%): met",
        ""]


def test_convergence_criteria_not_met(tmp_path):
    g = {"CL success": np.ones((3, 19)), "gt U_a": np.full((3, 3), 1.3), "gt MAE": np.full((3, 3), 1.8)}
    lines = convergence_lines(_convergence_plan(), _half_trial(tmp_path), g, np.full((1, 3), 0.4))
    assert lines[2] == ("- closed-loop success 100% over 19 episodes x 3 seeds (criterion >= 90% over >= 20 "
                        "episodes): NOT met")  # too few episodes
    assert lines[3] == "- gt-prefix U_a 3.25x the demonstrations' on the same episodes (criterion <= 3x): NOT met"
    assert lines[4].endswith("improved it by 10.0% (criterion < 5%): NOT met")
    no_reference = convergence_lines(_convergence_plan(), {}, {"gt MAE": g["gt MAE"]}, None)
    assert no_reference[2] == ("- MAE flattening: the half-length reference stage 'baseline_half' has no gt-prefix "
                               "results yet")
    assert convergence_lines(plan_from_dict(plan_raw({"a": {"steps": 1}}, {}, [1], 4, 1)), {}, {}, None) == []


def test_u_a_split_lines_by_hand(tmp_path):
    # baseline sc U_a inside: seed rows [1, 2, 3], [3, 4, 5] -> mean 3, V = 1 + 1/3 (seeds 3/4 of
    # it: df 1); boundary 2 everywhere. The demonstrations are read from the first seed only:
    # inside 0.5, 1, 1.5 -> mean 1, V = 0.25 / 3, df 2; boundary 3.
    inside = {1: [1.0, 2.0, 3.0], 2: [3.0, 4.0, 5.0]}
    truth_inside = {1: [0.5, 1.0, 1.5], 2: [9.0, 9.0, 9.0]}
    base, other = [], []
    for seed in (1, 2):
        sc = [replay_row(10, U_a_inside=99.0)] + [
            replay_row(e, U_a_inside=v, U_a_boundary=2.0, truth_U_a_inside=t, truth_U_a_boundary=3.0 * seed)
            for e, v, t in zip(TEST, inside[seed], truth_inside[seed])]
        cl = [closed_loop_row(e, action_U_a_inside=0.5, action_U_a_boundary=4.0) for e in range(3)]
        spec = trial_spec("baseline", seed, [1, 2], HELDOUT, VALIDATION, replay_modes=["self_chaining"],
                          closed_loop_episodes=3)
        base.append(TrialRecord(write_trial(tmp_path, spec, {"self_chaining": sc, "closed_loop": cl})))
        # an older closed-loop evaluation without the split and without a trajectory file to rescore
        old_cl = [{k: v for k, v in closed_loop_row(e).items() if "U_a_inside" not in k and "U_a_boundary" not in k}
                  for e in range(3)]
        spec = trial_spec("other", seed, [1, 2], HELDOUT, VALIDATION, replay_modes=["self_chaining"],
                          closed_loop_episodes=3)
        other.append(TrialRecord(write_trial(tmp_path, spec, {"self_chaining": sc, "closed_loop": old_cl})))
    groups = [("baseline", "baseline/run", base), ("other", "other/run", other)]
    lines = u_a_split_lines(groups, {"baseline/run": "baseline", "other/run": "other"}, TEST, base)
    half = T_975_DF1 * math.sqrt(4 / 3)
    assert f"{3 - half:.3g}, {3 + half:.3g}" == "-11.7, 17.7"
    demo_half = T_975_DF2 * math.sqrt(0.25 / 3)
    assert f"{1 - demo_half:.3g}, {1 + demo_half:.3g}" == "-0.242, 2.24"
    assert "Demonstrations on the same frames (the baseline's self-chaining boundaries): inside " \
           "1 [-0.242, 2.24], boundary windows 3 [3, 3]." in lines
    assert "| baseline | 3 [-11.7, 17.7] | 2 [2, 2] | 0.5 [0.5, 0.5] | 4 [4, 4] |" in lines
    assert "| other | 3 [-11.7, 17.7] | 2 [2, 2] | - | - |" in lines


# -- a whole report --------------------------------------------------------------------------------


def _write_run(out):
    """baseline (2 seeds) and a fine-tune of it that meets the goal, every evaluation."""
    seeds = [1, 2]
    mae = {1: [1.0, 2.0, 3.0], 2: [3.0, 4.0, 5.0]}
    hump = profile(1.2, {5: 1.4})
    base_dirs = {}
    for stage in ("baseline", "recipe"):
        for seed in seeds:
            tune = stage == "recipe"
            shift = 0.125 if tune else 0.0
            gt = [replay_row(10, mae=100.0)] + [replay_row(e, mae=m + shift) for e, m in zip(TEST, mae[seed])]
            sc = [replay_row(e, mae=1.0 + shift, U_a=1.2 if tune else 3.0, truth_U_a=1.0, sparc=-1.5,
                             truth_sparc=-1.625, ldlj=-5.75, truth_ldlj=-6.0,
                             profile_acc=hump if tune else profile(2.5), truth_profile_acc=profile(1.0))
                  for e in HELDOUT]
            cl = [closed_loop_row(e, action_U_a=1.25 if tune else 3.0, demo_action_U_a=1.0, action_sparc=-1.5,
                                  demo_action_sparc=-1.625, action_ldlj=-5.75, demo_action_ldlj=-6.0,
                                  action_profile_acc=hump if tune else profile(2.5),
                                  demo_action_profile_acc=profile(1.0)) for e in range(3)]
            spec = trial_spec(stage, seed, seeds, HELDOUT, VALIDATION, closed_loop_episodes=3,
                              init_checkpoint_of=base_dirs.get(seed))
            tdir = write_trial(out, spec, {"gt_prefix": gt, "self_chaining": sc, "closed_loop": cl})
            base_dirs.setdefault(seed, tdir)
    write_plan_json(out, plan_raw({"baseline": {"label": "baseline", "steps": 8},
                                   "recipe": {"label": "recipe", "steps": 8, "init_from": "baseline"}},
                                  {"replay_modes": ["gt_prefix", "self_chaining"], "closed_loop": True,
                                   "closed_loop_episodes": 3, "baseline": "baseline"}, seeds, 4, 1))


def test_write_report_on_hand_made_trials(tmp_path):
    _write_run(tmp_path)
    report = write_report(tmp_path).read_text()
    headings = [ln for ln in report.splitlines() if ln.startswith("## ")]
    assert headings[0] == "## Boundary profile: read this first"  # the figure to read first
    assert "![boundary profile](boundary_profile.png)" in report
    assert (tmp_path / "boundary_profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = report.splitlines()
    header = cells(next(ln for ln in lines if ln.startswith("| run | seeds |")))
    baseline_row = cells(next(ln for ln in lines if ln.startswith("| baseline (baseline) | 2 |")))
    # gt MAE of the test episodes 11..13 (the validation episode's 100 left out): rows [1, 2, 3],
    # [3, 4, 5] -> mean 3, V = 1 + 1/3, df 1
    half = T_975_DF1 * math.sqrt(4 / 3)
    assert baseline_row[header.index("gt MAE")] == f"3 [{3 - half:.3g}, {3 + half:.3g}]" == "3 [-11.7, 17.7]"
    goal_row = next(ln for ln in lines if ln.startswith("| recipe | 1.4x @ +5 |"))
    assert goal_row.endswith("| met |")
    assert "+0.12 [+0.12, +0.12]: non-inferior" in goal_row  # 0.125 deg worse, the same on every paired cell
    assert "(and on seeds for recipe:" in report
