"""Deterministic asynchronous-inference timeline: which action the robot executes at each
frame, when the next chunk is requested, and what prefix the policy sees.

Pure scheduling logic (numpy only, no simulator, no policy): the closed loop in
:mod:`closed_loop` drives it frame by frame, and the tests drive it with a stand-in
predictor. Frames are integers at the simulation fps; actions are ``[A]`` arrays of joint
targets in degrees.

act_smooth (asynchronous, see docs/closed_loop.md):

- an inference latency of L ms commits ``d = max(1, ceil(L * fps / 1000))`` actions: the
  robot keeps executing the current chunk while the next one is computed, so the actions
  at the request frame t .. t+d-1 are fixed before the new chunk can arrive;
- a request is made at the first frame t where the actions left in the current chunk
  (frames t .. end, t included) number ``threshold`` or fewer (default ``threshold = d``:
  the old chunk is used up exactly when the new one arrives);
- at request frame t the policy gets the observation at t, ``past`` = the K executed actions
  before t (fewer at the episode start) and ``committed`` = the d actions of the current
  chunk for frames t .. t+d-1; its chunk of C actions covers frames t+d .. t+d+C-1 and
  takes over at t+d (the "switch frame"), discarding what was left of the old chunk;
- at t = 0 nothing is executing yet: the robot holds its measured initial joint positions,
  which are the d committed actions of the first request (``past`` is empty); the first
  chunk takes over at frame d.
- a latency beyond the policy's trained D (d > D, ``max_delay``): the observation is d - D frames
  older than the policy assumes. The first d - D committed actions are passed as the newest
  ``past`` (they will have been executed when the chunk arrives), the last D as ``committed``,
  and the chunk still takes over at t+d, where execution really is when it arrives. The policy
  sees a prefix of the shape it was trained on; what it lacks is the d - D frames of
  observation it would have seen had the request been made later.
- overlap blending (``blend_frames`` L > 0, the plan's inference-time reference): the request is
  made L frames earlier (threshold = d + L), so L actions of the old chunk are left when the new
  one arrives at t+d; frames t+d .. t+d+L-1 execute a linear crossfade, weight i / (L + 1) on the
  new chunk at its i-th frame (i = 1..L), as the replay's blending. The crossfade has two kinks,
  the switch and its end t+d+L: both are metric boundaries.

act (LeRobot's ACT, the vanilla baseline): synchronous. At request frame t the robot waits for
the chunk. With ``hold_frames`` h = 0 no frames pass while it is computed (the simulation
waits); with h = ceil(L * fps / 1000) the arm holds its last action for the h frames a stock
``select_action`` loop spends computing, and the chunk, predicted from the observation at t,
covers frames t+h .. t+h+C-1. The robot executes ``n_action_steps`` of it, then requests again
(chunks back to back, no prefix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def committed_actions_for_latency(latency_ms: float, fps: float) -> int:
    """d = max(1, ceil(latency_ms * fps / 1000)): frames that pass while a chunk is computed.

    a_0, the action at the observation frame, is always committed (d >= 1). A tiny epsilon
    keeps e.g. 100 ms at 30 fps (3.0000000000000004 frames) at exactly 3.
    """
    if latency_ms < 0 or not math.isfinite(latency_ms):
        raise ValueError(f"latency must be a finite number of milliseconds >= 0, got {latency_ms}")
    return max(1, math.ceil(latency_ms * fps / 1000.0 - 1e-9))


def hold_frames_for_latency(latency_ms: float, fps: float) -> int:
    """h = ceil(latency_ms * fps / 1000): frames a synchronous loop holds while a chunk is computed
    (0 at zero latency; the same epsilon as committed_actions_for_latency)."""
    if latency_ms < 0 or not math.isfinite(latency_ms):
        raise ValueError(f"latency must be a finite number of milliseconds >= 0, got {latency_ms}")
    return max(0, math.ceil(latency_ms * fps / 1000.0 - 1e-9))


def max_supported_latency_ms(max_delay: int, fps: float) -> float:
    """The largest latency whose committed actions fit the policy's D: D * 1000 / fps ms."""
    return max_delay * 1000.0 / fps


@dataclass
class ChunkRequest:
    """One inference request. ``committed_frames`` is empty for the synchronous act baseline.

    ``chunk`` is the whole chunk [C, A] the policy returned, placed at frames switch_frame ..
    switch_frame + C - 1, also the actions a later request discarded (the replan discontinuity
    compares them with the next chunk)."""

    index: int
    request_frame: int
    committed_frames: list[int]
    switch_frame: int
    past_frames: list[int]
    chunk: np.ndarray | None = field(default=None, repr=False, compare=False)
    # Frames from switch_frame crossfaded with the old chunk (overlap blending; 0 without).
    blended_frames: int = 0

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "request_frame": self.request_frame,
            "committed_frames": list(self.committed_frames),
            "switch_frame": self.switch_frame,
            "past_frames": list(self.past_frames),
            "blended_frames": self.blended_frames,
        }


