"""Kill the runner (SIGKILL, no chance to clean up) during a trial, run the same command again:
finished trials are not re-run, the interrupted one resumes from its last checkpoint through
LeRobot's resume, no result file is lost or duplicated."""

import json
import os
import signal
import time

from plan_helpers import plan_text, popen_cli, run_cli, trainer_pids_for, write_plan

STAGES = """
[stages.s]
steps = 60
sweep."policy.optimizer_lr" = [1e-3, 3e-4]
"""


def _wait(cond, timeout, what):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill_runner_then_resume(exp_dataset_root, tmp_path):
    # batch 64 makes a step slow enough to kill between checkpoints (every 10 steps)
    plan = write_plan(tmp_path / "p.toml", plan_text(exp_dataset_root, STAGES, batch_size=64, save_freq=10))
    out = tmp_path / "run"
    first, second = out / "s" / "optimizer_lr_0.001", out / "s" / "optimizer_lr_0.0003"
    args = ["run", f"--plan={plan}", f"--output_dir={out}", "--max_concurrent_trials=1", "--report=false"]
    proc = popen_cli(args, tmp_path / "run1.log")
    try:
        _wait(lambda: (first / "DONE.json").is_file() and (second / "train/checkpoints/000010").is_dir(), 400,
              "the first trial to finish and the second to checkpoint")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (second / "DONE.json").exists(), "the second trial finished before it could be killed"
    # The trainer dies with the runner (Ray fate-sharing + PR_SET_PDEATHSIG), within seconds.
    _wait(lambda: not trainer_pids_for(out), 30, "lerobot-train to exit after the runner was killed")
    done_before = (first / "DONE.json").read_bytes()
    files_before = sorted(p.relative_to(first) for p in first.rglob("*") if p.name != "progress.json")
    killed_at = json.loads((second / "train/checkpoints/last/training_state/training_step.json").read_text())["step"]

    res = run_cli(args, timeout=400)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "start s/optimizer_lr_0.001" not in res.stdout  # finished trial not re-run
    assert (first / "DONE.json").read_bytes() == done_before
    assert sorted(p.relative_to(first) for p in first.rglob("*") if p.name != "progress.json") == files_before
    assert len((first / "attempts.jsonl").read_text().splitlines()) == 1

    attempts = [json.loads(x) for x in (second / "attempts.jsonl").read_text().splitlines()]
    assert len(attempts) == 2 and attempts[1]["resume_from"] == killed_at >= 10
    log = (second / "train.log").read_text()
    assert "--resume=true" in log and "Resuming data order" in log
    steps = [int(r.split(",")[0]) for r in (second / "loss.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 61))  # every step once: rows past the checkpoint were replaced
    assert sorted(p.name for p in (second / "train/checkpoints").iterdir()) == \
        ["000010", "000020", "000030", "000040", "000050", "000060", "last"]
    assert len(list(out.rglob("DONE.json"))) == 2
