"""`actsmooth-experiment latency`: the closed-loop latency sweep over a finished run folder.

Every variant (a plan stage's finished trials plus the sim-eval flags that make the variant) is
evaluated by `actsmooth-sim-eval` at every latency, on the same scenes for every trial (one scene
seed for all: seeds x scenes is a crossed grid). Files, under OUTPUT_DIR/latency/:

    reference.npz                  the scripted demonstrator on the sweep's scenes, recorded once and
                                   scored at each evaluated episode's boundaries (latency_reference.py)
    <variant>/<trial>/L<ms>_*      sim-eval's files for that latency (skipped when present: resumable)
    summary.json                   per variant and latency: success, time to success, commanded U_a
                                   and SPARC against the demonstrator on the same scenes, the boundary
                                   profile's peak; every figure with its 95% interval
    report.md, latency_curve.png   the table, the goal and the figure, regenerated from the files

Time to success is the frame of first success over fps, a failed episode counted at its last
frame (the time it was given): a throughput figure that a policy cannot improve by failing fast.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..provenance import atomic_write_json, atomic_write_text, run_metadata
from .latency_reference import record_reference, with_reference
from .results_table import fmt_estimate
from .statistics import Estimate, mean_interval

# 0, 1, 2, 3, 5, 7, 10 and 15 frames at 30 fps. The "67" and "167 ms" are 66.7 and 166.7
# rounded up: 67 ms is 2.01 frames and commits d = 3 (the same d as 100 ms), so 66 and 166 are used.
DEFAULT_LATENCIES = "0,33,66,100,166,233,333,500"
GOAL_FROM_MS = 166.0  # the goal's "167 ms and beyond": 5 frames at 30 fps and more
EMA_FLAGS = ("--ema_alpha=0.25", "--ema_max_delta=1.25")
BLEND_FRAMES = 10  # the plan's overlap blending: a linear crossfade over 10 actions


@dataclass(frozen=True)
class Variant:
    stage: str
    label: str
    sim_args: tuple[str, ...] = ()


VARIANTS = {
    "baseline": Variant("baseline", "baseline, D = 2"),
    "recipe": Variant("smooth_join_own", "recipe, D = 2"),
    "baseline_d10": Variant("baseline_d10", "baseline, D = 10"),
    "recipe_d10": Variant("recipe_d10", "recipe, D = 10"),
    "baseline_d15": Variant("baseline_d15", "baseline, D = 15"),
    "recipe_d15": Variant("recipe_d15", "recipe, D = 15"),
    "vanilla_act_sync": Variant("vanilla_act", "vanilla ACT, synchronous (holds while computing)", ("--sync_hold=true",)),
    "baseline_ema": Variant("baseline", "baseline + EMA filter (alpha 0.25, 1.25 deg/frame)", EMA_FLAGS),
    "baseline_blend": Variant("baseline", f"baseline + overlap blending ({BLEND_FRAMES} frames)",
                              (f"--blend_frames={BLEND_FRAMES}",)),
}
DEFAULT_VARIANTS = ",".join(VARIANTS)
COMPARED = ("vanilla_act_sync", "baseline_ema", "baseline_blend")  # what the goal's winner must beat from GOAL_FROM_MS


class SweepError(ValueError):
    """Bad flags or a run folder the sweep cannot use; the message says which and the fix."""


@dataclass
class LatencyConfig:
    # The folder of a finished run (actsmooth-experiment run --plan=cpu-latency writes every stage).
    output_dir: str = ""
    # Latencies in ms, comma-separated numbers >= 0.
    latencies_ms: str = DEFAULT_LATENCIES
    # Variants, comma-separated, from: baseline, recipe, baseline_d10, recipe_d10, baseline_d15,
    # recipe_d15, vanilla_act_sync, baseline_ema, baseline_blend. A variant whose stage has no finished trial is
    # listed and left out.
    variants: str = DEFAULT_VARIANTS
    # Closed-loop scenes per trial and latency; scene i is env.reset(seed + i) for every trial.
    episodes: int = 20
    seed: int = 1000
    # Frames per episode at most (the environment's own limit when unset).
    max_steps: int | None = None
    # Evaluations run at once (one worker process each, one thread).
    jobs: int = 2
    # Print what would run and start nothing.
    dry_run: bool = False


@dataclass
class Job:
    variant: str
    trial: str
    latency_ms: float
    stem: Path
    checkpoint: Path
    args: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> Path:
        return Path(f"{self.stem}_metrics.json")


def parse_latencies(text: str) -> list[float]:
    values = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise SweepError(f"--latencies_ms must be comma-separated numbers of milliseconds, got {part!r} in {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise SweepError(f"--latencies_ms: a latency must be a finite number >= 0 ms, got {part!r}")
        values.append(value)
    if not values:
        raise SweepError("--latencies_ms is empty: give e.g. --latencies_ms=0,100,500")
    return sorted(set(values))


def parse_variants(text: str) -> list[str]:
    names = [v.strip() for v in str(text).split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise SweepError(f"--variants: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}")
    return names


def scene_seeds(cfg: LatencyConfig) -> list[int]:
    return [cfg.seed + i for i in range(cfg.episodes)]


def latency_name(latency_ms: float) -> str:
    return f"L{latency_ms:g}"


def finished_trials(output_dir: Path, stage: str) -> list[tuple[str, Path]]:
    """(trial name, final checkpoint) of every finished trial of a stage, by name."""
    out = []
    for done in sorted((output_dir / stage).glob("*/DONE.json")):
        model = done.parent / "train" / "checkpoints" / "last" / "pretrained_model"
        if model.is_dir():
            out.append((done.parent.name, model.resolve()))
    return out


def plan_jobs(cfg: LatencyConfig) -> tuple[list[Job], list[str]]:
    """Every (variant, trial, latency) evaluation and the variants left out (no finished trial)."""
    out_dir = Path(cfg.output_dir)
    if not cfg.output_dir or not out_dir.is_dir():
        raise SweepError(f"--output_dir {cfg.output_dir!r} is not a run folder: pass the output_dir of a finished "
                         "`actsmooth-experiment run` (e.g. --plan=cpu-latency)")
    latencies, variants = parse_latencies(cfg.latencies_ms), parse_variants(cfg.variants)
    if cfg.episodes < 1:
        raise SweepError(f"--episodes must be >= 1, got {cfg.episodes}")
    if cfg.jobs < 1:
        raise SweepError(f"--jobs must be >= 1, got {cfg.jobs}")
    jobs, missing = [], []
    for name in variants:
        variant = VARIANTS[name]
        trials = finished_trials(out_dir, variant.stage)
        if not trials:
            missing.append(name)
            continue
        for trial, model in trials:
            for latency in latencies:
                stem = out_dir / "latency" / name / trial / latency_name(latency)
                args = [f"--policy.path={model}", f"--episodes={cfg.episodes}", f"--seed={cfg.seed}",
                        f"--latency_ms={latency:g}", "--plots=false", "--overwrite=true", f"--output={stem}",
                        "--reference=false",
                        *variant.sim_args]
                if cfg.max_steps is not None:
                    args.append(f"--max_steps={cfg.max_steps}")
                jobs.append(Job(name, trial, latency, stem, model, args))
    if not jobs:
        raise SweepError(f"no variant has a finished trial in {out_dir} (looked for stages "
                         f"{', '.join(VARIANTS[v].stage for v in variants)}): run "
                         f"`actsmooth-experiment run --plan=cpu-latency --output_dir={out_dir}` first")
    check_earlier_scenes(jobs, scene_seeds(cfg), cfg.max_steps)
    return jobs, missing


def check_earlier_scenes(jobs: list[Job], seeds: list[int], max_steps: int | None) -> None:
    """A finished evaluation is reused only when it ran these scenes with this frame limit: a sweep
    resumed with another --episodes, --seed or --max_steps would mix scene sets in one table."""
    for job in jobs:
        if not job.metrics.is_file():
            continue
        data = json.loads(job.metrics.read_text())
        ran = data.get("settings", {}).get("seeds") or []
        if ran != seeds or data.get("run", {}).get("config", {}).get("max_steps") != max_steps:
            raise SweepError(
                f"{job.metrics} ran other scenes or another frame limit ({len(ran)} scenes from {ran[0] if ran else '?'}) "
                f"than this sweep asks ({len(seeds)} from {seeds[0]}, --max_steps={max_steps}): resume with the --episodes/--seed/--max_steps it ran with, "
                f"or move {job.metrics.parents[2]} aside to start a new sweep"
            )


def _start_worker() -> None:
    os.environ.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    import torch

    torch.set_num_threads(1)


def _evaluate(args: list[str], log_path: str) -> tuple[int, float]:
    """One `actsmooth-sim-eval` run inside a pool worker (imports paid once per worker, not per
    evaluation); its output goes to log_path. Returns its exit status and seconds."""
    from ..evaluation.sim_eval_cli import main

    started = time.time()
    with open(log_path, "a") as log:
        # At the descriptor level: objects that kept sys.stderr (progress printers, loggers) write
        # to this evaluation's log, and nothing keeps a file that a later evaluation has closed.
        sys.stdout.flush(), sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            rc = main(args)
        except SystemExit as err:  # draccus exits on a flag it cannot parse
            rc = int(err.code or 1)
        except Exception as err:  # noqa: BLE001 - one failed evaluation must not stop the sweep
            print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
            rc = 1
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
    return rc, time.time() - started


def run_jobs(jobs: list[Job], parallel: int, stream=sys.stdout) -> list[Job]:
    """Runs every job whose metrics file is missing, in `parallel` worker processes; returns the
    failed ones. Prints progress."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    todo = [j for j in jobs if not j.metrics.is_file()]
    print(f"[latency] {len(jobs) - len(todo)} of {len(jobs)} evaluations already done; running {len(todo)}",
          file=stream, flush=True)
    failed, started, done = [], time.time(), 0
    context = multiprocessing.get_context("spawn")  # a clean interpreter: torch's threads are set before use
    with ProcessPoolExecutor(max_workers=parallel, mp_context=context, initializer=_start_worker) as pool:
        futures = {}
        for job in todo:
            job.stem.parent.mkdir(parents=True, exist_ok=True)
            futures[pool.submit(_evaluate, job.args, f"{job.stem}.log")] = job
        for future in as_completed(futures):
            job = futures[future]
            rc, seconds = future.result()
            done += 1
            elapsed = time.time() - started
            left = elapsed / done * (len(todo) - done)
            status = "ok" if rc == 0 and job.metrics.is_file() else f"FAILED (exit {rc}, see {job.stem}.log)"
            if status != "ok":
                failed.append(job)
            print(f"[latency] {done}/{len(todo)} {job.variant} {job.trial} {job.latency_ms:g} ms: {status} in "
                  f"{seconds:.0f}s; "
                  f"elapsed {elapsed:.0f}s, about {left:.0f}s left", file=stream, flush=True)
    return failed


