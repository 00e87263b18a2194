"""report.md and PNGs of an output_dir, regenerated from the files on disk only.

Sections: stages (winner, rule), one table + loss-curve plot per swept stage (final loss, winner in
bold, diverged flagged), the results table (replay gt-prefix and self-chaining, closed loop, final
training loss) and a bar chart of U_a and boundary spike per run. Anything missing shows as "-"
with a note saying why.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
from typing import Any

from ..provenance import atomic_write_bytes, atomic_write_text
from .plan import Plan, TrialSpec, plan_from_dict
from .results_table import (
    HEADLINE,
    METRICS,
    SPLIT_METRICS,
    differences,
    episode_rows,
    fmt_difference,
    fmt_estimate,
    metric_grid,
    split_rows,
    variant_estimates,
    verdict_sentence,
)
from .selection import divergence_reason, final_loss
from .stages import stage_summary
from .boundary_report import goal_lines, margins_from_plan, measures_lines, plot_profiles, variant_profiles
from .statistics import mean_interval
from .trial import TRAINED_SUFFIX, extra_episodes, read_done, read_loss_csv

REPLAY_COLUMNS = [("U_a_mean", "U_a"), ("spike_mean", "spike"), ("mae_mean", "MAE")]
# obs mu_v sits next to obs U_a because a run that barely moves is smooth for the wrong reason.
CLOSED_LOOP_COLUMNS = [("obs_U_a_mean", "obs U_a"), ("obs_mu_v_mean", "obs mu_v"), ("action_U_a_mean", "act U_a"),
                       ("spike_mean", "spike"), ("success_rate", "success")]


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


class TrialRecord:
    """What the report knows about one trial folder."""

    def __init__(self, tdir: Path):
        self.dir = tdir
        self.spec = json.loads((tdir / "trial.json").read_text())
        self.done = read_done(tdir)
        self.loss_rows = read_loss_csv(tdir)
        self.losses = [r["loss"] for r in self.loss_rows]
        self.key = f"{self.spec['stage']}/{self.spec['name']}"
        self.label = self.spec.get("label", self.key)
        try:
            self.progress = json.loads((tdir / "progress.json").read_text())
        except (OSError, json.JSONDecodeError):
            self.progress = {}

    @property
    def status(self) -> str:
        if self.done:
            return "done"
        return "running or interrupted" if self.progress else "not started"

    def evaluation(self, name: str) -> tuple[dict | None, str | None]:
        """(aggregate, None) or (None, why it is missing)."""
        if not self.done:
            return None, f"trial not finished ({self.status})"
        ev = self.done.get("evaluations", {}).get(name)
        if ev is None:
            return None, f"{name} not part of this trial's evaluation"
        if ev.get("status") != "ok":
            return None, f"{name} {ev.get('status')}: {ev.get('error', '')}".strip()
        try:
            return json.loads((self.dir / ev["metrics"]).read_text()).get("aggregate", {}), None
        except (OSError, json.JSONDecodeError, KeyError) as e:
            return None, f"{name} metrics unreadable: {e}"


def load_trials(output_dir: Path, plan: Plan | None) -> dict[str, list[TrialRecord]]:
    stages = list(plan.stages) if plan else []
    for d in sorted(p for p in output_dir.iterdir() if p.is_dir()):
        if d.name not in stages and any(t.joinpath("trial.json").is_file() for t in d.iterdir() if t.is_dir()):
            stages.append(d.name)
    out = {}
    for stage in stages:
        sdir = output_dir / stage
        if not sdir.is_dir():
            out[stage] = []
            continue
        recs = [TrialRecord(t) for t in sorted(sdir.iterdir()) if (t / "trial.json").is_file()]
        if plan and stage in plan.stages and plan.stages[stage].sweep:
            order = {repr(v): i for i, v in enumerate(plan.stages[stage].sweep[1])}
            field = plan.stages[stage].sweep[0]
            recs.sort(key=lambda r: (r.spec.get("early", False), order.get(repr(r.spec["flags"].get(field)), 99)))
        out[stage] = recs
    return out


def _stage_json(output_dir: Path, stage: str) -> dict:
    try:
        return json.loads((output_dir / stage / "stage.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _plot_losses(path: Path, stage: str, recs: list[TrialRecord], winner: str | None) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(r, [x["step"] for x in r.loss_rows], r.losses) for r in recs if r.loss_rows]
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for r, steps, losses in curves:
        ax.plot(steps, losses, lw=2.2 if r.key == winner else 1.2, label=r.label + (" (winner)" if r.key == winner else ""))
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (log scale)")
    ax.set_title(f"{stage}: training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return True


def _save(fig, path: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _plot_bars(path: Path, rows: list[tuple[str, dict[str, dict | None]]]) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    series = [("gt_prefix", "U_a_mean", "spike_mean", "replay gt-prefix"),
              ("self_chaining", "U_a_mean", "spike_mean", "replay self-chaining"),
              ("closed_loop", "obs_U_a_mean", "spike_mean", "closed loop (observed)")]
    series = [s for s in series if any(r[1].get(s[0]) for r in rows)]
    if not rows or not series:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(rows) + 4), 4.5))
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    for ax, which, title in ((axes[0], 1, "U_a (deg²/frame⁴)"), (axes[1], 2, "boundary spike (x)")):
        for i, s in enumerate(series):
            vals = [(r[1].get(s[0]) or {}).get(s[which], np.nan) for r in rows]
            ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=s[3])
        ax.set_xticks(x, [r[0] for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        if which == 1:
            ax.set_yscale("log")  # closed-loop and replay U_a differ by orders of magnitude
    axes[1].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[1].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    _save(fig, path)
    return True


def write_report(output_dir: str | Path) -> Path:
    """Write output_dir/report.md (+ loss_<stage>.png, results_bars.png); return the report path."""
    output_dir = Path(output_dir)
    plan = None
    plan_note = ""
    try:
        raw = json.loads((output_dir / "plan.json").read_text())
        plan = plan_from_dict(raw["plan"], raw.get("source", "plan.json"))
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as e:
        plan_note = f"(plan.json unreadable: {e}; stages listed from the folders)"
    try:
        run = json.loads((output_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        run = {}
    window = plan.final_loss_window if plan else 5
    factor = plan.divergence_factor if plan else 3.0
    trials = load_trials(output_dir, plan)
    notes: list[str] = []
    lines = [f"# Experiment report: {plan.name if plan else output_dir.name}", ""]
    if plan:
        lines += [plan.description, ""] if plan.description else []
        sim = plan.dataset.generate is not None
        lines.append(f"- plan: `{plan.source}`; dataset `{plan.dataset.repo_id}`"
                     + (" (simulated: these are simulated-data figures)" if sim else ""))
        lines.append(f"- held-out episodes (never trained on): the last {plan.dataset.heldout_episodes} of the dataset"
                     + _episode_list(trials, "heldout_episodes"))
    else:
        lines.append(f"- {plan_note}")
    if run:
        lines.append(f"- last run started {run.get('created_utc')}, git {run.get('git_commit')}, "
                     f"lerobot {run.get('packages', {}).get('lerobot')}" + _finish_text(output_dir))
    lines.append(f"- final loss = mean of the last {window} logged training losses; diverged = final loss not finite, "
                 f"or > {factor:g}x the lowest logged loss, or > the first logged loss (not for a fine-tune, "
                 "which starts from a trained checkpoint)")
    lines.append("")
    header_end = len(lines)

    # Stages overview
    lines += ["## Stages", "", "| stage | trials done | winner | selected by | note |", "|---|---|---|---|---|"]
    winners: dict[str, str | None] = {}
    for stage, recs in trials.items():
        st = plan.stages.get(stage) if plan else None
        finals = [r for r in recs if not r.spec.get("early")] or recs
        sj = _stage_json(output_dir, stage)
        if st is not None and st.trains and finals and all(r.done for r in finals):
            summary = stage_summary(plan, stage, [TrialSpec.from_dict(r.spec) for r in finals], output_dir)
            winners[stage], rule, note = summary["winner"], summary["rule"], summary["note"]
        else:
            winners[stage], rule, note = sj.get("winner"), sj.get("rule", "-"), sj.get("note", "")
        n_done = sum(1 for r in recs if r.done)
        lines.append(f"| {stage} | {n_done}/{len(recs)} | {winners[stage] or '-'} | {rule} | {note} |")
    lines.append("")

    # Sweep tables
    for stage, recs in trials.items():
        st = plan.stages.get(stage) if plan else None
        if st is None or not st.sweep or not recs:
            continue
        field = st.sweep[0]
        lines += [f"## Sweep {stage}: {field}", "",
                  f"| {field.split('.')[-1]} | steps | final loss | lowest loss | status |", "|---|---|---|---|---|"]
        for r in recs:
            fl = final_loss(r.losses, window) if r.losses else math.nan
            reason = divergence_reason(r.losses, window, factor, _from_scratch(r)) if r.done else None
            value = _fmt(r.spec["flags"].get(field))
            status = f"DIVERGED ({reason})" if reason else r.status
            seed = r.spec.get("seed") if len(plan.stage_seeds(st)) > 1 else None
            cells = [value + (f" (seed {seed})" if seed is not None else "") + (" (early)" if r.spec.get("early") else ""),
                     str(r.spec.get("steps")), _fmt(fl),
                     _fmt(min(r.losses) if r.losses else None), status]
            if TrialSpec.from_dict(r.spec).variant_key == winners.get(stage):
                cells = [f"**{c}**" for c in cells[:3]] + cells[3:]
                cells[4] = "winner"
            lines.append("| " + " | ".join(cells) + " |")
        png = f"loss_{stage}.png"
        if _plot_losses(output_dir / png, stage, recs, winners.get(stage)):
            lines += ["", f"![training loss of {stage}]({png})"]
        lines.append("")

    # Results table
    rows_for_plot = []
    # Only the evaluations some trial asked for get columns.
    specs = [r.spec for recs in trials.values() for r in recs]
    evals_used = [(name, prefix, cols) for name, prefix, cols in (
        ("gt_prefix", "gt", REPLAY_COLUMNS), ("self_chaining", "sc", REPLAY_COLUMNS),
        ("closed_loop", "CL", CLOSED_LOOP_COLUMNS))
        if any((name in s.get("replay_modes", [])) or (name == "closed_loop" and s.get("closed_loop")) for s in specs)]
    header = ["run", "steps", "final loss"]
    for _, prefix, cols in evals_used:
        header += [f"{prefix} {c[1]}" for c in cols]
    if plan is not None:
        lines += interval_section(trials, plan, winners)
        lines[header_end:header_end] = profile_figure_lines(trials, plan, winners, output_dir)
    lines += ["## Results per trial", "",
              "gt = offline replay with ground-truth prefix, sc = self-chaining replay (the model's own chunks feed "
              "the prefix), both on the held-out episodes; CL = closed loop in the simulator with asynchronous-"
              "inference timing. U_a as mean ± std across episodes (deg²/frame⁴); spike = boundary |a| / other |a|; "
              "MAE in degrees; mu_v = mean |velocity| (deg/frame): a low U_a with a low mu_v means the arm "
              "barely moved.", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    truth = None
    for stage, recs in trials.items():
        st = plan.stages.get(stage) if plan else None
        if st is not None and not st.in_results:
            continue
        for r in recs:
            label = r.label
            if r.spec.get("early") and _superseded(r, recs):
                label = label.replace(" (early start)", "") + " (superseded early start)"
            cells = [label,
                     str(r.spec.get("steps") or "-"),
                     _fmt(final_loss(r.losses, window)) if r.losses and r.done else "-"]
            if r.done and r.spec.get("steps") and divergence_reason(r.losses, window, factor, _from_scratch(r)):
                cells[2] += " (diverged)"
            evals = {}
            for name, _, cols in evals_used:
                agg, why = r.evaluation(name)
                evals[name] = agg
                if agg is None:
                    mark = _note(notes, f"{r.label}: {why}")
                    cells += [f"-{mark}"] * len(cols)
                    continue
                if truth is None and name == "gt_prefix" and "truth_U_a_mean" in agg:
                    truth = agg
                for key, _ in cols:
                    v = agg.get(key)
                    s = _fmt(v)
                    if key.endswith("U_a_mean") and agg.get(key.replace("_mean", "_std")) is not None:
                        s += f" ± {_fmt(agg[key.replace('_mean', '_std')], 3)}"
                    cells.append(s)
            rows_for_plot.append((label, evals))
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if truth is not None:
        lines += [f"Ground truth on the held-out episodes: U_a {_fmt(truth.get('truth_U_a_mean'))} "
                  f"± {_fmt(truth.get('truth_U_a_std'), 3)}, spike {_fmt(truth.get('truth_spike_mean'))}.", ""]
    lines += trained_episodes_section(trials, plan)
    if _plot_bars(output_dir / "results_bars.png", rows_for_plot):
        lines += ["![U_a and boundary spike per run](results_bars.png)", ""]
    if notes:
        lines += ["### Notes", ""] + [f"{i + 1}. {n}" for i, n in enumerate(notes)] + [""]
    path = output_dir / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _from_scratch(r: TrialRecord) -> bool:
    """False for a fine-tune (it starts from another trial's weights, so its first loss is no bar)."""
    return not r.spec.get("init_checkpoint_of")


def _finish_text(output_dir: Path) -> str:
    """", finished after N s (complete)" from the last runs.jsonl line, when it records a finish."""
    try:
        last = json.loads((output_dir / "runs.jsonl").read_text().splitlines()[-1])
    except (OSError, IndexError, json.JSONDecodeError):
        return ""
    if "wall_s" not in last:
        return ""
    return f"; finished after {last['wall_s']} s wall ({'complete' if last.get('complete') else 'incomplete'})"


def _episode_list(trials: dict[str, list[TrialRecord]], key: str) -> str:
    """": episodes 27, 28, 29" from the trial specs (empty before any trial was scheduled)."""
    eps = next((r.spec.get(key) for recs in trials.values() for r in recs if r.spec.get(key)), None)
    return f": episodes {', '.join(map(str, eps))}" if eps else ""


def trained_episodes_section(trials: dict[str, list[TrialRecord]], plan: Plan | None) -> list[str]:
    """The replay results on the extra evaluation episodes ([evaluation] extra_episodes), apart
    from the held-out table: those episodes were trained on, so their figures flatter every model."""
    found = []
    for stage, recs in trials.items():
        st = plan.stages.get(stage) if plan else None
        if st is None or st.in_results:
            found += [(r, TrialSpec.from_dict(r.spec)) for r in recs if extra_episodes(TrialSpec.from_dict(r.spec))]
    if not found:
        return []
    modes = [m for m, _ in (("gt_prefix", "gt"), ("self_chaining", "sc")) if any(m in s.replay_modes for _, s in found)]
    prefix = {"gt_prefix": "gt", "self_chaining": "sc"}
    header = ["run", "episodes"] + [f"{prefix[m]} {name}" for m in modes for _, name in REPLAY_COLUMNS]
    lines = ["## Episodes that were trained on", "",
             "The same replay on the extra evaluation episodes ([evaluation] extra_episodes), which every training "
             "saw: for comparison with runs scored on those episodes (the research plan's earlier run used 0, 1, 2). "
             "They flatter each model; judge by the held-out table above.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r, spec in found:
        cells = [r.label, ", ".join(map(str, extra_episodes(spec)))]
        for mode in modes:
            agg, _ = r.evaluation(mode + TRAINED_SUFFIX)
            cells += [_fmt((agg or {}).get(key)) for key, _ in REPLAY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def profile_figure_lines(trials: dict[str, list[TrialRecord]], plan: Plan, winners: dict[str, str | None],
                         output_dir: Path) -> list[str]:
    """The figure to read first: every variant's mean |a| per frame offset from the chunk switch over
    the demonstrations' band on the same frames (boundary_profile.png)."""
    groups = [g for g in _variant_groups(trials, plan) if g[2]]
    if not groups:
        return []
    test = TrialSpec.from_dict(groups[0][2][0].spec).test_episodes
    profiles = variant_profiles(groups, test)
    baseline_stage = plan.evaluation.get("baseline", "baseline")
    baseline_key = winners.get(baseline_stage) or next((k for s, k, _ in groups if s == baseline_stage), None)
    labels = {key: _variant_label(recs, key) for _, key, recs in groups}
    speed = variant_profiles(groups, test, "profile_speed")
    if not plot_profiles(output_dir / "boundary_profile.png", profiles, labels, baseline_key, speed):
        return []
    return ["## Boundary profile: read this first", "",
            "Top: mean |second difference| of the executed actions (deg/frame², log scale) at every frame offset from a "
            "chunk switch, averaged over switches, episodes and seeds"
            + ("; bottom: the mean |first difference| (deg/frame), the speed" if speed else "") + "; the grey band is the demonstrations' on the "
            "same frames (self-chaining: the recorded demonstration of the same test episode; closed loop: the "
            "scripted demonstrator on the same scenes), with its 95% interval. A join that moves its correction "
            "away from the switch shows here as a hump after 0. Peak ratios and the goal are in the results "
            "section below.", "", "![boundary profile](boundary_profile.png)", ""]


def _variant_groups(trials: dict[str, list[TrialRecord]], plan: Plan) -> list[tuple[str, str, list[TrialRecord]]]:
    """(stage, variant key, finished seed trials) of every stage in the results, in plan order."""
    groups = []
    for stage, recs in trials.items():
        st = plan.stages.get(stage)
        if st is None or not st.in_results:
            continue
        by_variant: dict[str, list[TrialRecord]] = {}
        for r in recs:
            if r.spec.get("early") and _superseded(r, recs):
                continue
            by_variant.setdefault(TrialSpec.from_dict(r.spec).variant_key, []).append(r)
        for key, members in by_variant.items():
            groups.append((stage, key, [r for r in members if r.done]))
    return groups


def _variant_label(recs: list[TrialRecord], key: str) -> str:
    if not recs:
        return key
    label = re.sub(r" seed -?\d+", "", recs[0].label)
    return label


def interval_section(trials: dict[str, list[TrialRecord]], plan: Plan, winners: dict[str, str | None]) -> list[str]:
    """The headline table: mean [95% interval] over seeds x test episodes, paired differences from
    the baseline, one generated sentence per variant, and the baseline's convergence criteria."""
    all_groups = _variant_groups(trials, plan)
    groups = [g for g in all_groups if g[2]]
    unfinished = [key for _, key, recs in all_groups if not recs]
    if not groups:
        return []
    grids = {}
    for stage, key, recs in groups:
        spec = TrialSpec.from_dict(recs[0].spec) if recs else None
        test = spec.test_episodes if spec else []
        grids[key] = {m.label: metric_grid([episode_rows(r.dir, r.done, m.evaluation) for r in recs], m.key,
                                           None if m.evaluation == "closed_loop" else test)
                      for m in METRICS}
    used = [m for m in METRICS if any(g[m.label] is not None for g in grids.values())]
    if not used:
        return []
    baseline_stage = plan.evaluation.get("baseline", "baseline")
    baseline_key = winners.get(baseline_stage) or next((k for s, k, _ in groups if s == baseline_stage), None)
    labels = {key: _variant_label(recs, key) for _, key, recs in groups}
    n_seeds = {key: len(recs) for _, key, recs in groups}
    first = next((recs[0] for _, _, recs in groups if recs), None)
    spec = TrialSpec.from_dict(first.spec) if first else None
    lines = ["## Results with 95% intervals", "",
             f"Each cell: mean [95% interval] over the variant's training seeds and the reported episodes "
             f"(replay: the {len(spec.test_episodes) if spec else 0} test episodes "
             f"{_episodes_text(spec.test_episodes) if spec else ''}, never used to choose anything"
             + (f"; the {len(spec.validation_episodes)} validation episodes {_episodes_text(spec.validation_episodes)} "
                "chose the sweeps' winners" if spec and spec.validation_episodes else "")
             + (f"; closed loop: {spec.closed_loop_episodes} simulator episodes"
                if spec and any(m.evaluation == "closed_loop" for m in used) else "") + "). "
             "Intervals: t intervals of a crossed seeds x episodes design (docs/statistics.md). U_a in deg²/frame⁴, "
             "MAE in degrees, "
             "spike = boundary |a| / other |a|, success as a rate.", "",
             "| run | seeds | " + " | ".join(m.label for m in used) + " |", "|---|---|" + "---|" * len(used)]
    estimates = {key: variant_estimates(g) for key, g in grids.items()}
    for _, key, _ in groups:
        cells = [labels[key] + (" (baseline)" if key == baseline_key else ""), str(n_seeds[key])]
        cells += [fmt_estimate(estimates[key][m.label]) for m in used]
        lines.append("| " + " | ".join(cells) + " |")
    baseline_recs = next((recs for _, key, recs in groups if key == baseline_key and recs), [])
    # The demonstrations are the same for every seed: one seed's rows are the demonstrations' values.
    truth = _gt_prefix_grid(baseline_recs[:1], "truth_U_a")
    if truth is not None:
        lines += ["", f"Demonstrations on the same test episodes: U_a {fmt_estimate(mean_interval(truth))}."]
    if unfinished:
        lines += ["", f"Not in the table, no trial finished yet: {', '.join(unfinished)}."]
    lines.append("")
    if baseline_key is None or baseline_key not in grids:
        return lines + [f"(no baseline stage {baseline_stage!r} to compare with: set [evaluation] baseline)", ""]
    heads = [label for label in HEADLINE if any(m.label == label for m in used)]
    diff_rows, sentences = [], []
    diffs_by_key = {}
    for _, key, recs in groups:
        if key == baseline_key:
            continue
        shared = shared_checkpoint_order(recs, baseline_recs)
        if shared is None:
            diffs_by_key[key] = differences(grids[key], grids[baseline_key])
        else:  # row s of both from the same checkpoint: pair seeds too
            test = TrialSpec.from_dict(recs[0].spec).test_episodes
            aligned = {m.label: metric_grid([episode_rows(r.dir, r.done, m.evaluation) for r in shared], m.key,
                                            None if m.evaluation == "closed_loop" else test) for m in METRICS}
            diffs_by_key[key] = differences(grids[key], aligned, paired_seeds=True)
    for _, key, _ in groups:
        if key == baseline_key:
            continue
        diffs = diffs_by_key[key]
        diff_rows.append("| " + " | ".join([labels[key]] + [fmt_difference(diffs.get(h)) for h in heads]) + " |")
        sentences.append(verdict_sentence(labels[key], diffs, labels[baseline_key]))
    if diff_rows:
        paired = [labels[k] for _, k, recs in groups if k != baseline_key and shared_checkpoint_order(recs, baseline_recs)]
        lines += [f"Difference from the baseline ({labels[baseline_key]}), variant minus baseline, paired on the "
                  "same episodes" + (f" (and on seeds for {', '.join(paired)}: they evaluate or continue the baseline's "
                                     "own checkpoints)" if paired else "")
                  + ", with its 95% interval; an interval that contains 0 means not distinguishable.", "",
                  "| run | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)] + diff_rows + [""]
        lines += ["Reading (generated from the intervals):", ""] + [f"- {s}" for s in sentences] + [""]
    lines += convergence_lines(plan, trials, grids.get(baseline_key, {}), truth)
    test = spec.test_episodes if spec else []
    profiles = variant_profiles(groups, test)
    if not profiles:
        lines += ["(No boundary profile, transition spike, SPARC or LDLJ: these evaluations were scored before "
                  "those measures existed. `actsmooth-experiment rescore --output_dir=...` adds them from each "
                  "evaluation's trajectory files, then run the report again.)", ""]
    lines += measures_lines(groups, labels, test, profiles, variant_profiles(groups, test, "profile_speed"))
    lines += goal_lines(groups, labels, test, profiles, diffs_by_key, baseline_key, margins_from_plan(plan.evaluation))
    lines += u_a_split_lines(groups, labels, spec.test_episodes if spec else [], baseline_recs)
    return lines


def u_a_split_lines(groups: list[tuple[str, str, list[TrialRecord]]], labels: dict[str, str], test: list[int],
                    baseline_recs: list[TrialRecord]) -> list[str]:
    """U_a inside chunks and in the boundary windows, with intervals: a head can be smooth inside
    its chunks and still jump at the joins, or the other way round, and the whole-sequence U_a
    does not say which."""
    rows: dict[tuple[Path, str], list[dict] | None] = {}

    def rows_of(r: TrialRecord, evaluation: str):
        if (r.dir, evaluation) not in rows:
            rows[(r.dir, evaluation)] = split_rows(r.dir, r.done, evaluation)
        return rows[(r.dir, evaluation)]

    table = []
    for _, key, recs in groups:
        cells = []
        for m in SPLIT_METRICS:
            grid = metric_grid([rows_of(r, m.evaluation) for r in recs], m.key,
                               None if m.evaluation == "closed_loop" else test)
            cells.append(fmt_estimate(mean_interval(grid)) if grid is not None else "-")
        if any(c != "-" for c in cells):
            table.append("| " + " | ".join([labels[key], *cells]) + " |")
    if not table:
        return []
    lines = ["### Where the U_a sits: inside chunks and at the joins", "",
             "U_a (deg²/frame⁴) over the accelerations inside chunks (every +-2-frame boundary window left out) "
             "and over the boundary windows alone, mean [95% interval] over the same seeds and episodes as above. "
             "Evaluations scored before this split existed are rescored from their trajectory files, and used "
             "only where those files reproduce the stored U_a and spike exactly.", ""]
    demos = metric_grid([rows_of(r, "self_chaining") for r in baseline_recs[:1]], "truth_U_a_inside", test)
    demos_b = metric_grid([rows_of(r, "self_chaining") for r in baseline_recs[:1]], "truth_U_a_boundary", test)
    if demos is not None and demos_b is not None:
        lines += [f"Demonstrations on the same frames (the baseline's self-chaining boundaries): inside "
                  f"{fmt_estimate(mean_interval(demos))}, boundary windows {fmt_estimate(mean_interval(demos_b))}.", ""]
    lines += ["| run | " + " | ".join(m.label for m in SPLIT_METRICS) + " |", "|---|" + "---|" * len(SPLIT_METRICS)]
    return lines + table + [""]


def shared_checkpoint_order(recs: list[TrialRecord], baseline_recs: list[TrialRecord]) -> list[TrialRecord] | None:
    """The baseline trials in the order of ``recs`` when every one of ``recs`` evaluates or fine-tunes
    a distinct baseline trial's checkpoint (so row s of both grids shares training randomness);
    None for an independently trained variant."""
    # Matched by stage and trial folder name, not by the absolute path trial.json holds: an
    # output_dir copied off the cluster or moved still evaluates the same baseline trials.
    by_trial = {(r.spec["stage"], r.spec["name"]): r for r in baseline_recs}
    order = []
    for r in recs:
        source = r.spec.get("evaluate_checkpoint_of") or r.spec.get("init_checkpoint_of")
        match = by_trial.get(Path(source).parts[-2:]) if source else None
        if match is None or match in order:
            return None
        order.append(match)
    return order if order else None


def _episodes_text(episodes: list[int]) -> str:
    if not episodes:
        return ""
    if episodes == list(range(episodes[0], episodes[-1] + 1)) and len(episodes) > 2:
        return f"({episodes[0]}..{episodes[-1]})"
    return "(" + ", ".join(map(str, episodes)) + ")"


def _gt_prefix_grid(recs: list[TrialRecord], key: str):
    """[seeds, test episodes] of one gt-prefix replay column of these (finished) trials, or None."""
    if not recs:
        return None
    test = TrialSpec.from_dict(recs[0].spec).test_episodes
    return metric_grid([episode_rows(r.dir, r.done, "gt_prefix") for r in recs], key, test)


def convergence_lines(plan: Plan, trials: dict[str, list[TrialRecord]], g: dict, truth) -> list[str]:
    """The baseline (its metric grids `g`, the demonstrations' U_a grid `truth`) against the
    convergence criteria of docs/experiments.md."""
    out = ["### Is the baseline converged?", ""]
    success = g.get("CL success")
    if success is not None:
        est = mean_interval(success)
        out.append(f"- closed-loop success {est.mean:.0%} over {success.shape[1]} episodes x {success.shape[0]} seeds "
                   f"(criterion >= 90% over >= 20 episodes): "
                   + ("met" if est.mean >= 0.9 and success.shape[1] >= 20 else "NOT met"))
    ua = g.get("gt U_a")
    if ua is not None and truth is not None:
        ratio = float(np.nanmean(ua)) / float(np.nanmean(truth))
        out.append(f"- gt-prefix U_a {ratio:.2f}x the demonstrations' on the same episodes (criterion <= 3x): "
                   + ("met" if ratio <= 3 else "NOT met"))
    reference = plan.evaluation.get("convergence_reference")
    ref = _gt_prefix_grid([r for r in trials.get(reference, []) if r.done], "mae") if reference else None
    mae = g.get("gt MAE")
    if mae is not None and ref is not None:
        gain = 1.0 - float(np.nanmean(mae)) / float(np.nanmean(ref))
        out.append(f"- gt-prefix MAE {np.nanmean(mae):.3g} deg after the full run vs {np.nanmean(ref):.3g} deg after half "
                   f"the steps ({reference}): doubling the training improved it by {gain:.1%} (criterion < 5%): "
                   + ("met" if gain < 0.05 else "NOT met"))
    elif reference:
        out.append(f"- MAE flattening: the half-length reference stage {reference!r} has no gt-prefix results yet")
    return out + [""] if len(out) > 2 else []


def _superseded(r: TrialRecord, recs: list[TrialRecord]) -> bool:
    base = r.spec["name"][: -len(".early")]
    return any(o.spec["name"] == base for o in recs)


def _note(notes: list[str], text: str) -> str:
    if text not in notes:
        notes.append(text)
    return f" [{notes.index(text) + 1}]"
