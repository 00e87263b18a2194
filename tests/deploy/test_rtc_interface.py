"""act_smooth under LeRobot's real-time chunking interface, driven through LeRobot's own ActionQueue.

The queue, its leftover and the engine's pad/truncate helper are LeRobot's (what
`lerobot-rollout --inference.type=rtc` uses); the postprocessor is left out (identity), so the
queue's processed actions equal the policy's normalised ones.
"""

import json
import logging
import sys
from pathlib import Path

import pytest
import torch

from lerobot.policies.rtc import ActionQueue
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.rollout.inference.rtc import _normalize_prev_actions_length, supports_rtc_inference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))
from policy_testlib import tiny_policy  # noqa: E402

HORIZON = 10  # the engine's default --inference.rtc.execution_horizon
TOL = 1e-6


def observation(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observation.state": torch.randn(1, 6, generator=g),
        "observation.environment_state": torch.randn(1, 4, generator=g),
    }


class Engine:
    """The part of LeRobot's RTC loop that touches the policy: leftover -> call -> merge -> pop.

    Timing as in lerobot-rollout: the call starts right after the control loop sent the action of
    the observation's tick (the last `pop` before `infer`); a call of real_delay periods lets the
    loop send real_delay - 1 more actions before the merge drops real_delay rows."""

    def __init__(self, policy, horizon: int = HORIZON):
        self.policy = policy
        self.queue = ActionQueue(RTCConfig(execution_horizon=horizon))
        self.horizon = horizon
        self.executed: list[torch.Tensor] = []
        self.merge_frames: list[int] = []  # frame (index in `executed`) of the first action after each merge

    def infer(self, batch, delay: int, real_delay: int | None = None):
        leftover = self.queue.get_left_over()
        if leftover is not None:
            leftover = _normalize_prev_actions_length(leftover, target_steps=self.horizon)
        chunk = self.policy.predict_action_chunk(batch, inference_delay=delay, prev_chunk_left_over=leftover)
        real_delay = max(delay, 1) if real_delay is None else real_delay
        before = self.queue.get_action_index()
        self.pop(real_delay - 1)
        self.queue.merge(chunk[0], chunk[0].clone(), real_delay, before)
        self.merge_frames.append(len(self.executed))
        return leftover, chunk

    def pop(self, n: int):
        for _ in range(n):
            action = self.queue.get()
            if action is not None:
                self.executed.append(action)


def expected_tail(policy, batch, past: list[torch.Tensor], committed: torch.Tensor):
    """predict_chunk_normalised on the prefix docs/deployment.md documents."""
    past_t = torch.stack(past).unsqueeze(0) if past else committed.new_zeros(1, 0, committed.shape[-1])
    return policy.predict_chunk_normalised(batch, past_t, committed)


def test_declares_rtc_as_lerobot_checks_it():
    policy = tiny_policy()
    assert policy.supports_rtc()
    assert supports_rtc_inference(policy)


