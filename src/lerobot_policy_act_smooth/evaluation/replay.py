"""Offline replay of a chunking policy over recorded episodes (research-plan.md, "Evaluation").

For one episode of N frames with ground-truth actions ``truth[0..N-1]``, a policy with
history K (``past_length``), delay d (1..D) and chunk size C, advancing s frames per chunk:

- Observation frames (chunk boundaries) ``t_i = K + i*s`` for every i with
  ``t_i + D + C < N``, D the policy's largest delay, whatever d is (the original evaluation
  script's rule; only whole chunks, so prediction and truth cover the same frames).
- At ``t_i`` the policy sees the observation of frame ``t_i``, the past actions of frames
  ``t_i-K .. t_i-1`` and the committed actions of frames ``t_i .. t_i+d-1``, and predicts
  chunk i, placed at frames ``p_i = t_i + d`` .. ``p_i + C - 1``.
- Prefix source: ``gt_prefix`` takes the prefix from the ground truth at every boundary
  (boundaries are independent, so they run batched); ``self_chaining`` takes it from the
  stitched sequence of the model's own earlier chunks, frames before ``p_0`` from the
  ground truth (the seed a robot starts from), so chunks run one after the other.
- Stitching: predicted chunks only; a later chunk overwrites an earlier one on the frames
  they share. With ``blend`` (the overlap-blending reference, s < C) the L = C - s shared
  frames are crossfaded linearly: at the j-th shared frame (j = 0..L-1) the new chunk has
  weight (j+1)/(L+1) and the old one the rest.
- Metrics are computed over the stitched frames ``p_0 .. p_last + C - 1``; the spike's
  boundaries are the placements ``p_1, p_2, ...`` (the first chunk's start left out). With
  ``blend`` a crossfade has two kinks, where it starts (the old chunk's weight starts falling,
  second difference labelled p_i) and where it ends (the weight reaches 0 at frame p_i + L, the
  first frame of the new chunk alone; its kink is labelled p_i + L + 1): both ``p_i`` and
  ``p_i + L`` (i >= 1) are boundaries of the scalar metrics. The boundary-locked profiles stay
  locked to the switches ``p_i`` (offset 0 = p_i), so a blend's second kink shows at offset L + 1.
- Every chunk as the policy predicted it is kept (``EpisodeReplay.chunks``, placement order) for
  the replan discontinuity: chunk i covers frames p_i .. p_i + C - 1, chunk i+1 starts at
  p_i + s, so consecutive chunks share C - s frames when s < C (NaN when s = C, back to back).

LeRobot's own ACT (``policy_type == "act"``) has no prefix: K = d = 0, chunks are placed at
``t_i`` itself, back to back every s frames from frame 0, identically in both modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lerobot_policy_act_smooth.evaluation.metrics import (
    boundary_profile_lists,
    episode_metrics,
    replan_summary,
)

MODES = ("gt_prefix", "self_chaining")

ObservationFn = Callable[[list[int]], dict[str, np.ndarray]]


class ReplayInputError(ValueError):
    """Bad input to a replay (reported as one line, nothing written)."""


def is_prefix_policy(predictor) -> bool:
    return predictor.policy_type != "act"


def resolve_delay_and_advance(predictor, delay: int | None, advance: int | None, blend: bool) -> tuple[int, int]:
    """Check --delay (1..D, default D; none for LeRobot's act) and --advance (1..C, default
    n_action_steps) against the policy; return the values the replay uses."""
    C = int(predictor.chunk_size)
    if is_prefix_policy(predictor):
        D = int(predictor.max_delay)
        delay = D if delay is None else int(delay)
        if not 1 <= delay <= D:
            raise ReplayInputError(f"--delay={delay} is outside 1..{D} (the policy's max delay D); pass a delay in 1..{D}")
    else:
        if delay not in (None, 0):
            raise ReplayInputError(f"--delay={delay} does not apply to LeRobot's act (no prefix); leave --delay unset")
        delay = 0
    advance = int(predictor.n_action_steps) if advance is None else int(advance)
    if not 1 <= advance <= C:
        raise ReplayInputError(f"--advance={advance} is outside 1..{C} (chunk size); chunks would leave gaps")
    if blend and advance >= C:
        raise ReplayInputError(f"--blend=true needs overlapping chunks: --advance ({advance}) below the chunk size {C}")
    return delay, advance


def minimum_episode_length(predictor, delay: int) -> int:
    """K + D + C + 1: the shortest episode that holds one chunk under the placement rule."""
    prefix_policy = is_prefix_policy(predictor)
    past = int(predictor.past_length) if prefix_policy else 0
    max_delay = int(predictor.max_delay) if prefix_policy else 0
    return past + max(delay, max_delay) + int(predictor.chunk_size) + 1


@dataclass
class ChunkSchedule:
    """Where each chunk of an episode is observed and placed (frame indices)."""

    past_length: int
    delay: int
    chunk_size: int
    advance: int
    observation_frames: list[int]

    @property
    def placements(self) -> list[int]:
        return [t + self.delay for t in self.observation_frames]

    @property
    def stop(self) -> int:
        """One past the last stitched frame."""
        return self.placements[-1] + self.chunk_size

    def prefix_frames(self, i: int) -> np.ndarray:
        t = self.observation_frames[i]
        return np.arange(t - self.past_length, t + self.delay)


def chunk_schedule(
    num_frames: int, past_length: int, delay: int, chunk_size: int, advance: int, max_delay: int | None = None
) -> ChunkSchedule:
    """Chunks observed at t = K, K+s, ... while t + D + C < N (D = max_delay, default d)."""
    max_delay = delay if max_delay is None else max_delay
    needed = past_length + max_delay + chunk_size + 1
    if num_frames < needed:
        raise ReplayInputError(
            f"episode has {num_frames} frames, fewer than K+D+C+1 = {past_length}+{max_delay}+{chunk_size}+1 = {needed}; "
            "choose longer episodes"
        )
    frames = list(range(past_length, num_frames - max_delay - chunk_size, advance))
    return ChunkSchedule(past_length, delay, chunk_size, advance, frames)


class Stitcher:
    """The stitched prediction of one episode, built chunk by chunk in placement order."""

    def __init__(self, num_frames: int, action_dim: int, blend: bool):
        self.values = np.full((num_frames, action_dim), np.nan)
        self.chunk_index = np.full(num_frames, -1, dtype=np.int64)
        self.blend = blend
        self.end: int | None = None  # one past the last frame placed so far

    def place(self, index: int, start: int, chunk: np.ndarray) -> None:
        stop = start + len(chunk)
        if self.end is not None and start < self.end and self.blend:
            shared = self.end - start
            w = (np.arange(1, shared + 1) / (shared + 1))[:, None]
            self.values[start : start + shared] = (1 - w) * self.values[start : start + shared] + w * chunk[:shared]
            self.values[start + shared : stop] = chunk[shared:]
        else:
            self.values[start:stop] = chunk
        self.chunk_index[start:stop] = index
        self.end = stop


@dataclass
class EpisodeReplay:
    """Everything one episode's replay produced (frame indices are episode frames)."""

    episode: int
    truth: np.ndarray  # [N, A] ground-truth actions
    stitched: np.ndarray  # [N, A] stitched prediction, NaN outside start..stop-1
    chunk_index: np.ndarray  # [N] chunk that supplied each stitched frame, -1 elsewhere
    schedule: ChunkSchedule
    prefixes: list[np.ndarray] = field(default_factory=list)  # per chunk: the [K+d, A] prefix it was given
    chunks: list[np.ndarray] = field(default_factory=list)  # per chunk, placement order: the [C, A] prediction
    blend: bool = False
    predict_calls: int = 0
    seconds: float = 0.0

    @property
    def start(self) -> int:
        return self.schedule.placements[0]

    @property
    def stop(self) -> int:
        return self.schedule.stop

    @property
    def boundaries(self) -> list[int]:
        """Chunk starts after the first, as episode frames."""
        return self.schedule.placements[1:]

    def prediction_in_range(self) -> np.ndarray:
        return self.stitched[self.start : self.stop]

    def truth_in_range(self) -> np.ndarray:
        return self.truth[self.start : self.stop]

    @property
    def blend_overlap(self) -> int:
        """L = C - s crossfaded frames per switch with blending; 0 without."""
        return self.schedule.chunk_size - self.schedule.advance if self.blend else 0

    def metrics(self, fps: float = 30.0) -> dict:
        """Per-episode scalar metrics over the stitched frames (see :func:`score_episode`)."""
        row, _ = self.scores(fps)
        return row

    def scores(self, fps: float = 30.0) -> tuple[dict, dict]:
        """(scalar row, profile lists) of :func:`score_episode` for this episode."""
        return score_episode(self.episode, self.prediction_in_range(), self.truth_in_range(),
                             [b - self.start for b in self.boundaries], self.blend_overlap, fps,
                             self.chunks, [p - self.start for p in self.schedule.placements])


