"""loss.csv across attempts: rows of a killed attempt that its reader never wrote to loss.csv are
recovered from train.log (which the trainer appends to itself), and rows past the checkpoint that
the next attempt resumes from are replaced by that attempt's own."""

import math

from lerobot_policy_act_smooth.experiments.trial import LogParser, LossLog, loss_rows_from_log, read_loss_csv


def _attempt(n: int, resume_from, steps, loss_offset=0.0) -> str:
    lines = [f"\n=== attempt {n} 2026-12-03T00:00:00+00:00 resume_from={resume_from}: python -m lerobot train\n"]
    lines += [f"INFO ts step:{s} smpl:{64 * s} loss:{s / 100 + loss_offset:.3f} grdn:1.0 lr:1.0e-03 updt_s:0.1\n"
              for s in steps]
    return "".join(lines)


def test_parser_counts_rounded_steps_from_log_lines():
    parser = LogParser(start_step=1000, log_freq=200)
    assert parser.feed("INFO step:1K smpl:32K loss:0.5 lr:3.0e-03")[1]["step"] == 1200
    told, row = parser.feed("INFO step:1K smpl:38K loss:0.4")
    assert told and row["step"] == 1400 and row["loss"] == 0.4 and math.isnan(row["lr"])
    assert parser.feed("Training:  40%|####      | 12/30 [00:01<00:02]") == (True, None)
    assert parser.step == 1012  # the progress bar counts from the attempt's first step


def test_rows_from_log_cut_each_attempt_at_the_next_resume():
    text = _attempt(1, None, range(1, 18)) + _attempt(2, 10, range(11, 21), loss_offset=1.0)
    rows = loss_rows_from_log(text, log_freq=1)
    assert [int(r["step"]) for r in rows] == list(range(1, 21))
    assert [r["attempt"] for r in rows] == [1] * 10 + [2] * 10
    assert rows[10]["loss"] == 1.11  # step 11 from the resumed attempt, not the killed one's 0.11


def test_resume_recovers_rows_the_killed_reader_never_wrote(tmp_path):
    # The first attempt's trainer logged steps 1..23 and checkpointed at 20, but its reader was
    # killed after writing loss.csv up to step 13 (a lost Ray node).
    (tmp_path / "train.log").write_text(_attempt(1, None, range(1, 24)))
    (tmp_path / "loss.csv").write_text("step,loss,lr,attempt\n" + "".join(
        f"{s},{s / 100:.3f},0.001,1\n" for s in range(1, 14)))
    log = LossLog(tmp_path, resume_step=20, attempt=2, log_freq=1)
    log.write()
    assert [int(r["step"]) for r in read_loss_csv(tmp_path)] == list(range(1, 21))
    log.add({"step": 21, "loss": 0.5, "lr": 0.001})
    rows = read_loss_csv(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(1, 22))
    assert rows[-1]["attempt"] == 2 and rows[-1]["loss"] == 0.5


def test_fresh_attempt_starts_empty(tmp_path):
    (tmp_path / "train.log").write_text(_attempt(1, None, range(1, 5)))
    assert LossLog(tmp_path, resume_step=0, attempt=1, log_freq=1).rows == []
