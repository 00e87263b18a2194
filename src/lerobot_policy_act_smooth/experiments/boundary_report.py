"""The report's boundary sections (issue 17): the boundary-locked profile against the demonstrations'
(figure and peak ratio), the movement-smoothness measures with intervals, and the goal table.

Every figure compares a policy with the demonstrations on the same frames: in replay the recorded
demonstration of the same test episode at the policy's own chunk switches (``truth_`` keys), in
closed loop the scripted demonstrator run on the same simulator scene, read at the policy's switch
frames (``demo_action_`` keys). Each cell of a [seeds, episodes] grid is one episode of one seed;
intervals are statistics.py's crossed-design t intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..provenance import atomic_write_bytes
from .results_table import episode_rows, fmt_difference, fmt_estimate, metric_grid, seed_episode_cells
from .statistics import Estimate, difference_interval, mean_interval, non_inferior

PROFILE_OFFSETS = np.arange(-15, 16)
GOAL_PROFILE_RATIO = 1.5
GOAL_U_A_RATIO = 1.5


@dataclass(frozen=True)
class Setting:
    """Where a variant is judged: an evaluation, the key prefix of the policy's own values and the
    prefix of the demonstrations' values on the same frames."""

    evaluation: str
    prefix: str
    reference: str
    label: str
    short: str


SETTINGS = (
    Setting("self_chaining", "", "truth_", "self-chaining replay (test episodes)", "sc"),
    Setting("closed_loop", "action_", "demo_action_", "closed loop, commanded actions (same scenes)", "CL act"),
)


@dataclass(frozen=True)
class Margin:
    """A non-inferiority margin of the plan file: variant - baseline must stay on the good side."""

    label: str  # a results-table label: "gt MAE", "sc MAE", "CL success"
    margin: float
    lower_is_better: bool


DEFAULT_MARGINS = {"gt MAE": 0.25, "sc MAE": 0.25, "CL success": -0.05}
MARGIN_DIRECTIONS = {"gt MAE": True, "sc MAE": True, "CL success": False}


def margins_from_plan(evaluation: dict) -> list[Margin]:
    """The plan's ``[evaluation] noninferiority`` table (checked when the plan is loaded)."""
    table = evaluation.get("noninferiority") or DEFAULT_MARGINS
    return [Margin(label, float(value), MARGIN_DIRECTIONS[label]) for label, value in table.items()]


def check_margins(table) -> list[str]:
    """Problems of an ``[evaluation] noninferiority`` table: unknown labels, margins of the wrong sign."""
    if not isinstance(table, dict):
        return [f"[evaluation] noninferiority must be a table of metric = margin, got {table!r}"]
    errors = []
    for label, value in table.items():
        if label not in MARGIN_DIRECTIONS:
            errors.append(f"[evaluation] noninferiority: unknown metric {label!r} (use {', '.join(MARGIN_DIRECTIONS)})")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            errors.append(f"[evaluation] noninferiority.{label} must be a number, got {value!r}")
        elif MARGIN_DIRECTIONS[label] and value <= 0:
            errors.append(f"[evaluation] noninferiority.{label} = {value}: lower is better for {label}, so the margin "
                          f"(how much worse is still acceptable) must be > 0, e.g. {DEFAULT_MARGINS[label]}")
        elif not MARGIN_DIRECTIONS[label] and value >= 0:
            errors.append(f"[evaluation] noninferiority.{label} = {value}: higher is better for {label}, so the margin "
                          f"must be < 0, e.g. {DEFAULT_MARGINS[label]}")
    return errors


# -- grids ------------------------------------------------------------------------------------


def _rows(recs, evaluation: str) -> list[list[dict] | None]:
    return [episode_rows(r.dir, r.done, evaluation) for r in recs]


def _episodes(setting: Setting, test: list[int]) -> list[int] | None:
    return None if setting.evaluation == "closed_loop" else test


def profile_grid(seed_rows: list[list[dict] | None], key: str, episodes: list[int] | None) -> np.ndarray | None:
    """[seeds, episodes, offsets] of a per-episode profile list; None unless every cell has it."""
    cells = seed_episode_cells(seed_rows, key, episodes)
    if cells is None:
        return None
    grid = np.asarray([[[math.nan if v is None else float(v) for v in profile] for profile in row] for row in cells],
                      dtype=np.float64)
    return grid if grid.ndim == 3 and grid.shape[2] == len(PROFILE_OFFSETS) else None


