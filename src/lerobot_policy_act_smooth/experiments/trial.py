"""One trial, as run by a Ray worker: lerobot-train (fresh or resumed), then the evaluations.

Files in output_dir/<stage>/<trial>/:
    trial.json       the resolved TrialSpec (written once; a different spec for the same folder is refused)
    attempts.jsonl   one line per attempt: node id, host, pid, start time, resumed-from step
    train/           lerobot-train's output_dir (checkpoints/<step>/, checkpoints/last)
    train.log        lerobot-train's console output, all attempts appended
    loss.csv         step,loss,lr parsed from the log lines (rows of an interrupted attempt past its
                     last checkpoint are replaced by the resumed attempt's rows)
    progress.json    live progress (phase, step, total, loss, eta_s), read by the driver
    eval/            <mode>_metrics.json etc. from actsmooth-replay / actsmooth-sim-eval, <mode>.log
    DONE.json        written atomically, last: the trial is finished
"""

from __future__ import annotations

import csv
import ctypes
import importlib.util
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..provenance import atomic_write_json, atomic_write_text
from .plan import TrialSpec, format_value

DONE_FILE = "DONE.json"
TRAIN_MODULE = "lerobot.scripts.lerobot_train"
IN_MEMORY_TRAIN_MODULE = "lerobot_policy_act_smooth.train"  # the same lerobot-train, frames held in memory
REPLAY_MODULE = "lerobot_policy_act_smooth.evaluation.replay_cli"
SIM_EVAL_MODULE = "lerobot_policy_act_smooth.evaluation.sim_eval_cli"

# "INFO ... step:1K smpl:32K ep:10 epch:0.50 loss:0.123 grdn:1.2 lr:3.0e-05 ..."
_LOG_RE = re.compile(r"\bstep:(\d+(?:\.\d+)?)([KMBTQ]?) .*?\bloss:(\S+)")
_LR_RE = re.compile(r"\blr:(\S+)")
_TQDM_RE = re.compile(r"Training:.*?\|\s*(\d+)/(\d+) \[")


class TrialFailed(RuntimeError):
    pass


def evaluations_complete(done: dict, retry_failed: bool = False) -> bool:
    """False while an evaluation of a finished trial is worth another try: one whose evaluator was
    not installed ("unavailable"), and, with retry_failed, one that ran and failed."""
    again = ("unavailable", "failed") if retry_failed else ("unavailable",)
    return not any(e.get("status") in again for e in done.get("evaluations", {}).values())


TRAINED_SUFFIX = "_on_trained"  # evaluation name of a replay mode on extra (trained-on) episodes


def extra_episodes(spec: TrialSpec) -> list[int]:
    """The extra evaluation episodes that are not held out (so were trained on)."""
    return [e for e in spec.extra_eval_episodes if e not in spec.heldout_episodes]


def wanted_evaluations(spec: TrialSpec) -> list[str]:
    names = list(spec.replay_modes)
    if extra_episodes(spec):
        names += [m + TRAINED_SUFFIX for m in spec.replay_modes]
    return names + (["closed_loop"] if spec.closed_loop else [])


def missing_evaluations(spec: TrialSpec, done: dict) -> list[str]:
    """Evaluations the spec asks for that a finished trial has not run (e.g. episodes added or
    changed later)."""
    evals = done.get("evaluations", {})
    return [n for n in wanted_evaluations(spec) if n not in evals
            or (n.endswith(TRAINED_SUFFIX) and evals[n].get("episodes") != extra_episodes(spec))]


def trial_dir(output_dir: str | Path, spec: TrialSpec) -> Path:
    return Path(output_dir) / spec.stage / spec.name


def read_done(tdir: str | Path) -> dict | None:
    path = Path(tdir) / DONE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def read_loss_csv(tdir: str | Path) -> list[dict[str, float]]:
    path = Path(tdir) / "loss.csv"
    if not path.is_file():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def last_checkpoint_step(train_dir: Path) -> int | None:
    """Step of checkpoints/last if it is a complete checkpoint, else None."""
    last = train_dir / "checkpoints" / "last"
    step_file = last / "training_state" / "training_step.json"
    if not (last / "pretrained_model" / "train_config.json").is_file() or not step_file.is_file():
        return None
    return int(json.loads(step_file.read_text())["step"])


