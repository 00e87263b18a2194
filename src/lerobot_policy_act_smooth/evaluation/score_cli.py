"""`actsmooth-score`: the research plan's smoothness figures for any LeRobot dataset.

    actsmooth-score --dataset.root=data/rollout_so101 [--dataset.repo_id=local/rollout_so101] \
        [--chunk_log=chunks.jsonl | --chunk_every=30] [--output=results/rollout]

Per episode: U_v, U_a, mu_v of the recorded `action` column (evaluation/metrics.py), the
boundary spike at the chunk starts (the plan's +-2 and `spike_transition` over b-2 .. b+12),
SPARC and LDLJ at the recording's fps, and the boundary-locked profiles (`profile_acc`,
`profile_jerk`: lists in STEM_metrics.json only); the same for the observed joints (`obs_*`: the
`observation.state` entries named like the actions) when the names allow; success when the
recording has a success flag (the simulated robot's `success.pos` entry of `observation.state`). Chunk starts come from the
policy's chunk log (ACTSMOOTH_CHUNK_LOG, written during `lerobot-rollout --inference.type=rtc`)
or from a fixed period (`--chunk_every`, synchronous inference: the policy's n_action_steps);
without either, no spike is computed. The replan discontinuity is not available from a recording
(it holds the actions sent, not the chunks the policy predicted): `replan_mean` / `replan_max`
are NaN. Prints a table; with --output also writes
STEM_results.txt, STEM_metrics.json and STEM_metrics.csv (atomically; earlier results are kept
unless --overwrite=true).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.evaluation.command import run_command
from lerobot_policy_act_smooth.evaluation.metrics import (
    aggregate,
    boundary_profile_lists,
    smoothness_metrics,
)

REPLAN_NOTE = "replan discontinuity not available from a recording (no predicted chunks): replan_mean/replan_max are NaN"


class ScoreInputError(ValueError):
    """Bad input to actsmooth-score; the message names the fix."""


@dataclass
class ScoreDataset:
    # Local dataset folder (a recording by lerobot-rollout, lerobot-record or actsmooth-dataset)
    root: str | None = None
    # Dataset name; default local/<folder name>
    repo_id: str | None = None


@dataclass
class ScoreConfig:
    dataset: ScoreDataset = field(default_factory=ScoreDataset)
    # JSON-lines chunk log the policy wrote during the rollout (env ACTSMOOTH_CHUNK_LOG=<file>)
    chunk_log: str | None = None
    # Chunk starts every N frames instead (synchronous inference: N = the policy's n_action_steps); 0 = none
    chunk_every: int = 0
    # Name in observation.state whose value > 0.5 marks success (the simulated robot's flag)
    success_key: str = "success.pos"
    # Output stem: STEM_results.txt, STEM_metrics.json, STEM_metrics.csv; none = print only
    output: str | None = None
    # Replace the result files of an earlier run at the same --output (refused otherwise)
    overwrite: bool = False


def check_options(cfg: ScoreConfig) -> None:
    # Checked here, not in __post_init__: draccus would bury the message in its own error.
    if cfg.chunk_every < 0:
        raise ScoreInputError(f"--chunk_every={cfg.chunk_every} must be >= 0 (0 = no fixed chunk period)")
    if cfg.chunk_every and cfg.chunk_log:
        raise ScoreInputError("give either --chunk_log or --chunk_every, not both")


def boundaries_from_chunk_log(path: str | Path) -> dict[int, list[int]]:
    """Episode -> frames where a chunk after the episode's first starts, from the policy's chunk log.

    Each record's "frame" is the recording frame where that chunk's predicted actions start
    (rtc_prefix: one recorded frame per action sent); records without one are skipped.
    """
    frames: dict[int, set[int]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise ScoreInputError(f"cannot read --chunk_log={path}: {err.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            episode, call, frame = int(record["episode"]), int(record["call"]), record["frame"]
        except (ValueError, KeyError, TypeError):
            raise ScoreInputError(
                f"--chunk_log={path} line {number} is not a chunk record (JSON with episode, call and frame); "
                "pass the file named by ACTSMOOTH_CHUNK_LOG during the rollout"
            ) from None
        frames.setdefault(episode, set())
        if call > 0 and frame is not None:
            frames[episode].add(int(frame))
    return {episode: sorted(found) for episode, found in frames.items()}


def load_recording(cfg: ScoreConfig):
    """(DatasetEpisodes, success column or None, observed joint columns or None) of a scoreable dataset.

    The observed joints are the `observation.state` entries named like the action's entries
    (a robot's measured joint positions); None when the names do not allow the match."""
    root = cfg.dataset.root
    if root is None:
        raise ScoreInputError("no dataset given; pass --dataset.root=FOLDER (a LeRobot dataset)")
    if not (Path(root) / "meta" / "info.json").is_file():
        raise ScoreInputError(f"dataset not found: {root} has no meta/info.json; pass the folder of a LeRobot dataset")
    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    features = info.get("features", {})
    if "action" not in features:
        raise ScoreInputError(
            f"{root} has no 'action' feature (it has {', '.join(features) or 'none'}); actsmooth-score scores "
            "the recorded actions: pass a dataset written by lerobot-rollout, lerobot-record or actsmooth-dataset"
        )
    from lerobot_policy_act_smooth.evaluation.replay import DatasetEpisodes

    repo_id = cfg.dataset.repo_id or f"local/{Path(root).name}"
    try:
        data = DatasetEpisodes(repo_id, root)
    except Exception as err:  # offline: any failure means the folder is not a loadable dataset
        raise ScoreInputError(f"cannot load dataset {repo_id} (root {root}): {err}") from err
    names = list((features.get("observation.state") or {}).get("names") or [])
    success_index = names.index(cfg.success_key) if cfg.success_key in names else None
    action_names = list(features["action"].get("names") or [])
    joints = [names.index(n) for n in action_names] if action_names and set(action_names) <= set(names) else None
    return data, success_index, joints


def profile_lists(values: np.ndarray, boundaries: list[int], prefix: str) -> dict:
    """``{prefix}profile_speed`` / ``_acc`` / ``_jerk`` lists (:func:`metrics.boundary_profile_lists`)."""
    return boundary_profile_lists(values, boundaries, prefix)


def episode_states(data, episode: int) -> np.ndarray:
    """[T, S] observation.state of one episode."""
    record = data.dataset.meta.episodes[int(episode)]
    lo, hi = int(record["dataset_from_index"]), int(record["dataset_to_index"])
    rows = data.dataset.hf_dataset.select_columns(["observation.state"]).with_format("numpy")[lo:hi]
    return np.asarray(rows["observation.state"], dtype=np.float64)


def score(cfg: ScoreConfig) -> dict:
    """Score every episode; returns {"aggregate", "episodes", "settings"} (and writes files with --output)."""
    from lerobot_policy_act_smooth.evaluation.report_files import refuse_earlier_results, result_paths

    check_options(cfg)
    if cfg.output and not cfg.overwrite:
        refuse_earlier_results(result_paths(cfg.output).values(), ScoreInputError)
    data, success_index, joints = load_recording(cfg)
    logged = boundaries_from_chunk_log(cfg.chunk_log) if cfg.chunk_log else None
    rows, profiles = [], []
    for episode in range(data.num_episodes):
        actions = data.actions(episode)
        if len(actions) < 3:
            raise ScoreInputError(f"episode {episode} has {len(actions)} frames; the metrics need at least 3")
        if logged is not None:
            boundaries = [b for b in logged.get(episode, []) if 0 < b < len(actions)]
        elif cfg.chunk_every:
            boundaries = list(range(cfg.chunk_every, len(actions), cfg.chunk_every))
        else:
            boundaries = []
        row = {"episode": episode, "frames": len(actions), "chunks": len(boundaries) + 1}
        row.update(smoothness_metrics(actions, boundaries, fps=data.fps))
        row.update({"replan_mean": float("nan"), "replan_max": float("nan")})
        lists = profile_lists(actions, boundaries, "")
        if joints is not None or success_index is not None:
            states = episode_states(data, episode)
            if joints is not None:
                observed = smoothness_metrics(states[:, joints], boundaries, fps=data.fps)
                row.update({f"obs_{key}": value for key, value in observed.items()})
                lists.update(profile_lists(states[:, joints], boundaries, "obs_"))
            if success_index is not None:
                row["success"] = bool(np.any(states[:, success_index] > 0.5))
        rows.append(row)
        profiles.append(lists)
    settings = {
        "dataset": cfg.dataset.root,
        "fps": data.fps,
        "boundaries": "chunk_log" if logged is not None else f"every {cfg.chunk_every}" if cfg.chunk_every else "none",
        "success": cfg.success_key if success_index is not None else None,
        "observed_joints": joints is not None,
        "replan": REPLAN_NOTE,
    }
    agg = aggregate(rows)
    print(format_table(rows, agg))
    print(REPLAN_NOTE)
    json_episodes = [{**row, **lists} for row, lists in zip(rows, profiles)]
    if cfg.output:
        from lerobot_policy_act_smooth.evaluation.report_files import TextLayout, write_metric_files
        from lerobot_policy_act_smooth.provenance import run_metadata

        header = ["Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items())]
        write_metric_files(
            cfg.output, rows, f"Smoothness of {cfg.dataset.root}", run_metadata(config=cfg), header,
            extra_json={"settings": settings}, agg=agg,
            layout=TextLayout(groups=(("Commanded (action)", ""), ("Observed (observation.state joints)", "obs_"))),
            json_episodes=json_episodes,
        )
        print(f"-> {result_paths(cfg.output)['results']}")
    return {"aggregate": agg, "episodes": json_episodes, "settings": settings}


def format_table(rows: list[dict], agg: dict) -> str:
    columns = ["frames", "chunks", "U_v", "U_a", "mu_v", "spike", "spike_transition", "sparc", "ldlj"]
    columns += [c for c in ("obs_U_a", "obs_spike", "obs_sparc", "success") if c in rows[0]]
    lines = ["episode " + " ".join(f"{c:>10}" for c in columns)]
    for row in rows:
        lines.append(f"{row['episode']:>7} " + " ".join(f"{float(row[c]):>10.4g}" for c in columns))
    lines.append("   mean " + " ".join(f"{agg[c + '_mean']:>10.4g}" for c in columns))
    lines.append("    std " + " ".join(f"{agg[c + '_std']:>10.4g}" for c in columns))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_command(ScoreConfig, score, ScoreInputError, argv)


if __name__ == "__main__":
    sys.exit(main())