@dataclass
class ProfileSummary:
    """One variant's profile in one setting: mean |a| per offset, the demonstrations' on the same
    frames, the ratio per offset with intervals, and its peak."""

    mean: np.ndarray  # [offsets] deg/frame^2
    reference: np.ndarray  # [offsets]
    reference_band: tuple[np.ndarray, np.ndarray]  # interval of the reference per offset
    ratio: list[Estimate]  # per offset: cells' profile / the pooled reference
    peak_offset: int
    peak: Estimate


def summarize_profile(policy: np.ndarray, reference: np.ndarray) -> ProfileSummary | None:
    """policy, reference: [S, E, O] profiles of the same cells. The ratio at offset o is each
    cell's value over the reference's mean at o (pooled over the cells: a per-episode reference of
    a few switches is too noisy to divide by); its mean and interval are the crossed-design ones."""
    ref_mean = np.nanmean(reference.reshape(-1, reference.shape[2]), axis=0)
    if not np.isfinite(ref_mean).any():
        return None
    ratios, bands_low, bands_high = [], [], []
    for o in range(policy.shape[2]):
        ref_est = mean_interval(reference[:, :, o]) if np.isfinite(reference[:, :, o]).any() else None
        bands_low.append(ref_est.low if ref_est else math.nan)
        bands_high.append(ref_est.high if ref_est else math.nan)
        if ref_mean[o] > 0 and np.isfinite(policy[:, :, o]).any():
            ratios.append(mean_interval(policy[:, :, o] / ref_mean[o]))
        else:
            ratios.append(Estimate(math.nan, math.nan, math.nan))
    means = np.array([r.mean for r in ratios])
    if not np.isfinite(means).any():
        return None
    peak = int(np.nanargmax(means))
    return ProfileSummary(np.nanmean(policy.reshape(-1, policy.shape[2]), axis=0), ref_mean,
                          (np.array(bands_low), np.array(bands_high)), ratios, int(PROFILE_OFFSETS[peak]), ratios[peak])


def variant_profiles(groups, test: list[int], kind: str = "profile_acc") -> dict[tuple[str, str], ProfileSummary]:
    """{(variant key, setting short name): summary} of one profile (``profile_acc``, ``profile_speed``,
    ``profile_jerk``) for every variant and setting that has it."""
    out = {}
    for _, key, recs in groups:
        for setting in SETTINGS:
            rows = _rows(recs, setting.evaluation)
            policy = profile_grid(rows, setting.prefix + kind, _episodes(setting, test))
            reference = profile_grid(rows, setting.reference + kind, _episodes(setting, test))
            if policy is None or reference is None:
                continue
            summary = summarize_profile(policy, reference)
            if summary is not None:
                out[(key, setting.short)] = summary
    return out


# -- the figure -------------------------------------------------------------------------------


def plot_profiles(path: Path, profiles: dict, labels: dict[str, str], baseline_key: str | None,
                  speed: dict | None = None) -> bool:
    """One panel per setting: each variant's mean |a| per offset from the chunk switch, over the
    demonstrations' band on the same frames (the baseline's; its 95% interval); with ``speed``
    (the same summaries of profile_speed) a second row of the mean speed."""
    settings = [s for s in SETTINGS if any(k[1] == s.short for k in profiles)]
    if not settings:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(profiles, "mean |second difference| (deg/frame², log)", True)]
    if speed:
        rows.append((speed, "mean |first difference| (deg/frame)", False))
    keys = list(dict.fromkeys(key for key, _ in profiles))
    colors = {key: plt.get_cmap("tab10")(i % 10) for i, key in enumerate(keys)}  # one colour per variant in every panel
    fig, axes = plt.subplots(len(rows), len(settings), figsize=(6.5 * len(settings), 4.4 * len(rows) + 0.8),
                             squeeze=False)
    for (summaries, ylabel, log), axes_row in zip(rows, axes):
        for ax, setting in zip(axes_row, settings):
            _plot_panel(ax, [(key, p) for (key, short), p in summaries.items() if short == setting.short],
                        labels, baseline_key, ylabel, log, setting.label, colors)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines() + ax.collections if not h.get_label().startswith("_")}
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(4, len(handles)), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return True


LOG_FLOOR = 1e-3  # deg/frame^2: a join head's exactly-zero acceleration at the switch is drawn on the floor