# -- the summary -------------------------------------------------------------------------------


def _episodes(job: Job, demos: dict) -> tuple[list[dict], float, int | None]:
    data = json.loads(job.metrics.read_text())
    settings = data["settings"]
    fps = float(settings["fps"])
    return [with_reference(e, demos[e["seed"]], fps) for e in data["episodes"]], fps, settings.get("committed_actions")


def time_to_success_s(episode: dict, fps: float) -> float:
    """Seconds to the first success; a failed episode counts at its last frame."""
    frame = episode.get("success_frame") if episode.get("success") else None
    return (frame if frame is not None else episode["num_frames"]) / fps


@dataclass
class Cell:
    """One variant at one latency: [seeds, scenes] grids and their estimates."""

    success: Estimate
    time_s: Estimate
    u_a_ratio: float  # commanded U_a / the demonstrator's on the same scenes (ratio of means)
    obs_u_a_ratio: float  # the same on the observed joint positions
    sparc: Estimate  # commanded SPARC - the demonstrator's, per scene (>= 0: no worse)
    profile_peak: Estimate | None
    profile_peak_offset: int | None
    committed: int | None


def _grid(per_trial: list[list[dict]], fn) -> np.ndarray:
    return np.asarray([[fn(e) for e in eps] for eps in per_trial], dtype=np.float64)