def metric_boundaries(switches: list[int], blend_overlap: int) -> list[int]:
    """Boundaries of the scalar metrics: the switches p_i, and with blending (L > 0 crossfaded frames)
    also each crossfade's end p_i + L (module docstring)."""
    if blend_overlap <= 0:
        return list(switches)
    return sorted({*switches, *(p + blend_overlap for p in switches)})


def score_episode(episode: int, prediction: np.ndarray, truth: np.ndarray, switches: list[int], blend_overlap: int,
                  fps: float, chunks: list[np.ndarray] | None, starts: list[int] | None) -> tuple[dict, dict]:
    """One episode's replay scores: ``(row, profiles)``.

    prediction, truth: [N, A] deg over the stitched frames; switches: chunk starts after the first,
    relative to the first stitched frame; blend_overlap: L (0 without blending); chunks / starts: the
    predicted [C, A] chunks and their placements on the same frame axis (None: no replan keys).
    row: :func:`metrics.episode_metrics` at :func:`metric_boundaries` and ``fps``, ``replan_mean`` /
    ``replan_max`` (deg), ``num_chunks``. profiles: ``profile_acc``, ``profile_jerk``,
    ``truth_profile_acc``, ``truth_profile_jerk`` as lists locked to the switches; all NaN when the
    stitched frames are fewer than the profile window (as closed-loop evaluation does).
    """
    row = {"episode": episode}
    row.update(episode_metrics(prediction, truth, metric_boundaries(switches, blend_overlap), fps=fps))
    if chunks is not None:
        row.update(replan_summary(chunks, starts))
    row["num_chunks"] = len(switches) + 1
    profiles = {**boundary_profile_lists(prediction, switches), **boundary_profile_lists(truth, switches, "truth_")}
    return row, profiles


