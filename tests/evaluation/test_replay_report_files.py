"""The generic result files (report_files.write_metric_files), also used by closed-loop evaluation."""

import csv
import json

import pytest

from lerobot_policy_act_smooth.evaluation.report_files import result_paths, write_metric_files


def test_rows_without_ground_truth_and_with_extra_keys(tmp_path):
    rows = [
        {"episode": 0, "U_v": 1.0, "U_a": 0.5, "mu_v": 2.0, "spike": 1.5, "spike_boundary_mean": 0.3,
         "spike_other_mean": 0.2, "success": 1.0},
        {"episode": 4, "U_v": 3.0, "U_a": 0.25, "mu_v": 2.0, "spike": float("inf"), "spike_boundary_mean": 0.1,
         "spike_other_mean": 0.0, "success": 0.0},
    ]
    payload = write_metric_files(tmp_path / "sub" / "cl", rows, "Closed loop", {"seed": 1}, ["mode: async"],
                                 extra_json={"settings": {"episodes": 2}})
    paths = result_paths(tmp_path / "sub" / "cl")
    assert all(p.is_file() for p in paths.values())
    assert not list((tmp_path / "sub").glob(".*.tmp"))  # no temporary files left

    text = paths["results"].read_text()
    assert "Truth" not in text and "MAE" not in text
    assert "Episode 4" in text and "success = 0" in text and "Spike Predicted  inf" in text
    assert "U_a=0.375 +- 0.176777" in text  # sample std (ddof=1) of 0.5 and 0.25: 0.125 * sqrt(2)

    saved = json.loads(paths["json"].read_text())
    assert saved == json.loads(json.dumps(payload))
    assert saved["aggregate"]["success_mean"] == 0.5 and saved["run"] == {"seed": 1}
    assert saved["settings"] == {"episodes": 2} and saved["aggregate"]["num_episodes"] == 2

    with open(paths["csv"]) as f:
        table = list(csv.DictReader(f))
    assert [r["episode"] for r in table] == ["0", "4", "mean", "std"]
    assert float(table[2]["U_v"]) == pytest.approx(2.0) and float(table[3]["U_v"]) == pytest.approx(2 ** 0.5)