def flags_to_args(flags: dict[str, Any]) -> list[str]:
    return [f"--{k}={format_value(v)}" for k, v in flags.items()]


def init_args(spec: TrialSpec) -> list[str]:
    """lerobot-train flags of a fresh (not resumed) trial. A fine-tune (init_checkpoint_of) starts
    from that trial's final weights and config through LeRobot's own `--policy.path`; the policy
    flags that follow override that config, and the type comes from the checkpoint."""
    if not spec.init_checkpoint_of:
        return flags_to_args(spec.flags)
    model = Path(spec.init_checkpoint_of) / "train" / "checkpoints" / "last" / "pretrained_model"
    if not (model / "model.safetensors").is_file():
        raise TrialFailed(f"{spec.key}: the checkpoint to fine-tune, {model}, has no model.safetensors")
    flags = {k: v for k, v in spec.flags.items() if k != "policy.type"}
    return [f"--policy.path={model.resolve()}", *flags_to_args(flags)]


def _node_id() -> str | None:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - outside Ray there is no node id
        pass
    return None


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the worker that started it dies, so that a
    killed runner (or a removed Ray node) never leaves a trainer writing into a trial folder."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _popen(cmd: list[str], env: dict[str, str], stdout: Any = subprocess.PIPE) -> subprocess.Popen:
    kwargs: dict[str, Any] = dict(
        stdout=stdout, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env, start_new_session=True
    )
    if sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = _die_with_parent
    return subprocess.Popen(cmd, **kwargs)


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _child_env(num_threads: int) -> dict[str, str]:
    env = os.environ.copy()
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["OMP_NUM_THREADS"] = str(num_threads)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Progress:
    """progress.json, rewritten at most once a second (and on every phase change)."""

    def __init__(self, tdir: Path, spec: TrialSpec, node_id: str | None):
        self.path = tdir / "progress.json"
        self.state = {"trial": spec.key, "label": spec.label, "node_id": node_id, "phase": "starting",
                      "step": 0, "total": spec.steps, "loss": None, "eta_s": None}
        self._last = 0.0

    def update(self, force: bool = False, **kw) -> None:
        self.state.update(kw)
        now = time.time()
        if force or now - self._last >= 1.0:
            self.state["updated"] = now
            atomic_write_json(self.path, self.state)
            self._last = now