def _predict(predictor, observe: ObservationFn, frames: list[int], past: np.ndarray, committed: np.ndarray) -> np.ndarray:
    chunks = np.asarray(predictor.predict(observe(frames), past, committed), dtype=np.float64)
    expected = (len(frames), int(predictor.chunk_size), int(predictor.action_dim))
    if chunks.shape != expected:
        raise RuntimeError(f"predictor returned chunks of shape {chunks.shape}, expected {expected}")
    return chunks


def replay_episode(
    predictor,
    truth: np.ndarray,
    observe: ObservationFn,
    mode: str = "gt_prefix",
    delay: int | None = None,
    advance: int | None = None,
    blend: bool = False,
    batch_size: int = 64,
    episode: int = 0,
) -> EpisodeReplay:
    """Replay one episode.

    predictor: a ChunkPredictor (see inference.py). truth: [N, A] ground-truth actions (raw
    units, deg). observe(frames) -> {key: [B, *shape]} observations of those episode frames.
    batch_size: boundaries per predict() call in the batched paths (gt_prefix, and act).
    """
    if mode not in MODES:
        raise ReplayInputError(f"--mode={mode} is not one of {', '.join(MODES)}")
    truth = np.asarray(truth, dtype=np.float64)
    delay, advance = resolve_delay_and_advance(predictor, delay, advance, blend)
    prefix_policy = is_prefix_policy(predictor)
    K = int(predictor.past_length) if prefix_policy else 0
    max_delay = int(predictor.max_delay) if prefix_policy else 0
    sched = chunk_schedule(len(truth), K, delay, int(predictor.chunk_size), advance, max_delay)
    n_chunks = len(sched.observation_frames)
    stitcher = Stitcher(len(truth), truth.shape[1], blend)
    out = EpisodeReplay(episode, truth, stitcher.values, stitcher.chunk_index, sched, blend=blend)
    t0 = time.perf_counter()

    if mode == "gt_prefix" or not prefix_policy:
        chunks = []
        for lo in range(0, n_chunks, max(1, batch_size)):
            idx = list(range(lo, min(lo + batch_size, n_chunks)))
            frames = [sched.observation_frames[i] for i in idx]
            prefixes = np.stack([truth[sched.prefix_frames(i)] for i in idx])  # [B, K+d, A]
            out.prefixes += list(prefixes)
            chunks.append(_predict(predictor, observe, frames, prefixes[:, :K], prefixes[:, K:]))
            out.predict_calls += 1
        for i, chunk in enumerate(np.concatenate(chunks)):
            out.chunks.append(chunk)
            stitcher.place(i, sched.placements[i], chunk)
    else:  # self_chaining: each prefix reads the stitched predictions, ground truth before p_0
        first = sched.placements[0]
        for i in range(n_chunks):
            pf = sched.prefix_frames(i)
            prefix = np.where((pf >= first)[:, None], stitcher.values[pf], truth[pf])
            out.prefixes.append(prefix)
            chunk = _predict(predictor, observe, [sched.observation_frames[i]], prefix[None, :K], prefix[None, K:])[0]
            out.predict_calls += 1
            out.chunks.append(chunk)
            stitcher.place(i, sched.placements[i], chunk)
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------- data from a LeRobotDataset


