"""The report's goal table (issue 11): thresholds on means, "not worse" from paired intervals."""

import numpy as np

from lerobot_policy_act_smooth.experiments.report import smoothness_goal_lines
from lerobot_policy_act_smooth.experiments.results_table import differences, variant_estimates


def _grids(sc_spike, cl_spike, sc_ua, cl_ua, mae, success):
    rng = np.random.default_rng(0)
    noise = lambda: rng.normal(0, 0.01, (3, 12))  # noqa: E731
    return {"sc spike": sc_spike + noise(), "CL act spike": cl_spike + noise(), "sc U_a": sc_ua + noise(),
            "CL act U_a": cl_ua + noise(), "gt MAE": mae + noise(), "sc MAE": mae + noise(),
            "CL success": success + noise()}


def test_goal_rows_follow_the_thresholds_and_the_intervals():
    truth = np.full((1, 12), 0.2)  # demonstrations' U_a
    grids = {
        "base": _grids(2.0, 1.8, 4.0, 2.5, 2.0, 0.9),
        "good": _grids(1.1, 1.15, 0.28, 0.25, 2.0, 0.9),  # 1.4x and 1.25x the demonstrations'
        "worse_mae": _grids(1.1, 1.15, 0.28, 0.25, 2.5, 0.9),
        "spiky": _grids(1.3, 1.1, 0.25, 0.25, 2.0, 0.9),
    }
    estimates = {k: variant_estimates(g) for k, g in grids.items()}
    diffs = {k: differences(g, grids["base"]) for k, g in grids.items() if k != "base"}
    variants = [(k, k) for k in grids]
    rows = {ln.split(" | ")[0][2:]: ln for ln in smoothness_goal_lines(variants, estimates, diffs, "base", truth)
            if ln.startswith("| ") and not ln.startswith("| run")}
    assert rows["good"].endswith("| met |") and "| 1.4 |" in rows["good"]
    assert rows["worse_mae"].endswith("not met |") and "| worse |" in rows["worse_mae"]
    assert rows["spiky"].endswith("not met |")
    assert rows["base"].endswith("not met |") and "(baseline)" in rows["base"]
    assert smoothness_goal_lines(variants, estimates, diffs, "base", None) == []  # no demonstrations: no goal