def _plot_panel(ax, members, labels, baseline_key, ylabel: str, log: bool, title: str, colors: dict) -> None:
    if not members:
        ax.set_visible(False)
        return
    band_from = next((p for key, p in members if key == baseline_key), members[0][1])
    low, high = band_from.reference_band
    ax.fill_between(PROFILE_OFFSETS, low, high, color="0.75", alpha=0.7, label="demonstrations, 95% interval")
    ax.plot(PROFILE_OFFSETS, band_from.reference, color="0.35", lw=1.2, ls="--")
    for key, p in members:
        ax.plot(PROFILE_OFFSETS, np.maximum(p.mean, LOG_FLOOR) if log else p.mean, color=colors.get(key),
                lw=2.0 if key == baseline_key else 1.3, label=labels.get(key, key) + (" (baseline)" if key == baseline_key else ""))
    ax.axvline(0, color="k", lw=0.6)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=LOG_FLOOR * 0.8)
    ax.set_xlabel("frame offset from the chunk switch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


# -- the tables -------------------------------------------------------------------------------

# (key, label, higher is smoother): per-episode scalars of both the policy and the reference.
MEASURES = (
    ("spike", "spike ±2 (plan's)", False),
    ("spike_transition", "transition spike", False),
    ("sparc", "SPARC", True),
    ("ldlj", "LDLJ", True),
)


def _grid(recs, setting: Setting, key: str, test: list[int]) -> np.ndarray | None:
    return metric_grid(_rows(recs, setting.evaluation), key, _episodes(setting, test))


SWITCH_OFFSETS = range(-2, 3)  # "at the switch", for the speed: the frames of the plan's spike window


def slowest_near_switch(summary: ProfileSummary) -> tuple[Estimate, int] | None:
    """The lowest mean speed ratio (variant / demonstrations) at offsets -2..+2 and its offset."""
    at = [(summary.ratio[o - PROFILE_OFFSETS[0]], o) for o in SWITCH_OFFSETS]
    at = [(e, o) for e, o in at if math.isfinite(e.mean)]
    return min(at, key=lambda eo: eo[0].mean) if at else None


def measures_lines(groups, labels: dict[str, str], test: list[int], profiles: dict, speed: dict | None = None) -> list[str]:
    """Per setting: profile peak ratio, the spikes, SPARC, LDLJ and the replan discontinuity per
    variant, mean [95% interval], and the demonstrations' own on the same frames."""
    lines = []
    for setting in SETTINGS:
        rows = []
        for _, key, recs in groups:
            p = profiles.get((key, setting.short))
            cells = [f"{fmt_estimate(p.peak)} @ {p.peak_offset:+d}" if p else "-"]
            slow = slowest_near_switch(speed[(key, setting.short)]) if speed and (key, setting.short) in speed else None
            cells.append(f"{fmt_estimate(slow[0])} @ {slow[1]:+d}" if slow else "-")
            for measure, _, _ in MEASURES:
                grid = _grid(recs, setting, setting.prefix + measure, test)
                cells.append(fmt_estimate(mean_interval(grid)) if grid is not None else "-")
            grid = _grid(recs, setting, "replan_mean", test)
            cells.append(fmt_estimate(mean_interval(grid)) if grid is not None else "-")
            if any(c != "-" for c in cells):
                rows.append("| " + " | ".join([labels[key], *cells]) + " |")
        if not rows:
            continue
        demo_cells = ["1 (reference)", "1 (reference)"]
        first = next(recs for _, _, recs in groups if recs)
        for measure, _, _ in MEASURES:
            grid = _grid(first[:1], setting, setting.reference + measure, test)
            demo_cells.append(fmt_estimate(mean_interval(grid)) if grid is not None else "-")
        demo_cells.append("-")
        lines += [f"#### {setting.label}", "",
                  "| run | profile peak / demos @ offset | speed at switch / demos | " + " | ".join(m[1] for m in MEASURES)
                  + " | replan (deg) |", "|---|---|---|" + "---|" * (len(MEASURES) + 1), *rows,
                  "| demonstrations, same frames | " + " | ".join(demo_cells) + " |", ""]
    if not lines:
        return []
    return ["### Boundary measures", "",
            "Profile peak: the largest, over offsets -15..+15 from the chunk switch, of the variant's mean |second "
            "difference| over the demonstrations' on the same frames (interval at that offset). Speed at switch: the lowest, "
            "over offsets -2..+2, of the variant's mean |first difference| over the demonstrations' (a join that is "
            "smooth in acceleration can still slow the arm at every switch). Spike ±2: the plan's "
            "boundary spike, kept for comparison with the earlier run; a prefix-join head passes it by construction, "
            "because its correction lands at +3..+10. Transition spike: the same ratio over the window -2..+12, which "
            "covers the longest transition in the plans (join horizon 10, crossfade 10). SPARC (spectral arc length) "
            "and LDLJ (log dimensionless jerk): per episode on the joint speed, closer to 0 = smoother for both. "
            "Replan: at each chunk switch the largest |new chunk - old chunk| over the frames both cover (how much "
            "the plan changes, apart from how smoothly it is executed; '-' where chunks do not overlap). "
            "Mean [95% interval] over seeds x episodes.", "", *lines]


def _reference_difference(recs, setting: Setting, key: str, test: list[int]) -> Estimate | None:
    """variant - demonstrations on the same cells (the same seeds' episodes: paired on both)."""
    policy = _grid(recs, setting, setting.prefix + key, test)
    reference = _grid(recs, setting, setting.reference + key, test)
    if policy is None or reference is None:
        return None
    return difference_interval(policy, reference, paired_seeds=True)


def goal_lines(groups, labels: dict[str, str], test: list[int], profiles: dict, diffs_by_key: dict,
               baseline_key: str | None, margins: list[Margin]) -> list[str]:
    """The methods' goal against the demonstrations: profile peak <= 1.5x theirs at every offset,
    U_a <= 1.5x theirs, SPARC and LDLJ no worse than theirs (means), in self-chaining replay and
    closed loop (commanded); MAE and closed-loop success non-inferior to the baseline at the plan's
    margins (the whole paired interval on the good side of the margin)."""
    if not profiles:
        return []
    head = []
    for setting in SETTINGS:
        head += [f"{setting.short} profile peak", f"{setting.short} U_a / demos", f"{setting.short} SPARC, LDLJ vs demos"]
    head += [f"{m.label} vs baseline (margin {m.margin:+g})" for m in margins]
    out = ["### The methods' goal, judged against the demonstrations", "",
           f"Goal: in self-chaining replay and in closed loop (commanded actions), the boundary profile at most "
           f"{GOAL_PROFILE_RATIO}x the demonstrations' at every offset, U_a at most {GOAL_U_A_RATIO}x theirs on the same "
           "frames (closed loop: the demonstrator on the same scenes), SPARC and LDLJ no worse than theirs (means); "
           "and non-inferior to the baseline: the whole 95% paired interval of variant - baseline inside the margin "
           "(an interval that is merely wide does not pass). The transition spike and the replan discontinuity are "
           "reported above, not thresholds: a policy far smoother than the demonstrations inside its chunks has a "
           "high self-relative spike even where every join is gentler than a human's.", "",
           "| run | " + " | ".join(head) + " | goal |", "|---|" + "---|" * (len(head) + 1)]
    for _, key, recs in groups:
        checks, cells = [], []
        for setting in SETTINGS:
            p = profiles.get((key, setting.short))
            if p is None:
                cells += ["-", "-", "-"]
                checks.append(False)
                continue
            worst = max(r.mean for r in p.ratio if math.isfinite(r.mean))
            cells.append(f"{worst:.3g}x @ {p.peak_offset:+d}")
            checks.append(worst <= GOAL_PROFILE_RATIO)
            ua = _grid(recs, setting, setting.prefix + "U_a", test)
            ref = _grid(recs, setting, setting.reference + "U_a", test)
            if ua is None or ref is None:
                cells.append("-")
                checks.append(False)
            else:
                ratio = float(np.nanmean(ua)) / float(np.nanmean(ref))
                cells.append(f"{ratio:.3g}x")
                checks.append(ratio <= GOAL_U_A_RATIO)
            words = []
            for measure in ("sparc", "ldlj"):
                diff = _reference_difference(recs, setting, measure, test)
                if diff is None or not math.isfinite(diff.mean):
                    words.append("-")
                    checks.append(False)
                    continue
                words.append(f"{diff.mean:+.2g}")
                checks.append(diff.mean >= 0.0)
            cells.append(", ".join(words))
        for m in margins:
            if key == baseline_key:
                cells.append("(baseline)")
                continue
            diff = diffs_by_key.get(key, {}).get(m.label)
            if diff is None or not math.isfinite(diff.mean):
                cells.append("-")
                checks.append(False)
                continue
            ok = non_inferior(diff, m.margin, m.lower_is_better)
            cells.append(f"{fmt_difference(diff)}: {'non-inferior' if ok else 'not shown'}")
            checks.append(ok)
        out.append("| " + " | ".join([labels[key], *cells, "met" if all(checks) else "not met"]) + " |")
    return out + ["", "SPARC, LDLJ vs demos: mean of variant - demonstrations on the same episodes (>= 0: no worse).", ""]
