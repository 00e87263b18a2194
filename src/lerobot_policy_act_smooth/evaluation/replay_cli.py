"""`actsmooth-replay`: offline replay evaluation of a checkpoint on recorded episodes.

    actsmooth-replay --policy.path=outputs/train/run/checkpoints/last/pretrained_model \
        --dataset.repo_id=local/so101_sim --dataset.root=data/so101_sim \
        --episodes=0,1,2 --mode=gt_prefix --output=results/run_gt

The research plan's spellings work as well: --path_policy, --id_repo_dataset, --root,
--indices_episode=0,1,2, --path_output. Writes STEM_results.txt, STEM_metrics.json,
STEM_metrics.csv, STEM_stitched.csv, STEM_chunks.npz (every predicted chunk, for the replan
discontinuity and exact re-scoring), STEM_run.json and per episode
STEM_epN_trajectories.png and STEM_epN_accelerations.png; nothing is written unless every
input checks out and the whole replay succeeded. The per-episode boundary profiles are lists
in STEM_metrics.json only (the text and CSV files hold the scalars).

From Python: ``run_replay(ReplayConfig(...))`` returns the metrics JSON object.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lerobot_policy_act_smooth.evaluation.command import run_command, seed_everything
from lerobot_policy_act_smooth.evaluation.replay import (
    MODES,
    DatasetEpisodes,
    chunks_npz,
    ReplayInputError,
    is_prefix_policy,
    minimum_episode_length,
    replay_episode,
    resolve_delay_and_advance,
    stitched_csv,
)


@dataclass
class PolicyRef:
    # Folder of a saved policy: <train output>/checkpoints/<step>/pretrained_model
    path: str | None = None


@dataclass
class DatasetRef:
    repo_id: str | None = None
    # Local dataset folder (the machines here are offline: always give it)
    root: str | None = None
    video_backend: str = "pyav"


@dataclass
class ReplayConfig:
    policy: PolicyRef = field(default_factory=PolicyRef)
    dataset: DatasetRef = field(default_factory=DatasetRef)
    # Episode indices, "0,1,2" or "[0,1,2]" (default 0,1,2)
    episodes: str | None = None
    # Output stem: files are STEM_results.txt, STEM_metrics.json, ... (an existing folder or a
    # value ending in "/" means STEM = that folder/replay)
    output: str | None = None
    # gt_prefix: ground-truth prefix at every boundary; self_chaining: the model's own stitched chunks
    mode: str = "gt_prefix"
    # Committed actions d in 1..D (default D); not used by LeRobot's act
    delay: int | None = None
    # Frames between chunk boundaries (default the policy's n_action_steps)
    advance: int | None = None
    # Linear crossfade over the overlap of consecutive chunks (needs advance < chunk_size)
    blend: bool = False
    device: str = "cpu"
    seed: int = 0
    # Replace the result files of an earlier run at the same --output (refused otherwise).
    overwrite: bool = False
    # Boundaries per forward pass in batched replay
    batch_size: int = 64
    plots: bool = True
    # The research plan's spellings of the same options
    path_policy: str | None = None
    id_repo_dataset: str | None = None
    root: str | None = None
    indices_episode: str | None = None
    path_output: str | None = None


def _merge(name_a: str, a, name_b: str, b):
    if a is not None and b is not None and str(a) != str(b):
        raise ReplayInputError(f"{name_a}={a} and {name_b}={b} disagree; give only one of them")
    return a if a is not None else b


def parse_episodes(text: str) -> list[int]:
    body = text.strip().strip("[]").strip()
    try:
        episodes = [int(part) for part in body.split(",") if part.strip()]
    except ValueError:
        raise ReplayInputError(f"--episodes={text} is not a list of episode indices like 0,1,2") from None
    if not episodes:
        raise ReplayInputError("--episodes is empty; pass indices like 0,1,2")
    return episodes


def resolve_config(cfg: ReplayConfig) -> ReplayConfig:
    """Fold the plan's spellings into the main options and check what needs no files."""
    cfg.policy.path = _merge("--policy.path", cfg.policy.path, "--path_policy", cfg.path_policy)
    cfg.dataset.repo_id = _merge("--dataset.repo_id", cfg.dataset.repo_id, "--id_repo_dataset", cfg.id_repo_dataset)
    cfg.dataset.root = _merge("--dataset.root", cfg.dataset.root, "--root", cfg.root)
    cfg.episodes = _merge("--episodes", cfg.episodes, "--indices_episode", cfg.indices_episode) or "0,1,2"
    cfg.output = _merge("--output", cfg.output, "--path_output", cfg.path_output)
    cfg.path_policy = cfg.id_repo_dataset = cfg.root = cfg.indices_episode = cfg.path_output = None
    if cfg.output is None:
        raise ReplayInputError("no output given; pass --output=STEM (files become STEM_results.txt, ...)")
    if str(cfg.output).endswith(("/", "\\")) or Path(cfg.output).is_dir():
        cfg.output = str(Path(cfg.output) / "replay")
    if cfg.mode not in MODES:
        raise ReplayInputError(f"--mode={cfg.mode} is not one of {', '.join(MODES)}")
    if cfg.dataset.repo_id is None and cfg.dataset.root is None:
        raise ReplayInputError("no dataset given; pass --dataset.repo_id=NAME --dataset.root=FOLDER")
    if cfg.dataset.repo_id is None:
        cfg.dataset.repo_id = f"local/{Path(cfg.dataset.root).name}"
    if cfg.batch_size < 1:
        raise ReplayInputError(f"--batch_size={cfg.batch_size} must be at least 1")
    parse_episodes(cfg.episodes)
    return cfg


