"""act_smooth's prefix under LeRobot's real-time chunking engine (`lerobot-rollout --inference.type=rtc`).

The engine (lerobot/rollout/inference/rtc.py) runs the policy in a background thread that
starts a call as soon as the queue holds at most `--inference.queue_threshold` actions, i.e. right
after the control loop, at tick t, read the observation and sent the action of tick t. Each call
passes `inference_delay` (ceil of the worst latency so far, in control periods; 0 before the first
measurement) and `prev_chunk_left_over`: the actions of the last returned chunk not sent yet (the
first one is for tick t+1), zero-padded or truncated to `--inference.rtc.execution_horizon` rows
(None when the queue is empty after a reset). When the call returns, the engine drops the first
`real_delay` = ceil(latency / period) >= 1 rows of the chunk and sends the rest, one per tick: row
j of the returned chunk is sent at tick t + j. Row 0 is therefore the action of the observation's
own tick, which was already sent: act_smooth's a_0.

Mapping onto act_smooth's prefix (normalised action space, batch of one):

    d         = max(inference_delay, 1)              (a_0 is always committed)
    a_0       = the last action sent before the leftover (found in the chunks this policy returned:
                the leftover is located in the last chunk by exact match)
    committed = [a_0, the first d - 1 leftover rows] (the actions of ticks t .. t+d-1, sent while
                the policy runs)
    past      = the K actions sent before a_0
    returned  = [committed, predict_chunk_normalised(batch, past, committed)]   [1, d + C, A]

so the engine's "drop the first real_delay rows" leaves exactly the predicted continuation of the
prefix when real_delay = d.

Beyond the trained delay (d > D, logged once): the policy takes D committed actions, so the d - D
oldest committed rows are passed as the newest past (they will have been sent when the chunk
arrives) and the last D as committed; the returned chunk still starts with all d committed rows,
so the predicted actions start at tick t+d, where execution really is when they arrive
(`RTCPrefixTracker.policy_prefix`; the closed loop's timeline does the same).

Edge cases:
    leftover None (episode start, after reset): nothing was sent; no past, a_0 = the caller's
        bootstrap action (the current joint state as an action: the arm holds).
    fewer than d - 1 real leftover rows: the missing committed actions repeat the last real one (a
        position-controlled servo holds its last target when the queue runs dry), or a_0.
    leftover not found in the last chunk (another caller's queue, a re-anchored prefix): no past,
        a_0 = the bootstrap action, the real rows are the leftover without its trailing all-zero
        padding rows; logged once.

Chunk log: with the environment variable ACTSMOOTH_CHUNK_LOG=<file>, every call appends one JSON
line {"episode", "call", "frame", "time", "inference_delay", "d", "past", "leftover_rows",
"chunk_rows", "policy_ms"}: "episode" counts the calls without a leftover (episode starts);
"frame" is the 0-based frame of the episode's recording where the chunk's predicted actions start
(the rollout records one frame per action sent, and the leftovers tell exactly how many were
sent; null when the leftover was not this policy's); "time" is time.time() when the chunk is
handed back; "policy_ms" the policy's own share of the call, without the engine's pre/post-
processing. `actsmooth-score --chunk_log=<file>` reads the chunk boundaries from it.

Simulated latency: with ACTSMOOTH_RTC_LATENCY_MS=<ms>, every RTC call returns no sooner than that
many milliseconds after it started (the policy waits out the rest), so that `lerobot-rollout` on
the simulated arm meets a real latency beyond what this machine's inference takes; the engine
measures it like any other (its d = ceil of the worst call time, pre- and postprocessing
included, over the control period).
"""

from __future__ import annotations

import json
import logging
import os
import time

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

CHUNK_LOG_ENV = "ACTSMOOTH_CHUNK_LOG"
LATENCY_ENV = "ACTSMOOTH_RTC_LATENCY_MS"


def simulated_latency_s() -> float:
    """ACTSMOOTH_RTC_LATENCY_MS in seconds (0 when unset)."""
    text = os.environ.get(LATENCY_ENV, "").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{LATENCY_ENV} must be a number of milliseconds >= 0, got {text!r}: unset it or give e.g. 200")
    return value / 1000.0