@pytest.mark.parametrize("relative", [False, True])
def test_chunks_equal_predict_chunk_normalised_on_the_documented_prefix(relative, tmp_path, monkeypatch):
    monkeypatch.setenv("ACTSMOOTH_CHUNK_LOG", str(tmp_path / "chunks.jsonl"))
    policy = tiny_policy(use_action_relative=relative)
    policy.reset()
    engine = Engine(policy)
    K, D, C = 4, 2, 8

    # Episode start: no leftover, no latency yet -> d = 1, a_0 = the bootstrap action.
    batch = observation(0)
    leftover, chunk = engine.infer(batch, delay=0)
    assert leftover is None and chunk.shape == (1, 1 + C, 6)
    a0 = policy._bootstrap_action(batch).unsqueeze(1)
    torch.testing.assert_close(chunk[:, :1], a0, atol=TOL, rtol=0)
    torch.testing.assert_close(chunk[:, 1:], expected_tail(policy, batch, [], a0), atol=TOL, rtol=0)

    # Later calls: a_0 = the last action sent, committed = a_0 + the first d - 1 leftover rows,
    # past = the K actions sent before a_0, reaching back into earlier chunks.
    for step, (delay, sent_between) in enumerate([(2, 3), (1, 2), (2, 1), (2, 4), (1, 1)]):
        engine.pop(sent_between)
        batch = observation(step + 1)
        left = engine.queue.get_left_over()
        a0, past = engine.executed[-1], engine.executed[-K - 1 : -1]
        leftover, chunk = engine.infer(batch, delay=delay)
        d = min(max(delay, 1), D)
        committed = torch.cat([a0.unsqueeze(0), left[: d - 1]]).unsqueeze(0)
        assert chunk.shape == (1, d + C, 6)
        torch.testing.assert_close(chunk[:, :d], committed, atol=0, rtol=0)
        torch.testing.assert_close(chunk[:, d:], expected_tail(policy, batch, past, committed), atol=TOL, rtol=0)
    # After the merge the queue holds exactly the predicted continuation.
    torch.testing.assert_close(engine.queue.get_left_over(), chunk[0, d:], atol=0, rtol=0)
    # What the robot was sent is a_0 of each call followed by the prefix's continuation: the
    # actions sent after a call start with its committed rows 1.. and then its predicted rows.
    engine.pop(3)
    torch.testing.assert_close(torch.stack(engine.executed[-3:]), chunk[0, d : d + 3], atol=0, rtol=0)
    # The chunk log places every chunk's predicted actions at the frame where they were sent.
    records = [json.loads(line) for line in (tmp_path / "chunks.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == engine.merge_frames
    assert [r["d"] for r in records] == [1, 2, 1, 2, 2, 1]


def test_delay_zero_still_commits_a0():
    policy = tiny_policy()
    engine = Engine(policy)
    engine.infer(observation(0), delay=0)
    engine.pop(2)
    _, chunk = engine.infer(observation(1), delay=0)
    assert chunk.shape[1] == 1 + 8
    torch.testing.assert_close(chunk[0, 0], engine.executed[-1], atol=0, rtol=0)


def test_delay_beyond_D_passes_the_oldest_committed_actions_as_past_and_logs_once(caplog):
    # D = 2, K = 4: a call at delay 5 commits a_0 + 4 leftover rows; the policy is called with the
    # 3 oldest of them appended to the past and the last 2 as committed, and the returned chunk
    # starts with all 5 committed rows, so its predictions start where execution will be.
    policy = tiny_policy()
    engine = Engine(policy)
    engine.infer(observation(0), delay=0)
    engine.pop(3)
    batch = observation(1)
    left = engine.queue.get_left_over()
    sent = list(engine.executed)
    with caplog.at_level(logging.WARNING):
        _, chunk = engine.infer(batch, delay=5)
        engine.pop(2)
        engine.infer(observation(2), delay=7)
    committed = torch.cat([sent[-1].unsqueeze(0), left[:4]]).unsqueeze(0)
    assert chunk.shape[1] == 5 + 8
    torch.testing.assert_close(chunk[:, :5], committed, atol=0, rtol=0)
    past = (sent[:-1] + [committed[0, i] for i in range(3)])[-4:]
    torch.testing.assert_close(chunk[:, 5:], expected_tail(policy, batch, past, committed[:, 3:]), atol=TOL, rtol=0)
    messages = [r.getMessage() for r in caplog.records if "exceeds D=2" in r.getMessage()]
    assert len(messages) == 1 and "66.7 ms at 30 fps" in messages[0] and "passed as past" in messages[0]


def test_episode_start_holds_the_bootstrap_action():
    policy = tiny_policy()
    batch = observation(0)
    chunk = policy.predict_action_chunk(batch, inference_delay=2, prev_chunk_left_over=None)
    a0 = policy._bootstrap_action(batch).unsqueeze(1)
    committed = torch.cat([a0, a0], dim=1)
    torch.testing.assert_close(chunk[:, :2], committed, atol=0, rtol=0)
    torch.testing.assert_close(chunk[:, 2:], expected_tail(policy, batch, [], committed), atol=TOL, rtol=0)


def test_queue_ran_dry_holds_the_last_sent_action():
    policy = tiny_policy()
    engine = Engine(policy)
    engine.infer(observation(0), delay=0)
    engine.pop(20)  # more than queued: the queue runs dry, the servo holds the last target
    assert engine.queue.qsize() == 0
    batch = observation(1)
    a0, past = engine.executed[-1], engine.executed[-5:-1]
    leftover, chunk = engine.infer(batch, delay=2)
    assert not leftover.any()  # the engine pads the empty leftover with zeros
    committed = a0.reshape(1, 1, 6).expand(1, 2, 6)
    torch.testing.assert_close(chunk[:, :2], committed, atol=0, rtol=0)
    torch.testing.assert_close(chunk[:, 2:], expected_tail(policy, batch, past, committed), atol=TOL, rtol=0)


def test_reset_forgets_the_past():
    policy = tiny_policy()
    engine = Engine(policy)
    engine.infer(observation(0), delay=0)
    engine.pop(3)
    policy.reset()
    engine.queue.clear()  # what the engine's reset() does with the policy's
    batch = observation(1)
    _, chunk = engine.infer(batch, delay=1)
    a0 = policy._bootstrap_action(batch).unsqueeze(1)
    torch.testing.assert_close(chunk[:, 1:], expected_tail(policy, batch, [], a0), atol=TOL, rtol=0)


def test_unknown_leftover_is_used_without_past():
    policy = tiny_policy()
    policy.reset()
    g = torch.Generator().manual_seed(3)
    leftover = torch.zeros(HORIZON, 6)
    leftover[:3] = torch.randn(3, 6, generator=g)
    batch = observation(0)
    a0 = policy._bootstrap_action(batch)
    chunk = policy.predict_action_chunk(batch, inference_delay=2, prev_chunk_left_over=leftover)
    committed = torch.cat([a0, leftover[:1]]).unsqueeze(0)
    torch.testing.assert_close(chunk[:, 2:], expected_tail(policy, batch, [], committed), atol=TOL, rtol=0)


def test_bad_rtc_input_is_refused():
    policy = tiny_policy()
    batch = observation(0)
    with pytest.raises(ValueError, match="inference_delay must be >= 0"):
        policy.predict_action_chunk(batch, inference_delay=-1, prev_chunk_left_over=None)
    with pytest.raises(ValueError, match=r"prev_chunk_left_over must be \[T, A=6\]"):
        policy.predict_action_chunk(batch, inference_delay=1, prev_chunk_left_over=torch.zeros(4, 5))
    two_robots = {key: value.expand(2, -1) for key, value in batch.items()}
    with pytest.raises(ValueError, match="batch of one observation"):
        policy.predict_action_chunk(two_robots, inference_delay=1, prev_chunk_left_over=None)


def test_sync_select_action_path_unchanged_by_rtc_calls():
    policy = tiny_policy()
    policy.reset()
    batch = observation(0)
    reference = [policy.select_action(batch) for _ in range(12)]
    policy.reset()
    Engine(policy).infer(batch, delay=1)  # RTC calls keep their own state
    policy.reset()
    again = [policy.select_action(batch) for _ in range(12)]
    for a, b in zip(reference, again, strict=True):
        assert a.shape == (1, 6)
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    # Without RTC arguments predict_action_chunk still returns the C actions after the own prefix.
    assert policy.predict_action_chunk(batch).shape == (1, 8, 6)


def test_simulated_latency_makes_every_rtc_call_last_at_least_that_long(monkeypatch):
    import time

    monkeypatch.setenv("ACTSMOOTH_RTC_LATENCY_MS", "150")
    policy = tiny_policy()
    policy.reset()
    engine = Engine(policy)
    for step in range(2):
        started = time.perf_counter()
        engine.infer(observation(step), delay=step)
        assert time.perf_counter() - started >= 0.150
        engine.pop(1)


@pytest.mark.parametrize("value", ["fast", "-5", "inf"])
def test_a_bad_simulated_latency_is_refused(monkeypatch, value):
    monkeypatch.setenv("ACTSMOOTH_RTC_LATENCY_MS", value)
    with pytest.raises(ValueError, match="ACTSMOOTH_RTC_LATENCY_MS must be a number of milliseconds >= 0"):
        tiny_policy().reset()