class LogParser:
    """Step and loss rows from lerobot-train's console lines, one attempt's lines at a time."""

    def __init__(self, start_step: int, log_freq: int):
        self.start_step = start_step
        self.log_freq = log_freq
        self.step = start_step
        self.logged_step = start_step

    def feed(self, line: str) -> tuple[bool, dict | None]:
        """(whether the line told the step, the loss row it logged or None)."""
        m_tqdm = None
        for m_tqdm in _TQDM_RE.finditer(line):
            pass
        if m_tqdm:
            self.step = self.start_step + int(m_tqdm.group(1))
        m = _LOG_RE.search(line)
        row = None
        if m:
            value, suffix = m.group(1), m.group(2)
            # Below 1000 the step is printed exactly; above, it is rounded ("2K"), so count
            # log lines instead: one every log_freq steps.
            self.logged_step = int(value) if not suffix else (self.logged_step // self.log_freq + 1) * self.log_freq
            self.step = max(self.step, self.logged_step)
            lr = _LR_RE.search(line)
            row = {"step": self.logged_step, "loss": _parse_float(m.group(3)),
                   "lr": _parse_float(lr.group(1)) if lr else math.nan}
        return bool(m_tqdm or m), row


_ATTEMPT_RE = re.compile(r"^=== attempt (\d+) \S+ resume_from=(\w+):", re.MULTILINE)


def loss_rows_from_log(text: str, log_freq: int) -> list[dict]:
    """Every attempt's loss rows parsed again from train.log, each attempt's rows cut at the step
    the next attempt resumed from. The trainer writes this file itself, so it holds every line
    logged before a checkpoint even when the worker reading it was killed first."""
    heads = list(_ATTEMPT_RE.finditer(text))
    rows: list[dict] = []
    for i, head in enumerate(heads):
        start = 0 if head.group(2) == "None" else int(head.group(2))
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        rows = [r for r in rows if r["step"] <= start]
        parser = LogParser(start, log_freq)
        for line in text[head.end():end].splitlines():
            _, row = parser.feed(line)
            if row is not None:
                rows.append({**row, "attempt": int(head.group(1))})
    return rows


class LossLog:
    """Rows of loss.csv, kept consistent across resumed attempts: an interrupted attempt's rows up
    to the checkpoint the next attempt resumes from, from loss.csv or, where a killed reader never
    wrote them there, from train.log."""

    def __init__(self, tdir: Path, resume_step: int, attempt: int, log_freq: int):
        self.path = tdir / "loss.csv"
        rows = {int(r["step"]): r for r in read_loss_csv(tdir) if r["step"] <= resume_step}
        log = tdir / "train.log"
        if resume_step and log.is_file():
            for r in loss_rows_from_log(log.read_text(), log_freq):
                if r["step"] <= resume_step:
                    rows.setdefault(int(r["step"]), r)
        self.rows = [rows[k] for k in sorted(rows)]
        self.attempt = attempt

    def add(self, row: dict) -> None:
        self.rows.append({**row, "attempt": self.attempt})
        self.write()

    def write(self) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["step", "loss", "lr", "attempt"])
        for r in self.rows:
            w.writerow([int(r["step"]), r["loss"], r.get("lr", math.nan), int(r.get("attempt", 0))])
        atomic_write_text(self.path, buf.getvalue())


def _follow(path: Path, offset: int, proc: subprocess.Popen, poll_s: float = 0.2):
    """Lines appended to path from offset on, as they are written, until proc has exited and
    every line it wrote has been read."""
    with path.open("r", errors="replace") as f:
        f.seek(offset)
        pending = ""
        while True:
            exited = proc.poll() is not None
            chunk = f.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split("\n")
                yield from lines
            elif exited:
                if pending:
                    yield pending
                return
            else:
                time.sleep(poll_s)