class DatasetEpisodes:
    """Ground-truth actions and observations of a local LeRobotDataset, by episode."""

    def __init__(self, repo_id: str, root: str | None = None, video_backend: str | None = "pyav"):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        self.dataset = LeRobotDataset(repo_id, root=root, video_backend=video_backend)
        self.features = self.dataset.meta.features
        self.num_episodes = int(self.dataset.meta.total_episodes)
        self.fps = int(self.dataset.meta.fps)

    @property
    def action_names(self) -> list[str]:
        names = self.features["action"].get("names")
        dim = int(self.features["action"]["shape"][0])
        return list(names) if names and len(names) == dim else [f"joint_{i}" for i in range(dim)]

    def _range(self, episode: int) -> tuple[int, int]:
        ep = self.dataset.meta.episodes[int(episode)]
        return int(ep["dataset_from_index"]), int(ep["dataset_to_index"])

    def length(self, episode: int) -> int:
        lo, hi = self._range(episode)
        return hi - lo

    def actions(self, episode: int) -> np.ndarray:
        """[N, A] ground-truth actions of one episode."""
        lo, hi = self._range(episode)
        rows = self.dataset.hf_dataset.select_columns(["action"]).with_format("numpy")[lo:hi]
        return np.asarray(rows["action"], dtype=np.float64)

    def observer(self, episode: int, keys: list[str]) -> ObservationFn:
        """observe(frames) -> {key: [B, *shape] float32}, frames as LeRobotDataset returns them
        (images float in [0, 1], channels first)."""
        lo, _ = self._range(episode)

        def observe(frames: list[int]) -> dict[str, np.ndarray]:
            items = [self.dataset[lo + int(f)] for f in frames]
            return {k: np.stack([np.asarray(item[k], dtype=np.float32) for item in items]) for k in keys}

        return observe


def chunks_npz(replays: list[EpisodeReplay]) -> bytes:
    """STEM_chunks.npz (the layout of closed-loop evaluation's): per episode e ``ep{e}_chunks``
    [n, C, A] deg, every chunk as predicted (also the frames a later chunk replaced), and
    ``ep{e}_starts`` [n], the episode frame p_i each chunk is placed at."""
    import io

    arrays = {}
    for rep in replays:
        arrays[f"ep{rep.episode}_chunks"] = np.stack(rep.chunks)
        arrays[f"ep{rep.episode}_starts"] = np.asarray(rep.schedule.placements, dtype=np.int64)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def stitched_csv(replays: list[EpisodeReplay], joint_names: list[str]) -> str:
    """One row per episode, frame and joint: ground truth, stitched prediction, source and chunk.

    Rows with source ``prefix`` are the ground-truth frames before the first chunk (the first
    prefix; prediction = the value fed to the policy); rows with source ``prediction`` are the
    stitched frames the metrics are computed on, in frame order. A chunk boundary is a frame
    whose chunk index differs from the previous prediction row's.
    """
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["episode", "frame", "joint", "truth", "prediction", "source", "chunk"])
    for rep in replays:
        for f in range(rep.stop):
            source = "prefix" if f < rep.start else "prediction"
            values = rep.truth[f] if f < rep.start else rep.stitched[f]
            chunk = 0 if f < rep.start else int(rep.chunk_index[f])
            for j, name in enumerate(joint_names):
                writer.writerow([rep.episode, f, name, repr(float(rep.truth[f, j])), repr(float(values[j])), source, chunk])
    return buf.getvalue()
