"""Record scripted teleoperation-like demonstrations as a LeRobot v3 dataset.

``generate_dataset`` runs the human-like demonstrator in ``SO101JointEnv`` and writes every
successful episode with LeRobot's own dataset API. Each episode's seed is derived from
(seed, episode index, attempt); a demonstration that fails the package's success test is
retried with the next attempt's seed, deterministically, and reported. Camera images are
rendered by replaying the recorded actions in an env with cameras (the physics does not
depend on rendering), which also checks that replaying the actions reproduces the demo.

Episodes are recorded (and rendered) in ``workers`` processes, one per core by default; each
episode depends only on its own seeds, and the main process writes them in episode order, so
the dataset is the same whatever the number of workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lerobot_policy_act_smooth.provenance import atomic_write_json, run_metadata
from lerobot_policy_act_smooth.sim.config_so101_sim import DEFAULT_RENDER_MESH_FACES, check_render_mesh_faces
from lerobot_policy_act_smooth.sim.demonstrator import HumanLikeDemonstrator, HumanStyle
from lerobot_policy_act_smooth.sim.env import SO101JointEnv, resolve_cameras
from lerobot_policy_act_smooth.sim.scene import ENV_STATE_NAMES, FEATURE_NAMES, TASK

GENERATION_FILE = "actsmooth_generation.json"  # written in <root>/meta/
MAX_EPISODE_FRAMES = 600  # 20 s at 30 fps: a demonstration still running by then has failed
MAX_ATTEMPTS = 5
# What a LeRobot dataset folder may hold at its top level; --overwrite deletes nothing else.
_DATASET_ENTRIES = {"meta", "data", "videos", "images", "README.md", ".gitattributes", ".cache"}


class DatasetGenerationError(ValueError):
    """Bad request (arguments, output folder, renderer): the message names the fix."""


@dataclass
class Demonstration:
    episode_seed: int
    success: bool
    actions: np.ndarray  # [T, 6] float32 degrees (leader command)
    states: np.ndarray  # [T, 6] float32 degrees (measured follower)
    env_states: np.ndarray  # [T, 10] float32
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)


def episode_seed(seed: int, episode_index: int, attempt: int) -> int:
    """The env reset seed of one attempt at one episode (stable across runs and machines)."""
    return int(np.random.SeedSequence([seed, episode_index, attempt]).generate_state(1)[0])


def _run_episode(env: SO101JointEnv, seed: int, actions: Iterable[np.ndarray]) -> Demonstration:
    """Step ``env`` from ``env.reset(seed=seed)`` through ``actions``, recording what it observes.

    Frame t holds the observation before action t is applied (LeRobot's convention).
    """
    obs, _ = env.reset(seed=seed)
    taken, states, env_states = [], [], []
    images: dict[str, list[np.ndarray]] = {name: [] for name in env.cameras}
    info = {"is_success": False}
    for action in actions:
        taken.append(action)
        states.append(obs["observation.state"])
        env_states.append(obs["observation.environment_state"])
        for name in env.cameras:
            images[name].append(obs[f"observation.images.{name}"])
        obs, _, _, _, info = env.step(action)
    return Demonstration(
        episode_seed=seed,
        success=bool(info["is_success"]),
        actions=np.asarray(taken, dtype=np.float32),
        states=np.asarray(states, dtype=np.float32),
        env_states=np.asarray(env_states, dtype=np.float32),
        images=images,
    )


def record_demonstration(
    env: SO101JointEnv,
    seed: int,
    fps: int = 30,
    style: HumanStyle | None = None,
    max_frames: int = MAX_EPISODE_FRAMES,
    operator_seed: int | None = None,
) -> Demonstration:
    """Run the demonstrator for one episode from ``env.reset(seed=seed)``.

    operator_seed: None (datasets) draws the operator's pace, pauses and tremor from the scene
    seed; another value demonstrates the same scene as a different take of the same operator."""
    demonstrator = HumanLikeDemonstrator(style, fps=fps)
    operator_rng = [seed, 1] if operator_seed is None else [seed, 1, operator_seed]

    def commands():
        # The demonstrator is reset after env.reset (inside _run_episode), when this generator starts.
        demonstrator.reset(env.scene, np.random.default_rng(operator_rng))
        for _ in range(max_frames):
            if demonstrator.done:
                return
            # float32 first: the env must receive exactly what the dataset stores, so that
            # replaying the stored actions reproduces the episode bit for bit.
            yield demonstrator.act(env.scene).astype(np.float32)

    demo = _run_episode(env, seed, commands())
    demo.success = demo.success and demonstrator.done
    return demo


def replay_actions(env: SO101JointEnv, seed: int, actions: np.ndarray) -> Demonstration:
    """Apply recorded actions open loop from ``env.reset(seed=seed)``; observations as recorded."""
    return _run_episode(env, seed, actions)


def dataset_features(cameras: dict[str, tuple[int, int]], use_videos: bool = False) -> dict:
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": list(FEATURE_NAMES)},
        "action": {"dtype": "float32", "shape": (6,), "names": list(FEATURE_NAMES)},
        "observation.environment_state": {
            "dtype": "float32",
            "shape": (len(ENV_STATE_NAMES),),
            "names": list(ENV_STATE_NAMES),
        },
    }
    for name, (height, width) in cameras.items():
        features[f"observation.images.{name}"] = {
            "dtype": "video" if use_videos else "image",
            "shape": (height, width, 3),
            "names": ["height", "width", "channels"],
        }
    return features


def check_renderer() -> None:
    """Raise DatasetGenerationError, naming the MUJOCO_GL to try, if offscreen rendering fails."""
    gl = os.environ.get("MUJOCO_GL", "")
    hint = (
        "set MUJOCO_GL=egl (needs libEGL, e.g. Mesa's), or MUJOCO_GL=osmesa with PYOPENGL_PLATFORM=osmesa "
        "(needs libosmesa6: apt-get install libosmesa6; scripts/setup.sh installs it)"
    )
    try:
        import warnings

        import mujoco

        with warnings.catch_warnings():  # GLFW warns before it fails; the error below says it all
            warnings.simplefilter("ignore")
            model = mujoco.MjModel.from_xml_string(
                "<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>"
            )
            renderer = mujoco.Renderer(model, height=8, width=8)
            renderer.update_scene(mujoco.MjData(model))
            renderer.render()
            renderer.close()
    except Exception as exc:  # the GL back ends raise assorted types
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatasetGenerationError(
            f"no working headless renderer for cameras (MUJOCO_GL={gl or 'unset'}: {first_line}); {hint}"
        ) from None


def _check_output_folder(root: Path, overwrite: bool) -> None:
    """Refuse to write over data unless asked; with overwrite, only over a LeRobot dataset folder."""
    if root.exists() and not root.is_dir():
        raise DatasetGenerationError(f"--root {root} exists and is not a folder; choose another path")
    if not root.exists() or not any(root.iterdir()):
        return
    if not overwrite:
        raise DatasetGenerationError(
            f"--root {root} already holds data; pass --overwrite=true (overwrite=True) to replace it, "
            "or choose another --root"
        )
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    if root == Path(root.anchor) or root == home or root == cwd or root in cwd.parents:
        raise DatasetGenerationError(f"refusing to overwrite {root}: it is a system, home or working folder")
    entries = {entry.name for entry in root.iterdir()}
    unexpected = sorted(entries - _DATASET_ENTRIES)
    if not (root / "meta" / "info.json").is_file() or unexpected:
        found = f" (it holds {', '.join(unexpected[:5])})" if unexpected else " (no meta/info.json)"
        raise DatasetGenerationError(
            f"refusing to overwrite {root}: it is not a LeRobot dataset folder{found}; choose another --root"
        )


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _validate(episodes: int, fps: int, seed: int, workers: int) -> None:
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise DatasetGenerationError(
            f"--workers must be a positive integer (processes recording episodes at once), got {workers!r}"
        )
    if not isinstance(episodes, int) or episodes <= 0:
        raise DatasetGenerationError(f"--episodes must be a positive integer, got {episodes!r}")
    if not isinstance(fps, int) or not 5 <= fps <= 200:
        raise DatasetGenerationError(f"--fps must be an integer between 5 and 200, got {fps!r}")
    if not isinstance(seed, int) or seed < 0:
        raise DatasetGenerationError(f"--seed must be a non-negative integer, got {seed!r}")


def _progress(message: str) -> None:
    print(f"[actsmooth-dataset] {message}", file=sys.stderr, flush=True)


def generate_dataset(
    repo_id: str,
    root: str | os.PathLike,
    episodes: int,
    seed: int,
    fps: int = 30,
    cameras=None,
    overwrite: bool = False,
    use_videos: bool = False,
    progress: bool = True,
    config: object | None = None,
    render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES,
    workers: int | None = None,
) -> dict:
    """Write ``episodes`` successful demonstrations to a LeRobot v3 dataset at ``root``.

    cameras: None, names ("top", "wrist") at default sizes, or {name: (height, width)}.
    use_videos: store images as MP4 (decode with ``--dataset.video_backend=pyav`` here)
        instead of image files. Returns a summary (also stored in meta/actsmooth_generation.json).
    render_mesh_faces: triangles the cameras draw the arm's visual meshes with (0 = full
        meshes); the recorded states and actions do not depend on it.
    workers: processes that record and render episodes at once (None: one per CPU core; 1: all
        in this process). The dataset is byte-for-byte the same for any number of workers.
    Raises DatasetGenerationError for bad arguments, an occupied output folder, a missing
    renderer, or a demonstrator that keeps failing; nothing is written or deleted then.
    """
    workers = default_workers() if workers is None else workers
    _validate(episodes, fps, seed, workers)
    if not repo_id or not isinstance(repo_id, str):
        raise DatasetGenerationError("--repo_id must be a non-empty string such as 'local/so101_sim'")
    if root is None or str(root).strip() == "":
        raise DatasetGenerationError("--root is required: the folder to write the dataset to")
    try:
        camera_sizes = resolve_cameras(cameras)
        check_render_mesh_faces(render_mesh_faces, "--render_mesh_faces")
    except ValueError as exc:
        raise DatasetGenerationError(str(exc)) from None
    root = Path(root).expanduser().resolve()
    _check_output_folder(root, overwrite)
    if camera_sizes:
        check_renderer()

    import datasets
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    # LeRobot's per-episode "Map" bars would drown our own progress lines.
    bars_were_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()

    # Build in a sibling folder and swap it in at the end: an interrupted run never leaves
    # a half-written dataset at --root, nor destroys the one being replaced.
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    root.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    recorder = _EpisodeRecorder(seed, fps, camera_sizes, render_mesh_faces)
    workers = min(workers, episodes)
    pool = _start_pool(workers, recorder) if workers > 1 else None
    records, failures = [], []
    try:
        dataset = LeRobotDataset.create(
            repo_id=repo_id,
            fps=fps,
            features=dataset_features(camera_sizes, use_videos),
            root=partial,
            robot_type="so101_follower",
            use_videos=use_videos,
            image_writer_threads=2 if camera_sizes else 0,
        )
        results = _recorded_episodes(episodes, recorder, pool, workers)
        for index, (demo, attempt, failed) in enumerate(results):
            failures += failed
            if progress:
                for failure in failed:
                    _progress(f"episode {index + 1}: demonstration with seed {failure['episode_seed']} failed, retrying")
            _write_episode(dataset, demo)
            records.append(
                {
                    "episode_index": index,
                    "episode_seed": demo.episode_seed,
                    "attempt": attempt,
                    "frames": len(demo.actions),
                }
            )
            if progress:
                elapsed = time.monotonic() - started
                left = elapsed / (index + 1) * (episodes - index - 1)
                frames = sum(r["frames"] for r in records)
                _progress(
                    f"episode {index + 1}/{episodes}: {len(demo.actions)} frames; "
                    f"{frames / elapsed:.1f} frames/s ({workers} worker(s)); "
                    f"elapsed {elapsed:.0f} s, about {left:.0f} s left"
                )
        dataset.finalize()
        summary = {
            "repo_id": repo_id,
            "root": str(root),
            "episodes": episodes,
            "seed": seed,
            "fps": fps,
            "cameras": {name: list(size) for name, size in camera_sizes.items()},
            "use_videos": use_videos,
            "total_frames": int(sum(r["frames"] for r in records)),
            "failed_attempts": failures,
            "episode_records": records,
            "seconds": round(time.monotonic() - started, 2),
            "frames_per_second": round(sum(r["frames"] for r in records) / (time.monotonic() - started), 2),
            "workers": workers,
            "task": TASK,
            "environment_state_layout": list(ENV_STATE_NAMES),
            "action_units": "degrees (joint position targets; gripper = jaw joint angle)",
        }
        if camera_sizes:  # a dataset without images stays as it was before this setting existed
            summary["render_mesh_faces"] = render_mesh_faces
        metadata = run_metadata(config=config if config is not None else summary, seed=seed)
        atomic_write_json(partial / "meta" / GENERATION_FILE, {**metadata, "generation": summary})
        _swap_in(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if bars_were_enabled:
            datasets.enable_progress_bars()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        recorder.close()
    if progress:
        _progress(
            f"wrote {episodes} episodes ({summary['total_frames']} frames) to {root} "
            f"in {summary['seconds']:.1f} s ({summary['frames_per_second']:.1f} frames/s, {workers} worker(s)); "
            f"{len(failures)} failed demonstration(s) retried"
        )
    return summary


class _EpisodeRecorder:
    """Records episode ``index`` of a dataset: the demonstration (retried with the next attempt's
    seed when it fails), then its camera images. Its envs are made on first use, in the process
    that records (a worker, or the main process with one worker)."""

    def __init__(self, seed: int, fps: int, camera_sizes: dict, render_mesh_faces: int):
        self.seed, self.fps, self.camera_sizes, self.render_mesh_faces = seed, fps, camera_sizes, render_mesh_faces
        self._envs = None

    def __getstate__(self):  # sent to the workers without envs
        return {**self.__dict__, "_envs": None}

    def __call__(self, index: int) -> tuple[Demonstration, int, list[dict]]:
        """(demonstration, attempt that succeeded, the failed attempts)."""
        if self._envs is None:
            state_env = SO101JointEnv(cameras=None, max_steps=MAX_EPISODE_FRAMES + 1, fps=self.fps)
            camera_env = None
            if self.camera_sizes:
                camera_env = SO101JointEnv(
                    cameras=self.camera_sizes,
                    max_steps=MAX_EPISODE_FRAMES + 1,
                    fps=self.fps,
                    render_mesh_faces=self.render_mesh_faces,
                )
            self._envs = (state_env, camera_env)
        state_env, camera_env = self._envs
        failures = []
        for attempt in range(MAX_ATTEMPTS):
            ep_seed = episode_seed(self.seed, index, attempt)
            demo = record_demonstration(state_env, ep_seed, fps=self.fps)
            if demo.success:
                break
            failures.append({"episode_index": index, "attempt": attempt, "episode_seed": ep_seed})
        else:
            raise RuntimeError(f"the demonstrator failed {MAX_ATTEMPTS} times in a row at episode {index}")
        if camera_env is not None:
            replay = replay_actions(camera_env, ep_seed, demo.actions)
            if not np.array_equal(replay.states, demo.states):
                raise RuntimeError(f"replaying episode {index} (seed {ep_seed}) did not reproduce its states")
            demo.images = replay.images
        return demo, attempt, failures

    def close(self) -> None:
        for env in self._envs or ():
            if env is not None:
                env.close()
        self._envs = None


_worker_recorder: _EpisodeRecorder | None = None


def _init_worker(recorder: _EpisodeRecorder) -> None:
    global _worker_recorder
    _worker_recorder = recorder


def _record_in_worker(index: int):
    return _worker_recorder(index)


def _start_pool(workers: int, recorder: _EpisodeRecorder) -> ProcessPoolExecutor:
    # spawn: a fresh interpreter per worker, safe whatever threads or GL contexts this process holds
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(recorder,)
    )


def _recorded_episodes(episodes: int, recorder: _EpisodeRecorder, pool, workers: int):
    """Yield every episode's recording in episode order. With a pool, at most ``workers + 1``
    episodes are recorded ahead of the one being written (their images wait in memory)."""
    if pool is None:
        for index in range(episodes):
            yield recorder(index)
        return
    pending: deque = deque()
    try:
        for index in range(episodes):
            pending.append(pool.submit(_record_in_worker, index))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise RuntimeError(
            "a worker process recording episodes died (out of memory? or a script that calls "
            "generate_dataset without `if __name__ == \"__main__\":`, which spawned workers need); "
            "fix that, or record in this process with workers=1 (--workers=1)"
        ) from None


def _write_episode(dataset, demo: Demonstration) -> None:
    for t in range(len(demo.actions)):
        frame = {
            "observation.state": demo.states[t],
            "action": demo.actions[t],
            "observation.environment_state": demo.env_states[t],
            "task": TASK,
        }
        for name, frames in demo.images.items():
            frame[f"observation.images.{name}"] = frames[t]
        dataset.add_frame(frame)
    dataset.save_episode()


def _swap_in(partial: Path, root: Path) -> None:
    if root.exists():
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        root.rename(old)
        partial.rename(root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.rename(root)