def load_predictor(path: str | None, device: str):
    if path is None:
        raise ReplayInputError("no policy given; pass --policy.path=<run>/checkpoints/<step>/pretrained_model")
    if not Path(path).exists():
        raise ReplayInputError(
            f"checkpoint not found: {path}; pass the pretrained_model folder that lerobot-train wrote "
            "(<output_dir>/checkpoints/<step>/pretrained_model)"
        )
    from lerobot_policy_act_smooth.inference import load_chunk_predictor

    try:
        return load_chunk_predictor(path, device=device)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise ReplayInputError(f"cannot load the policy at {path}: {e}") from e


def load_dataset(cfg: ReplayConfig) -> DatasetEpisodes:
    if cfg.dataset.root is not None and not (Path(cfg.dataset.root) / "meta" / "info.json").is_file():
        raise ReplayInputError(
            f"dataset not found: {cfg.dataset.root} has no meta/info.json; pass the folder of a LeRobot dataset"
        )
    try:
        return DatasetEpisodes(cfg.dataset.repo_id, cfg.dataset.root, cfg.dataset.video_backend)
    except Exception as e:  # the hub is unreachable here: any failure means "not a local dataset"
        raise ReplayInputError(f"cannot load dataset {cfg.dataset.repo_id} (root {cfg.dataset.root}): {e}") from e


def check_inputs(cfg: ReplayConfig, predictor, data: DatasetEpisodes, episodes: list[int]) -> tuple[int, int]:
    """Everything that can be wrong with the inputs, before any replay or file write."""
    bad = [e for e in episodes if not 0 <= e < data.num_episodes]
    if bad:
        raise ReplayInputError(
            f"episode {', '.join(map(str, bad))} out of range: {cfg.dataset.repo_id} has {data.num_episodes} "
            f"episodes (0..{data.num_episodes - 1})"
        )
    missing = [k for k in predictor.input_features if k not in data.features]
    if missing:
        raise ReplayInputError(
            f"the policy needs input features the dataset lacks: {', '.join(missing)} "
            f"(dataset has {', '.join(k for k in data.features if k.startswith('observation'))})"
        )
    dataset_dim = int(data.features["action"]["shape"][0])
    if int(predictor.action_dim) != dataset_dim:
        raise ReplayInputError(f"the policy predicts {predictor.action_dim} action values, the dataset has {dataset_dim}")
    delay, advance = resolve_delay_and_advance(predictor, cfg.delay, cfg.advance, cfg.blend)
    need = minimum_episode_length(predictor, delay)
    for e in episodes:
        if data.length(e) < need:
            raise ReplayInputError(
                f"episode {e} has {data.length(e)} frames, fewer than K+D+C+1 = {need}; choose longer episodes"
            )
    return delay, advance