def _parse_float(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        return math.nan


def train(spec: TrialSpec, tdir: Path, progress: Progress, attempt: int, num_threads: int, device: str) -> Path:
    """Run (or resume, or skip) lerobot-train for this trial; return the final pretrained_model dir."""
    train_dir = tdir / "train"
    resume_step = last_checkpoint_step(train_dir)
    if resume_step is None and train_dir.exists():
        # Interrupted before its first complete checkpoint: nothing to resume, and lerobot-train
        # refuses an existing output_dir without --resume. Nothing in it is a result.
        shutil.rmtree(train_dir)
    final_model = train_dir / "checkpoints" / "last" / "pretrained_model"
    if resume_step is not None and resume_step >= spec.steps:
        return final_model.resolve()
    module = IN_MEMORY_TRAIN_MODULE if spec.in_memory_dataset else TRAIN_MODULE
    if resume_step is not None:
        cmd = [sys.executable, "-m", module, "--resume=true",
               f"--config_path={final_model / 'train_config.json'}", f"--output_dir={train_dir}"]
    else:
        device_flag = [] if "policy.device" in spec.flags else [f"--policy.device={device}"]
        cmd = [sys.executable, "-m", module, *init_args(spec), *device_flag, f"--output_dir={train_dir}"]
    start_step = resume_step or 0
    log_freq = int(spec.flags.get("log_freq", 200))
    losses = LossLog(tdir, start_step, attempt, log_freq)
    losses.write()
    parser = LogParser(start_step, log_freq)
    first_seen: tuple[int, float] | None = None
    progress.update(force=True, phase="train", step=start_step, total=spec.steps, resumed_from=resume_step)
    log_path = tdir / "train.log"
    with log_path.open("a") as log:
        log.write(f"\n=== attempt {attempt} {datetime.now(timezone.utc).isoformat(timespec='seconds')} "
                  f"resume_from={resume_step}: {' '.join(cmd)}\n")
        log.flush()
        offset = log.tell()
        # The trainer appends to train.log itself, so its lines reach the file even when this
        # worker is killed before it has read them (a lost node): a resumed attempt recovers them.
        proc = _popen(cmd, _child_env(num_threads), stdout=log)
    try:
        for line in _follow(log_path, offset, proc):
            told_step, row = parser.feed(line)
            if row is not None:
                losses.add(row)
                progress.update(loss=row["loss"])
            if told_step:
                step = parser.step
                # Time per step measured from the first step seen (start-up time excluded).
                if first_seen is None and step > start_step:
                    first_seen = (step, time.time())
                rate = None
                if first_seen is not None and step > first_seen[0]:
                    rate = (time.time() - first_seen[1]) / (step - first_seen[0])
                progress.update(step=step, eta_s=rate * (spec.steps - step) if rate else None)
        rc = proc.wait()
    finally:
        _kill_group(proc)
    if rc != 0:
        tail = (tdir / "train.log").read_text()[-2000:]
        raise TrialFailed(f"{spec.key}: lerobot-train exited with code {rc}; see {tdir / 'train.log'}\n{tail}")
    if last_checkpoint_step(train_dir) != spec.steps:
        raise TrialFailed(f"{spec.key}: lerobot-train finished but {train_dir}/checkpoints/last is not step {spec.steps}")
    progress.update(force=True, step=spec.steps, eta_s=0)
    return final_model.resolve()


def _run_eval(name: str, module: str, args: list[str], stem: Path, tdir: Path, progress: Progress,
              num_threads: int) -> dict:
    metrics = Path(f"{stem}_metrics.json")
    logfile = tdir / "eval" / f"{name}.log"
    if metrics.is_file():
        return {"status": "ok", "metrics": str(metrics.relative_to(tdir)), "log": str(logfile.relative_to(tdir))}
    if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None or importlib.util.find_spec(module) is None:
        return {"status": "unavailable", "error": f"module {module} is not installed"}
    progress.update(force=True, phase=f"eval:{name}", eta_s=None)
    cmd = [sys.executable, "-m", module, *args, f"--output={stem}"]
    t0 = time.time()
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("a") as log:
        log.write(f"\n=== {datetime.now(timezone.utc).isoformat(timespec='seconds')}: {' '.join(cmd)}\n")
        log.flush()
        proc = _popen(cmd, _child_env(num_threads))
        try:
            for line in proc.stdout:
                log.write(line)
            rc = proc.wait()
        finally:
            _kill_group(proc)
    out = {"log": str(logfile.relative_to(tdir)), "seconds": round(time.time() - t0, 1)}
    if rc == 0 and metrics.is_file():
        return {"status": "ok", "metrics": str(metrics.relative_to(tdir)), **out}
    tail = logfile.read_text()[-600:].strip().splitlines()
    return {"status": "failed", "rc": rc, "error": tail[-1] if tail else f"exit code {rc}", **out}


def run_evaluations(spec: TrialSpec, tdir: Path, checkpoint: Path, progress: Progress, device: str,
                    num_threads: int) -> dict[str, dict]:
    results = {}
    root = spec.flags.get("dataset.root")
    repo_id = spec.flags.get("dataset.repo_id")
    groups = [("", spec.heldout_episodes)]
    if extra_episodes(spec):
        groups.append((TRAINED_SUFFIX, extra_episodes(spec)))
    for mode in spec.replay_modes:
        for suffix, group in groups:
            name = mode + suffix
            if not group:
                results[name] = {"status": "skipped", "error": "no held-out episodes"}
                continue
            args = [f"--policy.path={checkpoint}", f"--dataset.repo_id={repo_id}", f"--dataset.root={root}",
                    f"--episodes={','.join(map(str, group))}", f"--mode={mode}", f"--device={device}",
                    f"--seed={spec.eval_seed}", "--overwrite=true", *spec.replay_args]
            # Extra episodes may change between runs: their files are named by the episodes, so
            # that an earlier choice's results are kept, not overwritten.
            stem = tdir / "eval" / (name + (f"_{'-'.join(map(str, group))}" if suffix else ""))
            results[name] = _run_eval(name, REPLAY_MODULE, args, stem, tdir, progress, num_threads)
            if suffix:
                results[name]["episodes"] = list(group)
    if spec.closed_loop:
        args = [f"--policy.path={checkpoint}", f"--episodes={spec.closed_loop_episodes}",
                f"--seed={spec.eval_seed}", f"--device={device}", "--overwrite=true", *spec.closed_loop_args]
        results["closed_loop"] = _run_eval("closed_loop", SIM_EVAL_MODULE, args, tdir / "eval" / "closed_loop",
                                           tdir, progress, num_threads)
    return results


def _check_spec(tdir: Path, spec: TrialSpec) -> None:
    path = tdir / "trial.json"
    if path.is_file():
        old = TrialSpec.from_dict(json.loads(path.read_text()))
        if old.flags != spec.flags or old.steps != spec.steps:
            raise TrialFailed(
                f"{tdir} holds a trial run with different settings; use another --output_dir "
                f"(changed: {sorted(k for k in set(old.flags) | set(spec.flags) if old.flags.get(k) != spec.flags.get(k))})"
            )
    atomic_write_json(path, spec.to_dict())


def run_trial(spec_dict: dict, output_dir: str, device: str = "cpu", num_threads: int = 1) -> dict:
    """Train (or resume) and evaluate one trial; return the content of its DONE.json.

    Idempotent: training is skipped when the last checkpoint is at the final step, evaluations whose
    metrics file exists are kept. Safe to re-run on another node after a crash (shared output_dir).
    """
    spec = TrialSpec.from_dict(spec_dict)
    tdir = trial_dir(output_dir, spec)
    tdir.mkdir(parents=True, exist_ok=True)
    previous = read_done(tdir)
    if previous and evaluations_complete(previous, retry_failed=True) and not missing_evaluations(spec, previous):
        return previous
    _check_spec(tdir, spec)
    node_id = _node_id()
    attempts_file = tdir / "attempts.jsonl"
    attempt = len(attempts_file.read_text().splitlines()) + 1 if attempts_file.is_file() else 1
    with attempts_file.open("a") as f:
        f.write(json.dumps({"attempt": attempt, "node_id": node_id, "host": socket.gethostname(), "pid": os.getpid(),
                            "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "resume_from": last_checkpoint_step(tdir / "train")}) + "\n")
    progress = Progress(tdir, spec, node_id)
    t0 = time.time()
    if spec.steps > 0:
        checkpoint = train(spec, tdir, progress, attempt, num_threads, device)
    else:
        src = Path(spec.evaluate_checkpoint_of)
        checkpoint = (src / "train" / "checkpoints" / "last" / "pretrained_model").resolve()
        if not (checkpoint / "config.json").is_file():
            raise TrialFailed(f"{spec.key}: no finished checkpoint in {src} to evaluate")
    eval_device = device if spec.eval_device in ("", "auto", None) else spec.eval_device
    evaluations = run_evaluations(spec, tdir, checkpoint, progress, eval_device, num_threads)
    attempts = [json.loads(x) for x in attempts_file.read_text().splitlines() if x.strip()]
    result = {
        "trial": spec.key,
        "stage": spec.stage,
        "name": spec.name,
        "label": spec.label,
        "steps": spec.steps,
        "early": spec.early,
        "checkpoint": str(checkpoint),
        "evaluations": evaluations,
        "node_ids": sorted({a["node_id"] for a in attempts if a.get("node_id")}),
        "attempts": len(attempts),
        "seconds_last_attempt": round(time.time() - t0, 1),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if previous:
        result["first_finished_utc"] = previous.get("first_finished_utc", previous.get("finished_utc"))
    progress.update(force=True, phase="done", eta_s=0)
    atomic_write_json(tdir / DONE_FILE, result)
    return result