def summarize_cell(per_trial: list[list[dict]], fps: float, committed: int | None) -> Cell:
    from .boundary_report import profile_grid, summarize_profile

    n = min(len(eps) for eps in per_trial)
    per_trial = [sorted(eps, key=lambda e: e["episode"])[:n] for eps in per_trial]
    success = mean_interval(_grid(per_trial, lambda e: float(bool(e["success"]))))
    time_s = mean_interval(_grid(per_trial, lambda e: time_to_success_s(e, fps)))

    def ratio(key: str) -> float:
        mine, demo = _grid(per_trial, lambda e: e.get(key, math.nan)), _grid(per_trial, lambda e: e.get(f"demo_{key}", math.nan))
        return float(np.nanmean(mine) / np.nanmean(demo)) if np.isfinite(demo).any() else math.nan

    sparc = mean_interval(_grid(per_trial, lambda e: e.get("action_sparc", math.nan) - e.get("demo_action_sparc", math.nan)))
    peak, offset = None, None
    policy = profile_grid(per_trial, "action_profile_acc", None)
    reference = profile_grid(per_trial, "demo_action_profile_acc", None)
    if policy is not None and reference is not None:
        summary = summarize_profile(policy, reference)
        if summary is not None:
            peak, offset = summary.peak, summary.peak_offset
    return Cell(success, time_s, ratio("action_U_a"), ratio("obs_U_a"), sparc, peak, offset, committed)