def run_replay(cfg: ReplayConfig, predictor=None) -> dict:
    """Replay, compute metrics, write every result file; return the metrics JSON object.

    predictor: an already loaded ChunkPredictor (otherwise loaded from --policy.path).
    Raises ReplayInputError for bad input, before anything is written.
    """
    from lerobot_policy_act_smooth.evaluation.plots import accelerations_png, trajectories_png
    from lerobot_policy_act_smooth.evaluation.report_files import (
        refuse_earlier_results,
        result_paths,
        write_metric_files,
    )
    from lerobot_policy_act_smooth.provenance import atomic_write_bytes, atomic_write_json, atomic_write_text, run_metadata

    cfg = resolve_config(cfg)
    if not cfg.overwrite:
        stem = cfg.output
        refuse_earlier_results(
            [*result_paths(stem).values(), Path(f"{stem}_stitched.csv"), Path(f"{stem}_chunks.npz"),
             Path(f"{stem}_run.json")],
            ReplayInputError,
        )
    episodes = parse_episodes(cfg.episodes)
    if predictor is None:
        predictor = load_predictor(cfg.policy.path, cfg.device)
    data = load_dataset(cfg)
    delay, advance = check_inputs(cfg, predictor, data, episodes)
    seed_everything(cfg.seed)

    started = time.perf_counter()
    replays = []
    keys = list(predictor.input_features)
    for n, e in enumerate(episodes, 1):
        rep = replay_episode(
            predictor, data.actions(e), data.observer(e, keys), cfg.mode, delay, advance, cfg.blend,
            cfg.batch_size, episode=e,
        )
        replays.append(rep)
        print(
            f"[{n}/{len(episodes)}] episode {e}: {len(rep.schedule.observation_frames)} chunks, "
            f"{rep.predict_calls} predict calls, {rep.seconds:.2f} s",
            flush=True,
        )
    seconds = time.perf_counter() - started
    print(f"replayed {len(episodes)} episodes ({cfg.mode}) in {seconds:.2f} s", flush=True)

    scored = [rep.scores(data.fps) for rep in replays]
    rows = [row for row, _ in scored]
    json_episodes = [{**row, **profiles} for row, profiles in scored]
    settings = {
        "policy_type": predictor.policy_type,
        "mode": cfg.mode,
        "delay": delay,
        "advance": advance,
        "blend": cfg.blend,
        "past_length": int(predictor.past_length) if is_prefix_policy(predictor) else 0,
        "chunk_size": int(predictor.chunk_size),
        "episodes": episodes,
        "fps": data.fps,
    }
    title = f"Offline replay of {cfg.policy.path} on {cfg.dataset.repo_id}"
    header = [
        "Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "episodes"),
        "Metrics over the stitched predicted frames; spike window +-2 frames around each chunk start after the first "
        "(the plan's), spike_transition over labels b-2 .. b+12"
        + ("; with blending both ends of every crossfade are boundaries." if cfg.blend else "."),
    ]
    names = data.action_names
    pngs = {}
    if cfg.plots:  # render everything before the first write
        for rep in replays:
            label = f"episode {rep.episode}, {cfg.mode}, d={delay}, advance={advance}{', blend' if cfg.blend else ''}"
            prefix_points = [(rep.schedule.prefix_frames(i), p) for i, p in enumerate(rep.prefixes) if len(p)]
            pngs[f"{cfg.output}_ep{rep.episode}_trajectories.png"] = trajectories_png(
                rep.stitched, rep.boundaries, names, f"Trajectories: {label}", rep.truth, prefix_points
            )
            pngs[f"{cfg.output}_ep{rep.episode}_accelerations.png"] = accelerations_png(
                rep.stitched, rep.boundaries, names, f"Accelerations: {label}", rep.truth
            )
    stitched_text = stitched_csv(replays, names)
    chunks_bytes = chunks_npz(replays)
    metadata = run_metadata(config=cfg, seed=cfg.seed)
    timing = {
        "seconds_total": seconds,
        "seconds_per_episode": [rep.seconds for rep in replays],
        "predict_calls": [rep.predict_calls for rep in replays],
    }

    files = {
        **{k: str(p) for k, p in result_paths(cfg.output).items()},
        "stitched": f"{cfg.output}_stitched.csv",
        "chunks": f"{cfg.output}_chunks.npz",
        "run": f"{cfg.output}_run.json",
        "plots": list(pngs),
    }
    # The trajectory files first: a metrics JSON on disk always has the files it can be rescored from.
    atomic_write_text(f"{cfg.output}_stitched.csv", stitched_text)
    atomic_write_bytes(f"{cfg.output}_chunks.npz", chunks_bytes)
    atomic_write_json(f"{cfg.output}_run.json", metadata)
    for path, data_bytes in pngs.items():
        atomic_write_bytes(path, data_bytes)
    payload = write_metric_files(
        cfg.output, rows, title, metadata, header, extra_json={"settings": settings, "timing": timing, "files": files},
        json_episodes=json_episodes,
    )
    agg = payload["aggregate"]
    print(
        f"U_a {agg['U_a_mean']:.4g} +- {agg['U_a_std']:.4g} (truth {agg['truth_U_a_mean']:.4g}), "
        f"spike {agg['spike_mean']:.3g}x, MAE {agg['mae_mean']:.4g} deg -> {result_paths(cfg.output)['results']}",
        flush=True,
    )
    return payload


def main(argv: list[str] | None = None) -> int:
    return run_command(ReplayConfig, run_replay, ReplayInputError, argv)


if __name__ == "__main__":
    sys.exit(main())
