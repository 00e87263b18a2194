"""Datasets given by a Hugging Face hub id: found in LeRobot's cache, or fetched into it once.

A plan whose [dataset] has a repo_id but no root (and no generate section) trains on the copy at
HF_LEROBOT_HOME/<repo_id>, the folder LeRobot itself looks up for a dataset given by id alone.
The driver fetches it there once, before any trial starts; every trial then gets that folder as
--dataset.root, so trials never touch the network (their environment is offline).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import PlanError

_TRUE = {"1", "ON", "YES", "TRUE"}


def lerobot_home() -> Path:
    """LeRobot's dataset cache, read now (LeRobot's own constant is frozen at import)."""
    env = os.environ.get("HF_LEROBOT_HOME")
    if env:
        return Path(env).expanduser()
    from lerobot.utils.constants import HF_LEROBOT_HOME

    return HF_LEROBOT_HOME


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in _TRUE


def cache_root(repo_id: str) -> Path:
    return lerobot_home() / repo_id


def incomplete_files(root: Path, repo_id: str) -> list[str] | None:
    """None when root holds no dataset metadata; else the data/video files its metadata names
    that are missing (an empty list: the copy is complete)."""
    if not (root / "meta" / "info.json").is_file():
        return None
    from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

    try:
        meta = LeRobotDatasetMetadata(repo_id, root=root)
    except Exception:  # noqa: BLE001 - unreadable or partial metadata: not a usable copy
        return ["meta/"]
    names = set()
    for ep in range(meta.total_episodes):
        names.add(str(meta.get_data_file_path(ep)))
        names.update(str(meta.get_video_file_path(ep, key)) for key in meta.video_keys)
    return sorted(n for n in names if not (root / n).is_file())


def cached_dataset_root(repo_id: str) -> Path | None:
    """HF_LEROBOT_HOME/<repo_id> when it holds a complete copy of the dataset, else None."""
    root = cache_root(repo_id)
    return root if incomplete_files(root, repo_id) == [] else None


def missing_dataset_message(repo_id: str) -> str:
    return (f"missing dataset: {repo_id} is not in LeRobot's cache ({cache_root(repo_id)}) and the hub is offline "
            f"(HF_HUB_OFFLINE=1); either give a local copy with --dataset_root=PATH, or allow the download "
            f"(HF_HUB_OFFLINE=0, network access to huggingface.co) so that it is fetched once into the cache")


def check_hub_dataset(repo_id: str) -> str | None:
    """The error a run would hit for this hub dataset before starting, or None (cached, or online)."""
    if cached_dataset_root(repo_id) is None and hub_offline():
        return missing_dataset_message(repo_id)
    return None


def fetch_dataset(repo_id: str, out: Callable[[str], None] = print) -> Path:
    """The cached copy of repo_id, downloaded first (once, with progress) when it is not complete."""
    root = cache_root(repo_id)
    missing = incomplete_files(root, repo_id)
    if missing == []:
        out(f"dataset: {repo_id} from LeRobot's cache {root}")
        return root
    if hub_offline():
        raise PlanError(missing_dataset_message(repo_id))
    what = "completing" if missing else "fetching"
    out(f"dataset: {what} {repo_id} from the Hugging Face hub into {root} (once; later runs use this copy) ...")
    t0 = time.time()
    try:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        # root given: LeRobot materializes the files in that folder (huggingface_hub's progress bars).
        LeRobotDataset(repo_id, root=root)
    except Exception as e:  # noqa: BLE001 - network, authentication, unknown id: one message
        if root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # LeRobot creates the folder first; leave no empty one behind
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PlanError(f"could not fetch dataset {repo_id} from the hub into {root} ({reason}); check the id, "
                        "the network and `hf auth login`, or give a local copy with --dataset_root=PATH") from e
    missing = incomplete_files(root, repo_id)
    if missing:
        raise PlanError(f"dataset {repo_id} in {root} is still incomplete after the download "
                        f"({len(missing)} files missing, e.g. {missing[0]}); run again to resume the download")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    out(f"dataset: fetched {repo_id} ({size / 2**30:.2f} GiB) in {time.time() - t0:.0f} s")
    return root


@dataclass
class FetchConfig:
    # Hugging Face hub dataset id, e.g. giacomoran/lerobot_policy_act_smooth_30fps. It is
    # downloaded into HF_LEROBOT_HOME/<repo_id> unless a complete copy is there already.
    repo_id: str = ""


def main(argv: list[str] | None = None) -> int:
    """Fill this machine's cache (e.g. on each node of a cluster without shared storage):
    python -m lerobot_policy_act_smooth.experiments.hub --repo_id=ID"""
    import sys

    import draccus

    cfg = draccus.parse(config_class=FetchConfig, args=sys.argv[1:] if argv is None else argv,
                        prog="python -m lerobot_policy_act_smooth.experiments.hub")
    try:
        if not cfg.repo_id:
            raise PlanError("--repo_id is required (the hub id of the dataset)")
        print(fetch_dataset(cfg.repo_id))
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
