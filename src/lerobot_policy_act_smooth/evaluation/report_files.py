"""Result files of an evaluation: STEM_results.txt, STEM_metrics.json, STEM_metrics.csv.

Generic over the metric keys: an episode row holds the prediction's metrics under plain
keys (``U_v``, ``U_a``, ``mu_v``, ``spike``, ``spike_boundary_mean``, ``spike_other_mean``),
the ground truth's under ``truth_`` keys when there is a ground truth, ``mae`` when there
is one, and any other numbers (listed after the standard ones). Used by offline replay and
by closed-loop evaluation. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from lerobot_policy_act_smooth.evaluation.metrics import aggregate
from lerobot_policy_act_smooth.provenance import atomic_write_json, atomic_write_text

SMOOTHNESS_KEYS = ("U_v", "U_a", "mu_v")
SPIKE_KEYS = ("spike", "spike_boundary_mean", "spike_other_mean")


def result_paths(stem: str | Path) -> dict[str, Path]:
    """The three metric files written for an output stem (a path prefix, e.g. out/run1)."""
    stem = str(stem)
    return {
        "results": Path(f"{stem}_results.txt"),
        "json": Path(f"{stem}_metrics.json"),
        "csv": Path(f"{stem}_metrics.csv"),
    }


def fmt(value) -> str:
    """Numbers as the text report prints them (6 significant digits; the JSON holds full precision)."""
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _extra_keys(rows: list[dict]) -> list[str]:
    standard = set(SMOOTHNESS_KEYS) | set(SPIKE_KEYS) | {"mae", "episode"}
    standard |= {f"truth_{k}" for k in (*SMOOTHNESS_KEYS, *SPIKE_KEYS)}
    out: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in standard and k not in out and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(k)
    return out


def _block(has_truth: bool, has_mae: bool, extra: list[str], pm) -> list[str]:
    """Lines for one episode or for the aggregate; pm(key) formats a value (with '+- std' for the aggregate)."""
    lines = []
    for label, prefix in (("Predicted", ""), ("Truth", "truth_")) if has_truth else (("Predicted", ""),):
        parts = [f"{k}={pm(prefix + k)}" for k in SMOOTHNESS_KEYS]
        lines.append(f"  {label:<10} " + "  ".join(parts))
    for label, prefix in (("Predicted", ""), ("Truth", "truth_")) if has_truth else (("Predicted", ""),):
        lines.append(
            f"  Spike {label:<10} {pm(prefix + 'spike')}  "
            f"(boundary mean |a| {pm(prefix + 'spike_boundary_mean')}, "
            f"other mean |a| {pm(prefix + 'spike_other_mean')})"
        )
    if has_mae:
        lines.append(f"  MAE        {pm('mae')} deg")
    for k in extra:
        lines.append(f"  {k} = {pm(k)}")
    return lines


def format_results_text(per_episode: list[dict], agg: dict, title: str, header_lines: list[str] = ()) -> str:
    """The plain-text report: per episode Predicted and Truth U_v/U_a/mu_v, the spike with its
    two means and the MAE, then the mean +- std (ddof=0) across episodes."""
    has_truth = any("truth_U_a" in row for row in per_episode)
    has_mae = any("mae" in row for row in per_episode)
    extra = _extra_keys(per_episode)
    lines = [title, *header_lines, "Units: U_v deg^2/frame^2, U_a deg^2/frame^4, mu_v deg/frame, |a| deg/frame^2; spike = ratio of mean |a| (x).", ""]
    for row in per_episode:
        lines.append(f"Episode {row.get('episode', '?')}")
        lines += _block(has_truth, has_mae, extra, lambda k, row=row: fmt(row.get(k)))
        lines.append("")
    lines.append(f"Aggregate over {len(per_episode)} episodes (mean +- std, population std ddof=0)")
    lines += _block(has_truth, has_mae, extra, lambda k: f"{fmt(agg.get(k + '_mean'))} +- {fmt(agg.get(k + '_std'))}")
    return "\n".join(lines) + "\n"


def format_metrics_csv(per_episode: list[dict], agg: dict) -> str:
    """One row per episode, then a 'mean' and a 'std' row, one column per metric."""
    keys: list[str] = []
    for row in per_episode:
        for k in row:
            if k != "episode" and k not in keys:
                keys.append(k)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["episode", *keys])
    for row in per_episode:
        writer.writerow([row.get("episode", ""), *[repr(float(row[k])) if k in row else "" for k in keys]])
    for stat in ("mean", "std"):
        writer.writerow([stat, *[repr(float(agg[f"{k}_{stat}"])) if f"{k}_{stat}" in agg else "" for k in keys]])
    return buf.getvalue()


def write_metric_files(
    stem: str | Path,
    per_episode: list[dict],
    title: str,
    metadata: dict | None = None,
    header_lines: list[str] = (),
    extra_json: dict | None = None,
) -> dict:
    """Aggregate the episode rows and write STEM_results.txt, STEM_metrics.json, STEM_metrics.csv.

    per_episode: flat dicts of numbers, each with an ``episode`` index. metadata: run
    provenance (``provenance.run_metadata``), stored under ``run`` in the JSON. Returns the
    JSON object: ``{"aggregate", "episodes", "run", **extra_json}``.
    """
    agg = aggregate(per_episode)
    paths = result_paths(stem)
    payload = {"aggregate": agg, "episodes": per_episode, **(extra_json or {}), "run": metadata or {}}
    atomic_write_text(paths["results"], format_results_text(per_episode, agg, title, list(header_lines)))
    atomic_write_text(paths["csv"], format_metrics_csv(per_episode, agg))
    atomic_write_json(paths["json"], payload)
    return payload
