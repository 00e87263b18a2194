"""report.md and PNGs of an output_dir, regenerated from the files on disk only.

Sections: stages (winner, rule), one table + loss-curve plot per swept stage (final loss, winner in
bold, diverged flagged), the results table (replay gt-prefix and self-chaining, closed loop, final
training loss) and a bar chart of U_a and boundary spike per run. Anything missing shows as "-"
with a note saying why.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..provenance import atomic_write_bytes, atomic_write_text
from .plan import Plan, plan_from_dict
from .selection import Candidate, divergence_reason, final_loss, select_winner
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
                     f"lerobot {run.get('packages', {}).get('lerobot')}")
    lines.append(f"- final loss = mean of the last {window} logged training losses; diverged = final loss not finite, "
                 f"or > {factor:g}x the lowest logged loss, or > the first logged loss")
    lines.append("")

    # Stages overview
    lines += ["## Stages", "", "| stage | trials done | winner | selected by | note |", "|---|---|---|---|---|"]
    winners: dict[str, str | None] = {}
    for stage, recs in trials.items():
        st = plan.stages.get(stage) if plan else None
        finals = [r for r in recs if not r.spec.get("early")] or recs
        sj = _stage_json(output_dir, stage)
        if st is not None and st.trains and finals and all(r.done for r in finals):
            sel = select_winner([Candidate(r.key, r.losses, _metrics(r)) for r in finals], st.select, window, factor)
            winners[stage], rule, note = sel.winner, sel.rule_used, sel.note
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
            reason = divergence_reason(r.losses, window, factor) if r.done else None
            value = _fmt(r.spec["flags"].get(field))
            status = f"DIVERGED ({reason})" if reason else r.status
            cells = [value + (" (early)" if r.spec.get("early") else ""), str(r.spec.get("steps")), _fmt(fl),
                     _fmt(min(r.losses) if r.losses else None), status]
            if r.key == winners.get(stage):
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
    lines += ["## Results", "",
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
            if r.done and r.spec.get("steps") and divergence_reason(r.losses, window, factor):
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


def _episode_list(trials: dict[str, list[TrialRecord]], key: str) -> str:
    """": episodes 27, 28, 29" from the trial specs (empty before any trial was scheduled)."""
    eps = next((r.spec.get(key) for recs in trials.values() for r in recs if r.spec.get(key)), None)
    return f": episodes {', '.join(map(str, eps))}" if eps else ""


def trained_episodes_section(trials: dict[str, list[TrialRecord]], plan: Plan | None) -> list[str]:
    """The replay results on the extra evaluation episodes ([evaluation] extra_episodes), apart
    from the held-out table: those episodes were trained on, so their figures flatter every model."""
    from .plan import TrialSpec

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


def _metrics(r: TrialRecord) -> dict[str, float]:
    out = {}
    for name in ("gt_prefix", "self_chaining", "closed_loop"):
        agg, _ = r.evaluation(name)
        for k, v in (agg or {}).items():
            if isinstance(v, (int, float)):
                out[f"{name}.{k}"] = float(v)
    return out


def _superseded(r: TrialRecord, recs: list[TrialRecord]) -> bool:
    base = r.spec["name"][: -len(".early")]
    return any(o.spec["name"] == base for o in recs)


def _note(notes: list[str], text: str) -> str:
    if text not in notes:
        notes.append(text)
    return f" [{notes.index(text) + 1}]"