def summarize(jobs: list[Job], demos: dict) -> dict[str, dict[float, Cell]]:
    """{variant: {latency: Cell}} over the jobs whose metrics exist (every trial of a variant needed)."""
    grouped: dict[tuple[str, float], list[Job]] = {}
    for job in jobs:
        grouped.setdefault((job.variant, job.latency_ms), []).append(job)
    out: dict[str, dict[float, Cell]] = {}
    for (variant, latency), group in grouped.items():
        if not all(j.metrics.is_file() for j in group):
            continue
        loaded = [_episodes(j, demos) for j in sorted(group, key=lambda j: j.trial)]
        out.setdefault(variant, {})[latency] = summarize_cell([x[0] for x in loaded], loaded[0][1], loaded[0][2])
    return out


def goal_lines(cells: dict[str, dict[float, Cell]], latencies: list[float]) -> list[str]:
    """The issue's goal per act_smooth variant: success within 5 points and time within 10% of its
    own 0 ms figures at every latency, profile peak <= 1.5x the demonstrator's, and better time and
    SPARC than vanilla ACT's synchronous loop, the EMA filter and blending from GOAL_FROM_MS on."""
    lines = []
    for variant, by_latency in cells.items():
        if variant in COMPARED:
            continue
        reasons = []
        if 0.0 not in by_latency or any(lat not in by_latency for lat in latencies):
            lines.append(f"- {VARIANTS[variant].label}: not judged (not every latency evaluated, or no 0 ms reference)")
            continue
        zero = by_latency[0.0]
        for lat in latencies:
            c = by_latency[lat]
            if c.success.mean < zero.success.mean - 0.05:
                reasons.append(f"success {c.success.mean:.2f} at {lat:g} ms (0 ms: {zero.success.mean:.2f})")
            if c.time_s.mean > 1.10 * zero.time_s.mean:
                reasons.append(f"time {c.time_s.mean:.2f} s at {lat:g} ms (0 ms: {zero.time_s.mean:.2f} s)")
            if c.profile_peak is None or not c.profile_peak.mean <= 1.5:
                peak = "-" if c.profile_peak is None else f"{c.profile_peak.mean:.2f}x"
                reasons.append(f"profile peak {peak} at {lat:g} ms")
            if lat >= GOAL_FROM_MS:
                for other in COMPARED:
                    o = cells.get(other, {}).get(lat)
                    if o is None:
                        reasons.append(f"{other} not evaluated at {lat:g} ms")
                        continue
                    if not c.time_s.mean < o.time_s.mean:
                        reasons.append(f"time not below {other}'s at {lat:g} ms")
                    if not c.sparc.mean > o.sparc.mean:
                        reasons.append(f"SPARC not above {other}'s at {lat:g} ms")
        verdict = "met" if not reasons else "not met: " + "; ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "")
        lines.append(f"- {VARIANTS[variant].label}: {verdict}")
    return lines


