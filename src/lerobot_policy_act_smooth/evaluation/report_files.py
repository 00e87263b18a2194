"""Result files of an evaluation: STEM_results.txt, STEM_metrics.json, STEM_metrics.csv.

Generic over the metric keys: an episode row is a flat dict of numbers with an ``episode``
index. The smoothness metrics (``U_v``, ``U_a``, ``U_a_inside``, ``U_a_boundary``, ``mu_v``, ``spike``,
``spike_boundary_mean``, ``spike_other_mean``) come in groups told apart by a key prefix: offline replay has the
prediction's under plain keys and the ground truth's under ``truth_`` (plus ``mae``);
closed-loop evaluation has the observed joints' under ``obs_`` and the commanded actions'
under ``action_``. Any other numbers are listed after them. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lerobot_policy_act_smooth.evaluation.metrics import aggregate
from lerobot_policy_act_smooth.provenance import atomic_write_json, atomic_write_text

SMOOTHNESS_KEYS = ("U_v", "U_a", "mu_v", "U_a_inside", "U_a_boundary")
SPIKE_KEYS = ("spike", "spike_boundary_mean", "spike_other_mean")
# (label, key prefix) of the metric groups of offline replay.
REPLAY_GROUPS = (("Predicted", ""), ("Truth", "truth_"))


def _episode_heading(row: dict) -> str:
    return f"Episode {row.get('episode', '?')}"


@dataclass(frozen=True)
class TextLayout:
    """How STEM_results.txt presents the episode rows."""

    # (label, key prefix) of each metric group, in order; a group that no row has is left out.
    groups: tuple[tuple[str, str], ...] = REPLAY_GROUPS
    # The first line of an episode's block.
    heading: Callable[[dict], str] = _episode_heading
    # Further keys printed as "key = value" lines; None: every other numeric key of the rows.
    extra_keys: tuple[str, ...] | None = None
    # Lines after the aggregate block: footer(agg, rows).
    footer: Callable[[dict, list[dict]], list[str]] | None = None


def result_paths(stem: str | Path) -> dict[str, Path]:
    """The three metric files written for an output stem (a path prefix, e.g. out/run1)."""
    stem = str(stem)
    return {
        "results": Path(f"{stem}_results.txt"),
        "json": Path(f"{stem}_metrics.json"),
        "csv": Path(f"{stem}_metrics.csv"),
    }


def refuse_earlier_results(paths, error_cls: type[Exception]) -> None:
    """Raise ``error_cls`` naming the files if any of ``paths`` exists: finished results are never
    replaced unless the user asks for it (--overwrite=true)."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing:
        raise error_cls(
            f"results of an earlier run exist ({', '.join(existing)}): choose another --output "
            "or pass --overwrite=true to replace them"
        )


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


def _extra_keys(rows: list[dict], groups: tuple[tuple[str, str], ...]) -> list[str]:
    standard = {"mae", "episode"} | {prefix + k for _, prefix in groups for k in (*SMOOTHNESS_KEYS, *SPIKE_KEYS)}
    out: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in standard and k not in out and isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(k)
    return out


def _block(groups, has_mae: bool, extra: list[str], pm) -> list[str]:
    """Lines for one episode or for the aggregate; pm(key) formats a value (with '+- std' for the aggregate)."""
    lines = []
    for label, prefix in groups:
        lines.append(f"  {label:<10} " + "  ".join(f"{k}={pm(prefix + k)}" for k in SMOOTHNESS_KEYS))
    for label, prefix in groups:
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


def format_results_text(
    per_episode: list[dict], agg: dict, title: str, header_lines: list[str] = (), layout: TextLayout = TextLayout()
) -> str:
    """The plain-text report: per episode each group's U_v/U_a/mu_v (replay: Predicted and
    Truth), the spikes with their two means and the MAE if any, then the mean +- std (sample std, ddof=1)
    across episodes."""
    groups = [(label, p) for label, p in layout.groups if any(f"{p}U_a" in row for row in per_episode)]
    has_mae = any("mae" in row for row in per_episode)
    extra = list(layout.extra_keys) if layout.extra_keys is not None else _extra_keys(per_episode, layout.groups)
    lines = [title, *header_lines, "Units: U_v deg^2/frame^2, U_a deg^2/frame^4, mu_v deg/frame, |a| deg/frame^2; spike = ratio of mean |a| (x).", ""]
    for row in per_episode:
        lines.append(layout.heading(row))
        lines += _block(groups, has_mae, extra, lambda k, row=row: fmt(row.get(k)))
        lines.append("")
    lines.append(f"Aggregate over {len(per_episode)} episodes (mean +- std, sample std ddof=1)")
    lines += _block(groups, has_mae, extra, lambda k: f"{fmt(agg.get(k + '_mean'))} +- {fmt(agg.get(k + '_std'))}")
    if layout.footer is not None:
        lines += layout.footer(agg, per_episode)
    return "\n".join(lines) + "\n"


def format_metrics_csv(per_episode: list[dict], agg: dict) -> str:
    """One row per episode, then a 'mean' and a 'std' row, one column per metric (yes/no
    values as 1.0/0.0, so a mean is a rate)."""
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
    *,
    agg: dict | None = None,
    layout: TextLayout = TextLayout(),
    json_episodes: list[dict] | None = None,
) -> dict:
    """Write STEM_results.txt, STEM_metrics.csv and STEM_metrics.json.

    per_episode: flat dicts of numbers, each with an ``episode`` index. agg: their aggregate
    (default ``metrics.aggregate(per_episode)``). metadata: run provenance
    (``provenance.run_metadata``), stored under ``run`` in the JSON. json_episodes: the JSON's
    episode objects when they hold more than the rows (default the rows). Returns the JSON
    object: ``{"aggregate", "episodes", **extra_json, "run"}``.
    """
    agg = aggregate(per_episode) if agg is None else agg
    paths = result_paths(stem)
    episodes = per_episode if json_episodes is None else json_episodes
    payload = {"aggregate": agg, "episodes": episodes, **(extra_json or {}), "run": metadata or {}}
    atomic_write_text(paths["results"], format_results_text(per_episode, agg, title, list(header_lines), layout))
    atomic_write_text(paths["csv"], format_metrics_csv(per_episode, agg))
    atomic_write_json(paths["json"], payload)
    return payload
