"""`actsmooth-experiment rescore`: an evaluation scored before the new measures gains them from its
own trajectory files, exactly as a fresh scoring gives them; an evaluation that cannot be
rescored for a measure, or whose files disagree with its numbers, is one error and nothing is
written."""

import json
from pathlib import Path

from lerobot_policy_act_smooth.experiments.cli import main
from test_rescore import replay

NEW_KEYS = ("profile_speed", "profile_acc", "sparc", "ldlj", "spike_transition", "truth_sparc", "replan_max")


def _older_run(dataset_root, tmp_path):
    """A finished trial folder whose replay was scored before the boundary measures existed."""
    tdir = tmp_path / "run" / "stage" / "trial"
    (tdir / "eval").mkdir(parents=True)
    replay(dataset_root, tdir / "eval" / "self_chaining")
    metrics = tdir / "eval" / "self_chaining_metrics.json"
    fresh = json.loads(metrics.read_text())["episodes"]
    payload = json.loads(metrics.read_text())
    payload["episodes"] = [{k: v for k, v in row.items() if not any(k.endswith(n) for n in NEW_KEYS)} for row in fresh]
    metrics.write_text(json.dumps(payload))
    (tdir / "DONE.json").write_text(json.dumps({"evaluations": {"self_chaining": {
        "status": "ok", "metrics": "eval/self_chaining_metrics.json"}}}))
    return tmp_path / "run", metrics, fresh


def test_an_older_evaluation_gains_exactly_the_fresh_measures(sim_state_dataset_root, tmp_path, capsys):
    run, metrics, fresh = _older_run(sim_state_dataset_root, tmp_path)
    assert main(["rescore", f"--output_dir={run}"]) == 0
    assert "1 evaluation(s) gained" in capsys.readouterr().out
    payload = json.loads(metrics.read_text())
    assert json.dumps(payload["episodes"], sort_keys=True) == json.dumps(fresh, sort_keys=True)
    assert "profile_speed" in payload["rescored"]["added_keys"]
    before = metrics.read_bytes()
    assert main(["rescore", f"--output_dir={run}"]) == 0 and metrics.read_bytes() == before  # nothing left to add


def test_a_measure_the_files_cannot_give_is_one_error_and_nothing_is_written(sim_state_dataset_root, tmp_path, capsys):
    run, metrics, _ = _older_run(sim_state_dataset_root, tmp_path)
    Path(str(metrics).replace("_metrics.json", "_chunks.npz")).unlink()  # written before the chunks file existed
    before = metrics.read_bytes()
    assert main(["rescore", f"--output_dir={run}"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "chunks file" in err and "nothing was rescored" in err
    assert metrics.read_bytes() == before
    # without the replan discontinuity the rest can be added
    assert main(["rescore", f"--output_dir={run}", "--replan=false"]) == 0
    rows = json.loads(metrics.read_text())["episodes"]
    assert "profile_speed" in rows[0] and "replan_max" not in rows[0]


def test_files_that_disagree_with_the_stored_numbers_are_refused(sim_state_dataset_root, tmp_path, capsys):
    run, metrics, _ = _older_run(sim_state_dataset_root, tmp_path)
    payload = json.loads(metrics.read_text())
    payload["episodes"][0]["U_a"] += 1.0
    metrics.write_text(json.dumps(payload))
    before = metrics.read_bytes()
    assert main(["rescore", f"--output_dir={run}"]) == 2
    err = capsys.readouterr().err
    assert "stored U_a" in err and "re-run it instead of rescoring" in err
    assert metrics.read_bytes() == before