def report_text(cells: dict[str, dict[float, Cell]], latencies: list[float], missing: list[str], cfg: LatencyConfig,
                trials: dict[str, int]) -> str:
    lines = ["# Closed-loop latency sweep", "",
             f"Scenes: env.reset(seed) for seed {cfg.seed}..{cfg.seed + cfg.episodes - 1}, the same for every trial "
             "(seeds x scenes crossed); each cell is the mean [95% t interval of the crossed design] over the "
             "variant's trials and those scenes (docs/statistics.md). Time to success: seconds to the first "
             "success, a failed episode counted at its last frame. U_a / demo: commanded U_a over the scripted "
             "demonstrator's on the same scenes; obs U_a / demo the same on the observed joints. SPARC - demo: commanded SPARC minus the demonstrator's per scene "
             "(>= 0: no worse). Profile peak: the largest mean |second difference| around a chunk switch over the "
             "demonstrator's on the same frames (offsets -15..+15).", ""]
    if missing:
        lines += [f"Left out (no finished trial of their stage): {', '.join(missing)}.", ""]
    for variant, by_latency in cells.items():
        n = trials.get(variant, 0)
        lines += [f"## {VARIANTS[variant].label} ({n} trial{'' if n == 1 else 's'})", "",
                  "| latency (ms) | d | success | time to success (s) | U_a / demo | obs U_a / demo | SPARC - demo | profile peak |",
                  "|---|---|---|---|---|---|---|---|"]
        for lat in latencies:
            c = by_latency.get(lat)
            if c is None:
                lines.append(f"| {lat:g} | - | not evaluated | | | | | |")
                continue
            peak = "-" if c.profile_peak is None else f"{fmt_estimate(c.profile_peak)} @ {c.profile_peak_offset:+d}"
            lines.append(f"| {lat:g} | {c.committed if c.committed else '-'} | {fmt_estimate(c.success)} | {fmt_estimate(c.time_s)} | "
                         f"{c.u_a_ratio:.3g}x | {c.obs_u_a_ratio:.3g}x | {fmt_estimate(c.sparc)} | {peak} |")
        lines.append("")
    lines += ["## Goal", "", "One act_smooth variant whose success stays within 5 points and whose time to success stays "
              "within 10% of its own 0 ms figures at every latency, whose profile peak stays within 1.5x the "
              "demonstrator's, and which beats vanilla ACT's synchronous loop, the EMA filter and overlap blending "
              f"on time to success and SPARC at {GOAL_FROM_MS:g} ms (5 frames at 30 fps) and beyond (means).", "", *goal_lines(cells, latencies), "",
              "![latency curve](latency_curve.png)", ""]
    return "\n".join(lines)


def plot_curve(path: Path, cells: dict[str, dict[float, Cell]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [("success rate", lambda c: c.success), ("time to success (s)", lambda c: c.time_s),
              ("SPARC - demonstrator's", lambda c: c.sparc)]
    for ax, (title, get) in zip(axes, panels):
        for variant, by_latency in cells.items():
            lats = sorted(by_latency)
            est = [get(by_latency[lat]) for lat in lats]
            mean = np.array([e.mean for e in est])
            low = np.array([e.low for e in est])
            high = np.array([e.high for e in est])
            ax.plot(lats, mean, marker="o", label=VARIANTS[variant].label)
            ax.fill_between(lats, low, high, alpha=0.15)
        ax.set_xlabel("inference latency (ms)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def write_summary(cfg: LatencyConfig, jobs: list[Job], missing: list[str]) -> Path:
    latencies = parse_latencies(cfg.latencies_ms)
    root = Path(cfg.output_dir) / "latency"
    cells = summarize(jobs, record_reference(root, scene_seeds(cfg)))
    trials = {v: len({j.trial for j in jobs if j.variant == v}) for v in cells}
    payload = {
        "run": run_metadata(cfg, seed=cfg.seed),
        "latencies_ms": latencies,
        "missing_variants": missing,
        "variants": {v: {"label": VARIANTS[v].label, "trials": trials[v],
                         "latency": {f"{lat:g}": {"success": c.success.__dict__, "time_to_success_s": c.time_s.__dict__,
                                                  "u_a_ratio": c.u_a_ratio,
                                                  "obs_u_a_ratio": c.obs_u_a_ratio, "sparc_minus_demo": c.sparc.__dict__,
                                                  "profile_peak": None if c.profile_peak is None else c.profile_peak.__dict__,
                                                  "profile_peak_offset": c.profile_peak_offset,
                                                  "committed_actions": c.committed}
                                     for lat, c in sorted(by.items())}}
                     for v, by in cells.items()},
    }
    atomic_write_json(root / "summary.json", payload)
    if cells:
        plot_curve(root / "latency_curve.png", cells)
    report = root / "report.md"
    atomic_write_text(report, report_text(cells, latencies, missing, cfg, trials))
    return report


def run_latency_sweep(cfg: LatencyConfig) -> int:
    jobs, missing = plan_jobs(cfg)
    for name in missing:
        print(f"[latency] {name}: no finished trial of stage {VARIANTS[name].stage}; left out", flush=True)
    if cfg.dry_run:
        for job in jobs:
            state = "done" if job.metrics.is_file() else "to run"
            print(f"  {job.variant} {job.trial} {job.latency_ms:g} ms ({state}): {' '.join(job.args)}")
        print(f"{len(jobs)} evaluation(s), {sum(not j.metrics.is_file() for j in jobs)} to run; nothing started")
        return 0
    record_reference(Path(cfg.output_dir) / "latency", scene_seeds(cfg))
    failed = run_jobs(jobs, cfg.jobs)
    print(f"[latency] report: {write_summary(cfg, jobs, missing)}", flush=True)
    return 1 if failed else 0
