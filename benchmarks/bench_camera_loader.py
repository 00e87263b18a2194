"""Samples per second of a camera dataset read through LeRobot's video decoder and through the
in-memory frames (`python -m lerobot_policy_act_smooth.train`, `[dataset] in_memory = true`), for
one reader process and for the whole machine (one reader per core, as the plan runner schedules
trials).

    .venv/bin/python benchmarks/bench_camera_loader.py                    # a small simulated dataset
    .venv/bin/python benchmarks/bench_camera_loader.py --root=data/so101_cam --repo_id=local/so101_cam

A sample is what lerobot-train reads for act_smooth (LeRobotDataset.__getitem__, uint8 frames as
lerobot-train asks for them): the action window a_{-L-4} .. a_{31} and every camera at t0, plus
t0 - L when the own-prediction prefix is on (--lookback=L, 30 = the recipe's n_action_steps; 0
for the baseline). Figures: start-up (opening the dataset; for the in-memory frames this includes
decoding every frame once), samples/s of one reader, samples/s summed over --processes readers.
Without --root a dataset is generated first (simulator, MP4 video, --episodes at --size).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")


def _open(root: str, repo_id: str, lookback: int, in_memory: bool):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    if in_memory:
        from lerobot_policy_act_smooth.in_memory_frames import hold_lerobot_datasets_in_memory

        hold_lerobot_datasets_in_memory()
    probe = LeRobotDataset(repo_id, root=root, video_backend="pyav")
    frames = [-lookback, 0] if lookback else [0]
    delta = {"action": [i / probe.fps for i in range(-lookback - 4, 32)]}
    delta.update({key: [i / probe.fps for i in frames] for key in probe.meta.camera_keys})
    return LeRobotDataset(repo_id, root=root, delta_timestamps=delta, video_backend="pyav", return_uint8=True)


def _reader(root: str, repo_id: str, lookback: int, in_memory: bool, samples: int, seed: int,
            barrier, results) -> None:
    """One reader process: open the dataset, wait for every reader, read ``samples`` random samples;
    puts (start-up seconds, reading seconds) on ``results``."""
    import numpy as np

    start = time.perf_counter()
    dataset = _open(root, repo_id, lookback, in_memory)
    startup = time.perf_counter() - start
    rows = np.random.default_rng(seed).integers(0, len(dataset), size=samples)
    dataset[int(rows[0])]
    barrier.wait()  # every reader reads at the same time
    start = time.perf_counter()
    for row in rows:
        dataset[int(row)]
    results.put((startup, time.perf_counter() - start))


def read_rate(processes: int, *args) -> tuple[float, float]:
    """(longest start-up in seconds, samples per second of all readers together) for ``processes``
    fresh reader processes reading at once (spawned: nothing cached from another setting)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    readers = [context.Process(target=_reader, args=(*args[:-1], args[-1] + i, barrier, results))
               for i in range(processes)]
    for reader in readers:
        reader.start()
    timings = [results.get() for _ in readers]
    for reader in readers:
        reader.join()
    samples = args[4] * processes
    return max(t[0] for t in timings), samples / max(t[1] for t in timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="a LeRobot dataset with cameras; none: generate one")
    parser.add_argument("--repo_id", default="bench/so101_cam")
    parser.add_argument("--episodes", type=int, default=4, help="episodes to generate (without --root)")
    parser.add_argument("--size", default="64x64", help="HEIGHTxWIDTH of the generated top and wrist cameras")
    parser.add_argument("--lookback", type=int, default=30, help="own-prediction prefix frames (0: off)")
    parser.add_argument("--samples", type=int, default=300, help="samples read per reader")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="readers for the whole machine")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            from lerobot_policy_act_smooth.sim.dataset import generate_dataset

            height, width = (int(v) for v in args.size.split("x"))
            root = os.path.join(tmp, "cam")
            summary = generate_dataset(args.repo_id, root, args.episodes, seed=0,
                                       cameras={"top": (height, width), "wrist": (height, width)},
                                       use_videos=True, progress=False)
            print(f"dataset: {args.episodes} episodes, {summary['total_frames']} frames, two {args.size} cameras "
                  f"(MP4), generated at {summary['frames_per_second']:.1f} frames/s with {summary['workers']} worker(s)")
        print(f"machine: {os.cpu_count()} CPU cores; a sample = action window + cameras at "
              f"{'t0 - %d and t0' % args.lookback if args.lookback else 't0'}; {args.samples} samples per reader")
        for in_memory in (False, True):
            name = "in-memory frames" if in_memory else "LeRobot's decoder (pyav)"
            job = (root, args.repo_id, args.lookback, in_memory, args.samples, 0)
            startup, one = read_rate(1, *job)
            _, machine = read_rate(args.processes, *job)
            print(f"{name:26s} start-up {startup:6.1f} s | one reader {one:8.1f} samples/s | "
                  f"{args.processes} readers {machine:8.1f} samples/s")

if __name__ == "__main__":
    main()