@dataclass
class ChunkTimeline:
    """Frame-by-frame schedule of chunk requests and executed actions.

    Use: ``start(initial_action)``; then for every frame t = 0, 1, ...:
    ``if request_due(t): past, committed = prefix(t); accept(t, predict(obs_t, past, committed))``,
    then ``action(t)`` gives the action to execute at t (and records it as executed).

    policy_type: "act_smooth" (asynchronous, prefix-conditioned) or "act" (synchronous).
    chunk_size: C, actions per predicted chunk.
    action_dim: A, joints per action.
    delay: d, committed actions per request (act_smooth; ignored for act).
    threshold: act_smooth requests when this many actions or fewer are left (d <= threshold <= C).
    past_length: K, executed actions passed as past (act_smooth).
    max_delay: D, the most committed actions the policy takes (act_smooth; default d). With d > D the
        first d - D committed actions are passed as the newest past (see the module docstring).
    n_action_steps: actions executed per chunk (act; 1 <= n <= C).
    hold_frames: h, frames the arm holds its last action while a chunk is computed (act).
    blend_frames: L, frames crossfaded from the old chunk into the new one (act_smooth; 0 = none).
        The threshold is then d + L (its default), so exactly L old actions overlap the new chunk.
    """

    policy_type: str
    chunk_size: int
    action_dim: int
    delay: int = 1
    threshold: int | None = None
    past_length: int = 0
    n_action_steps: int | None = None
    max_delay: int | None = None
    hold_frames: int = 0
    blend_frames: int = 0
    requests: list[ChunkRequest] = field(default_factory=list, init=False)
    executed: list[np.ndarray] = field(default_factory=list, init=False)
    # Per executed frame: index of the request whose chunk supplied the action, -1 for a hold
    # (act_smooth's initial one, act's while each chunk is computed).
    executed_source: list[int] = field(default_factory=list, init=False)
    # Planned actions by absolute frame; frames < _plan_start are executed and dropped.
    _plan: dict[int, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    _plan_source: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _plan_end: int = field(default=0, init=False, repr=False)
    _pending_switch: int | None = field(default=None, init=False, repr=False)
    _initial: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if self.policy_type not in ("act_smooth", "act"):
            raise ValueError(f"policy_type must be 'act_smooth' or 'act', got {self.policy_type!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.policy_type == "act_smooth":
            if self.delay < 1:
                raise ValueError(f"delay (committed actions) must be >= 1, got {self.delay}")
            if self.blend_frames < 0:
                raise ValueError(f"blend_frames must be >= 0, got {self.blend_frames}")
            if self.threshold is None:
                self.threshold = self.delay + self.blend_frames
            elif self.blend_frames and self.threshold != self.delay + self.blend_frames:
                raise ValueError(
                    f"blending {self.blend_frames} frames requests at d + L = {self.delay + self.blend_frames} "
                    f"actions left; threshold={self.threshold} contradicts it (leave the threshold unset)"
                )
            if not self.delay <= self.threshold <= self.chunk_size:
                raise ValueError(
                    f"threshold must be between the committed actions d={self.delay} and the chunk size "
                    f"C={self.chunk_size}, got {self.threshold}"
                )
            if self.past_length < 0:
                raise ValueError(f"past_length must be >= 0, got {self.past_length}")
            if self.max_delay is None:
                self.max_delay = self.delay
            if self.max_delay < 1:
                raise ValueError(f"max_delay (the policy's D) must be >= 1, got {self.max_delay}")
        else:
            if self.blend_frames:
                raise ValueError("blend_frames is for act_smooth's asynchronous timeline; act runs chunks back to back")
            if self.n_action_steps is None:
                self.n_action_steps = self.chunk_size
            if not 1 <= self.n_action_steps <= self.chunk_size:
                raise ValueError(
                    f"n_action_steps must be between 1 and chunk_size={self.chunk_size}, got {self.n_action_steps}"
                )
            if self.hold_frames < 0:
                raise ValueError(f"hold_frames must be >= 0, got {self.hold_frames}")

    # -- schedule ---------------------------------------------------------------------------

    @property
    def stale_frames(self) -> int:
        """d - D (>= 0): committed actions passed to the policy as past, because it takes only D."""
        return max(0, self.delay - self.max_delay) if self.policy_type == "act_smooth" else 0

    def start(self, initial_action: np.ndarray | None = None) -> None:
        """Begin an episode at frame 0. ``initial_action`` ([A], the measured joint positions) is
        held for the d frames act_smooth's first chunk takes, and for act's first hold."""
        self.requests, self.executed, self.executed_source = [], [], []
        self._plan, self._plan_source = {}, {}
        self._pending_switch = None
        needs_hold = self.policy_type == "act_smooth" or self.hold_frames > 0
        if needs_hold and initial_action is None:
            raise ValueError("the initial joint positions are needed to hold while the first chunk is computed")
        self._initial = None if initial_action is None else np.asarray(initial_action, dtype=np.float64).reshape(self.action_dim)
        if self.policy_type == "act_smooth":
            hold = self._initial
            for t in range(self.delay):
                self._plan[t] = hold.copy()
                self._plan_source[t] = -1
            self._plan_end = self.delay
        else:
            self._plan_end = 0

    def request_due(self, t: int) -> bool:
        """Whether a chunk is requested at frame t (call once per frame, before ``action(t)``)."""
        self._check_frame(t)
        if self.policy_type == "act":
            return self._plan_end <= t
        if not self.requests:
            return t == 0
        # Only one request in flight: wait until the last one's chunk has taken over.
        return t >= self.requests[-1].switch_frame and self._plan_end - t <= self.threshold

    def prefix(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(past [k, A], committed [d, A]) for a request at frame t; both [0, A] for act."""
        dim = self.action_dim
        if self.policy_type == "act":
            return np.zeros((0, dim)), np.zeros((0, dim))
        known = self.executed + [self._plan[f] for f in range(t, t + self.stale_frames)]
        k = min(self.past_length, len(known))
        past = np.stack(known[len(known) - k :]) if k else np.zeros((0, dim))
        committed = np.stack([self._plan[f] for f in range(t + self.stale_frames, t + self.delay)])
        return past, committed

    def accept(self, t: int, chunk: np.ndarray) -> ChunkRequest:
        """Take the chunk [C, A] predicted for a request at frame t into the plan."""
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.shape != (self.chunk_size, self.action_dim):
            raise ValueError(f"chunk must be [C={self.chunk_size}, A={self.action_dim}], got shape {chunk.shape}")
        if self.policy_type == "act":
            switch, keep, committed = t + self.hold_frames, self.n_action_steps, []
            past = []
            held = self.executed[-1] if self.executed else self._initial
            for f in range(t, switch):
                self._plan[f] = held.copy()
                self._plan_source[f] = -1
        else:
            switch, keep = t + self.delay, self.chunk_size
            newest = t + self.stale_frames
            committed = list(range(newest, t + self.delay))
            k = min(self.past_length, len(self.executed) + self.stale_frames)
            past = list(range(newest - k, newest))
        old = {f: self._plan[f] for f in self._plan if f >= switch}
        for f in old:
            del self._plan[f], self._plan_source[f]
        index = len(self.requests)
        for i in range(keep):
            self._plan[switch + i] = chunk[i]
            self._plan_source[switch + i] = index
        blended = 0
        if self.blend_frames and old:
            blended = min(len(old), self.blend_frames, keep)
            for i in range(blended):
                w = (i + 1) / (blended + 1)
                self._plan[switch + i] = (1 - w) * old[switch + i] + w * chunk[i]
        self._plan_end = switch + keep
        request = ChunkRequest(index, t, committed, switch, past, chunk=chunk.copy(), blended_frames=blended)
        self.requests.append(request)
        return request

    def action(self, t: int) -> np.ndarray:
        """The action executed at frame t ([A] deg); records it as executed."""
        self._check_frame(t)
        if t not in self._plan:
            raise RuntimeError(f"no action planned for frame {t}: a request was due and not made")
        a = self._plan.pop(t)
        self.executed.append(a)
        self.executed_source.append(self._plan_source.pop(t))
        return a.copy()

    # -- records ----------------------------------------------------------------------------

    def switch_frames(self, num_frames: int | None = None) -> list[int]:
        """Frames where a chunk takes over (all requests), below num_frames if given."""
        frames = [r.switch_frame for r in self.requests]
        return [f for f in frames if num_frames is None or f < num_frames]

    def metric_boundaries(self, num_frames: int) -> list[int]:
        """Junctions between two predicted chunks inside the episode: every switch frame but
        the first chunk's (left out as in the replay metrics)."""
        return [f for f in self.switch_frames(num_frames)[1:] if 0 < f < num_frames]

    def kink_frames(self, num_frames: int) -> list[int]:
        """The scalar metrics' boundaries: the junctions, and with blending each crossfade's end
        as well (its second kink), inside the episode."""
        ends = [r.switch_frame + r.blended_frames for r in self.requests[1:] if r.blended_frames]
        return sorted({*self.metric_boundaries(num_frames), *(f for f in ends if f < num_frames)})

    def _check_frame(self, t: int) -> None:
        if t != len(self.executed):
            raise RuntimeError(f"frames must be visited in order: expected frame {len(self.executed)}, got {t}")


def run_timeline(timeline: ChunkTimeline, predict, num_frames: int, initial_action: np.ndarray | None = None) -> np.ndarray:
    """Drive ``timeline`` for num_frames frames with ``predict(t, past, committed) -> [C, A]``
    (an open loop: no observations). Returns the executed actions [num_frames, A]."""
    timeline.start(initial_action)
    for t in range(num_frames):
        if timeline.request_due(t):
            past, committed = timeline.prefix(t)
            timeline.accept(t, predict(t, past, committed))
        timeline.action(t)
    return np.stack(timeline.executed)