class RTCPrefixTracker:
    """Remembers the chunks returned to the engine, to rebuild the past and committed prefix."""

    def __init__(self, past_length: int, max_delay: int):
        self.past_length = past_length
        self.max_delay = max_delay
        self._warned: set[str] = set()
        self._log_path = os.environ.get(CHUNK_LOG_ENV) or None
        self._latency_s = simulated_latency_s()
        self._episode = -1
        self._call = 0
        self._sent_in_episode: int | None = 0  # actions sent this episode up to a_0 (None: unknown)
        self._record: dict = {}
        self._requested_delay: int | None = None
        self._started = 0.0
        self.reset()

    def reset(self) -> None:
        self._chunk: Tensor | None = None  # [T, A], the last chunk returned
        self._before_chunk: Tensor | None = None  # [<=K, A], executed before the chunk's first row
        self._pending_before: Tensor | None = None  # the same for the chunk being predicted
        # first row of the chunk that was sent: 1 when row 0 is the bootstrap action (the arm held still)
        self._first_sent_row = self._pending_first_sent_row = 0

    def delay(self, inference_delay: int | None, fps: float | None = None) -> int:
        """The committed length d for the engine's inference_delay."""
        requested = int(inference_delay or 0)
        self._requested_delay = requested
        if requested < 0:
            raise ValueError(f"inference_delay must be >= 0 control periods, got {requested}.")
        if requested > self.max_delay:
            budget = (
                f"{self.max_delay * 1000 / fps:.1f} ms at {fps:g} fps"
                if fps
                else f"D * 1000 / fps ms, e.g. {self.max_delay * 1000 / 30:.1f} ms at 30 fps"
            )
            self._warn_once(
                "delay",
                f"act_smooth: inference latency of {requested} control periods exceeds D={self.max_delay}, "
                f"the longest delay this policy was trained for ({budget}); the {requested - self.max_delay} "
                "oldest committed actions are passed as past, so the observation is older than the policy "
                "assumes. Train with a larger length_prefix_future or run inference on a faster device.",
            )
        return max(requested, 1)

    def policy_prefix(self, past: Tensor, committed: Tensor) -> tuple[Tensor, Tensor]:
        """(past [1, <=K, A], committed [1, min(d, D), A]) the policy is called with: the d - D oldest
        committed actions become the newest past when d exceeds D."""
        stale = committed.shape[1] - self.max_delay
        if stale <= 0:
            return past, committed
        known = torch.cat([past, committed[:, :stale]], dim=1)
        return known[:, max(known.shape[1] - self.past_length, 0) :], committed[:, stale:]

    def prefix(self, leftover: Tensor | None, d: int, bootstrap: Tensor) -> tuple[Tensor, Tensor]:
        """(past [1, k, A], committed [1, d, A]) for the next call; bootstrap [1, A] is a_0's fallback."""
        self._record = {"inference_delay": self._requested_delay, "d": d, "leftover_rows": 0}
        self._started = time.perf_counter()
        if leftover is None:
            self.reset()
            self._episode += 1
            self._call = 0
            self._sent_in_episode = 0
            self._pending_before = bootstrap.new_zeros(0, bootstrap.shape[-1])
            self._pending_first_sent_row = 1
            self._record["frame"] = d - 1
            return self._pending_before.unsqueeze(0), bootstrap.unsqueeze(1).expand(1, d, -1)
        if leftover.ndim == 3:
            if leftover.shape[0] != 1:
                raise ValueError("act_smooth's RTC path runs one robot: prev_chunk_left_over must be [T, A] or [1, T, A].")
            leftover = leftover[0]
        if leftover.ndim != 2 or leftover.shape[-1] != bootstrap.shape[-1]:
            raise ValueError(
                f"prev_chunk_left_over must be [T, A={bootstrap.shape[-1]}], got {tuple(leftover.shape)}."
            )
        leftover = leftover.to(bootstrap)
        offset = self._locate(leftover)
        if offset is None:
            if self._chunk is not None:
                self._warn_once(
                    "match",
                    "act_smooth: prev_chunk_left_over is not the tail of the last chunk this policy "
                    "returned; conditioning on the leftover only (no executed past).",
                )
            sent = leftover[:0]
            self._sent_in_episode = None
            nonzero = (leftover != 0).any(dim=-1).nonzero()
            real = leftover[: int(nonzero[-1]) + 1] if len(nonzero) else leftover[:0]
        else:
            first = self._first_sent_row
            sent = torch.cat([self._before_chunk, self._chunk[first : max(offset, first)]])
            # Rows 1 .. offset-1 of the last chunk were sent since its a_0 (row 0, counted then or
            # never sent), whichever of them the engine dropped: the leftover and the chunk agree.
            if self._sent_in_episode is not None:
                self._sent_in_episode += max(offset - 1, 0)
            real = leftover[: min(len(leftover), len(self._chunk) - offset)]
        a0 = sent[-1:] if len(sent) else bootstrap
        self._pending_first_sent_row = 0 if len(sent) else 1
        past = sent[:-1][max(len(sent) - 1 - self.past_length, 0) :]
        committed = torch.cat([a0, real[: d - 1]])
        if len(committed) < d:
            committed = torch.cat([committed, committed[-1:].expand(d - len(committed), -1)])
        self._pending_before = past
        self._record["leftover_rows"] = len(real)
        # Frame (0-based, in the recording) where this chunk's predicted actions start: a_0 is the
        # frame of the last sent action, and the engine sends row d next when real_delay = d.
        sent_count = self._sent_in_episode
        self._record["frame"] = None if sent_count is None else sent_count - 1 + d
        return past.unsqueeze(0), committed.unsqueeze(0)

    def remember(self, returned_chunk: Tensor) -> None:
        """Record the chunk [1, d + C, A] handed to the engine (after `prefix`)."""
        if self._pending_before is None:
            raise RuntimeError("RTCPrefixTracker.remember() needs a prefix() call first.")
        self._before_chunk = self._pending_before
        self._first_sent_row = self._pending_first_sent_row
        self._chunk = returned_chunk[0].detach().clone()
        policy_ms = (time.perf_counter() - self._started) * 1000
        wait = self._latency_s - (time.perf_counter() - self._started)
        if wait > 0:
            time.sleep(wait)
        if self._log_path:
            record = {
                "episode": self._episode,
                "call": self._call,
                "time": time.time(),
                **self._record,
                "past": len(self._before_chunk),
                "chunk_rows": len(self._chunk),
                "policy_ms": policy_ms,
                "returned_ms": (time.perf_counter() - self._started) * 1000,
            }
            with open(self._log_path, "a") as log:
                log.write(json.dumps(record) + "\n")
        self._call += 1

    def _locate(self, leftover: Tensor) -> int | None:
        """Offset o with leftover = last_chunk[o:] (truncated or zero-padded), or None."""
        if self._chunk is None:
            return None
        chunk, rows = self._chunk, len(leftover)
        for offset in range(len(chunk) + 1):
            n = min(rows, len(chunk) - offset)
            if torch.equal(leftover[:n], chunk[offset : offset + n]) and not leftover[n:].any():
                return offset
        return None

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)
