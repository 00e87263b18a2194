"""The asynchronous-inference timeline against schedules derived by hand.

The predictor here is a stand-in for a trained policy (ChunkPredictor.predict): request r
returns the chunk ``[100 (r+1) + i]`` for i = 0..C-1 on every joint, so each executed value
names the request and chunk index it came from; it records the prefix it was given.
"""

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.async_timeline import (
    ChunkTimeline,
    committed_actions_for_latency,
    hold_frames_for_latency,
    max_supported_latency_ms,
    run_timeline,
)

A = 3
HOLD = -1.0  # the measured initial joint positions, held while the first chunk is computed


class LabelledChunks:
    """Stand-in predictor: chunk of request r is 100 (r+1) + i; logs (t, past, committed)."""

    def __init__(self, chunk_size):
        self.chunk_size = chunk_size
        self.calls = []

    def __call__(self, t, past, committed):
        self.calls.append((t, past[:, 0].tolist(), committed[:, 0].tolist()))
        r = len(self.calls) - 1
        values = 100.0 * (r + 1) + np.arange(self.chunk_size)
        return np.repeat(values[:, None], A, axis=1)


def run(policy_type, num_frames, **kwargs):
    predictor = LabelledChunks(6)
    timeline = ChunkTimeline(policy_type=policy_type, chunk_size=6, action_dim=A, **kwargs)
    executed = run_timeline(timeline, predictor, num_frames, initial_action=np.full(A, HOLD))
    assert np.all(executed == executed[:, :1])  # every joint got the same labelled value
    return timeline, predictor, executed[:, 0].tolist()


@pytest.mark.parametrize(("latency_ms", "expected_d"), [(35, 2), (10, 1), (0, 1), (33.3, 1), (100, 3), (66.7, 3)])
def test_committed_actions_from_latency_at_30_fps(latency_ms, expected_d):
    assert committed_actions_for_latency(latency_ms, 30) == expected_d


def test_largest_supported_latency():
    assert max_supported_latency_ms(2, 30) == pytest.approx(66.666, abs=1e-2)
    assert committed_actions_for_latency(max_supported_latency_ms(2, 30), 30) == 2


def test_latency_35ms_two_committed_actions_chunk_6_past_2():
    d = committed_actions_for_latency(35, 30)
    timeline, predictor, executed = run("act_smooth", 16, delay=d, past_length=2)
    # Hand-derived: hold for frames 0-1; chunk r takes over when the previous one is used up.
    assert predictor.calls == [
        (0, [], [HOLD, HOLD]),
        (6, [102.0, 103.0], [104.0, 105.0]),
        (12, [202.0, 203.0], [204.0, 205.0]),
    ]
    assert executed == [HOLD, HOLD] + [100.0 + i for i in range(6)] + [200.0 + i for i in range(6)] + [300.0, 301.0]
    assert [r.as_dict() for r in timeline.requests] == [
        {"index": 0, "request_frame": 0, "committed_frames": [0, 1], "switch_frame": 2, "past_frames": [],
         "blended_frames": 0},
        {"index": 1, "request_frame": 6, "committed_frames": [6, 7], "switch_frame": 8, "past_frames": [4, 5],
         "blended_frames": 0},
        {"index": 2, "request_frame": 12, "committed_frames": [12, 13], "switch_frame": 14, "past_frames": [10, 11],
         "blended_frames": 0},
    ]
    assert timeline.switch_frames(16) == [2, 8, 14]
    assert timeline.metric_boundaries(16) == [8, 14]


def test_latency_10ms_one_committed_action_chunk_6_past_2():
    d = committed_actions_for_latency(10, 30)
    timeline, predictor, executed = run("act_smooth", 14, delay=d, past_length=2)
    assert predictor.calls == [
        (0, [], [HOLD]),
        (6, [103.0, 104.0], [105.0]),
        (12, [203.0, 204.0], [205.0]),
    ]
    assert executed == [HOLD] + [100.0 + i for i in range(6)] + [200.0 + i for i in range(6)] + [300.0]
    assert [(r.request_frame, r.committed_frames, r.switch_frame) for r in timeline.requests] == [
        (0, [0], 1),
        (6, [6], 7),
        (12, [12], 13),
    ]


def test_threshold_above_delay_discards_the_rest_of_the_old_chunk():
    timeline, predictor, executed = run("act_smooth", 12, delay=2, threshold=4, past_length=2)
    assert predictor.calls == [
        (0, [], [HOLD, HOLD]),
        (4, [100.0, 101.0], [102.0, 103.0]),
        (8, [200.0, 201.0], [202.0, 203.0]),
    ]
    # 104 and 105 of the first chunk are never executed.
    assert executed == [HOLD, HOLD, 100.0, 101.0, 102.0, 103.0, 200.0, 201.0, 202.0, 203.0, 300.0, 301.0]
    assert timeline.switch_frames() == [2, 6, 10]


def test_threshold_equal_to_chunk_size_requests_at_every_switch():
    timeline, predictor, executed = run("act_smooth", 8, delay=1, threshold=6, past_length=1)
    assert [c[0] for c in predictor.calls] == [0, 1, 2, 3, 4, 5, 6, 7]
    # Each chunk executes only its first action before the next one takes over.
    assert executed == [HOLD, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0]
    assert predictor.calls[2] == (2, [100.0], [200.0])


def test_past_is_shorter_at_the_episode_start():
    timeline, predictor, _ = run("act_smooth", 10, delay=1, threshold=5, past_length=4)
    assert predictor.calls[0] == (0, [], [HOLD])
    assert predictor.calls[1] == (2, [HOLD, 100.0], [101.0])  # only 2 frames executed before t=2


def test_act_runs_chunks_back_to_back_without_prefix():
    timeline, predictor, executed = run("act", 10, n_action_steps=4)
    assert predictor.calls == [(0, [], []), (4, [], []), (8, [], [])]
    assert executed == [100.0, 101.0, 102.0, 103.0, 200.0, 201.0, 202.0, 203.0, 300.0, 301.0]
    assert [(r.request_frame, r.committed_frames, r.switch_frame) for r in timeline.requests] == [
        (0, [], 0),
        (4, [], 4),
        (8, [], 8),
    ]
    assert timeline.metric_boundaries(10) == [4, 8]


def test_timeline_is_deterministic():
    first = run("act_smooth", 20, delay=2, threshold=3, past_length=2)
    second = run("act_smooth", 20, delay=2, threshold=3, past_length=2)
    assert first[1].calls == second[1].calls and first[2] == second[2]


@pytest.mark.parametrize(("delay", "threshold"), [(2, 1), (2, 7), (0, None)])
def test_invalid_threshold_or_delay_is_refused(delay, threshold):
    with pytest.raises(ValueError, match="threshold|delay"):
        ChunkTimeline(policy_type="act_smooth", chunk_size=6, action_dim=A, delay=delay, threshold=threshold)


def test_wrong_chunk_shape_is_refused():
    timeline = ChunkTimeline(policy_type="act_smooth", chunk_size=6, action_dim=A, delay=1)
    timeline.start(np.zeros(A))
    assert timeline.request_due(0)
    with pytest.raises(ValueError, match="chunk must be"):
        timeline.accept(0, np.zeros((5, A)))


def test_executed_source_names_the_chunk_of_every_frame():
    timeline, _, _ = run("act_smooth", 12, delay=2, threshold=4, past_length=2)
    assert timeline.executed_source == [-1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2]


def test_requests_keep_their_whole_chunk_including_the_discarded_actions():
    timeline, _, executed = run("act_smooth", 12, delay=2, threshold=4, past_length=2)
    # Request 0's chunk covers frames 2..7; frames 6 and 7 (104, 105) went to request 1's chunk.
    first = timeline.requests[0]
    assert (first.switch_frame, first.chunk[:, 0].tolist()) == (2, [100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    assert [r.chunk[0, 0] for r in timeline.requests] == [100.0, 200.0, 300.0]
    assert "chunk" not in first.as_dict()
    # act keeps the n_action_steps it executes and the C - n it never does.
    act, _, _ = run("act", 10, n_action_steps=4)
    assert act.requests[1].chunk[:, 0].tolist() == [200.0, 201.0, 202.0, 203.0, 204.0, 205.0]


# ---------------------------------------------- latency beyond the trained D; the synchronous hold


def test_latency_beyond_D_passes_the_oldest_committed_actions_as_past():
    # d = 4 committed actions, a policy trained for D = 2, K = 3, C = 6. Hand-derived: the first
    # d - D = 2 committed actions join the past (they will have been executed when the chunk
    # arrives), the last 2 are the committed prefix, and the chunk still takes over at t + d.
    timeline, predictor, executed = run("act_smooth", 16, delay=4, max_delay=2, past_length=3)
    assert timeline.stale_frames == 2
    assert predictor.calls == [
        (0, [HOLD, HOLD], [HOLD, HOLD]),
        (6, [101.0, 102.0, 103.0], [104.0, 105.0]),
        (12, [201.0, 202.0, 203.0], [204.0, 205.0]),
    ]
    assert executed == [HOLD] * 4 + [100.0 + i for i in range(6)] + [200.0 + i for i in range(6)]
    assert [(r.request_frame, r.past_frames, r.committed_frames, r.switch_frame) for r in timeline.requests] == [
        (0, [0, 1], [2, 3], 4),
        (6, [5, 6, 7], [8, 9], 10),
        (12, [11, 12, 13], [14, 15], 16),
    ]


def test_latency_within_D_is_unchanged_by_max_delay():
    within = run("act_smooth", 16, delay=2, max_delay=4, past_length=2)
    plain = run("act_smooth", 16, delay=2, past_length=2)
    assert within[1].calls == plain[1].calls and within[2] == plain[2]
    assert within[0].stale_frames == 0


@pytest.mark.parametrize(("latency_ms", "frames"), [(0, 0), (33.3, 1), (67, 3), (100, 3), (167, 6), (500, 15)])
def test_synchronous_hold_is_ceil_of_latency_in_frames(latency_ms, frames):
    assert hold_frames_for_latency(latency_ms, 30) == frames


def test_synchronous_act_holds_its_last_action_while_each_chunk_is_computed():
    # h = 2 frames per chunk: the arm holds the last executed action (the initial position
    # before the first chunk), then executes n_action_steps = 4 of the chunk predicted at the
    # request frame.
    timeline, predictor, executed = run("act", 14, n_action_steps=4, hold_frames=2)
    assert predictor.calls == [(0, [], []), (6, [], []), (12, [], [])]
    assert executed == [HOLD, HOLD, 100.0, 101.0, 102.0, 103.0, 103.0, 103.0, 200.0, 201.0, 202.0, 203.0, 203.0, 203.0]
    assert [(r.request_frame, r.switch_frame) for r in timeline.requests] == [(0, 2), (6, 8), (12, 14)]
    assert timeline.executed_source == [-1, -1, 0, 0, 0, 0, -1, -1, 1, 1, 1, 1, -1, -1]
    assert timeline.metric_boundaries(14) == [8]


@pytest.mark.parametrize("kwargs", [dict(policy_type="act", hold_frames=-1),
                                    dict(policy_type="act_smooth", delay=2, max_delay=0)])
def test_bad_hold_or_max_delay_is_refused(kwargs):
    with pytest.raises(ValueError, match="hold_frames|max_delay"):
        ChunkTimeline(chunk_size=6, action_dim=A, **kwargs)


# ---------------------------------------------------------------------------- overlap blending


def test_blending_crossfades_the_last_old_actions_into_the_new_chunk():
    # C = 6, d = 2, L = 2: requests at 4 actions left (d + L). The new chunk arrives with 2 old
    # actions left, crossfaded with weights 1/3, 2/3 on the new chunk (the replay's weights); the
    # policy's past is what was executed, blended values included.
    timeline, predictor, executed = run("act_smooth", 14, delay=2, blend_frames=2, past_length=2)
    assert timeline.threshold == 4
    assert predictor.calls == [
        (0, [], [HOLD, HOLD]),
        (4, [100.0, 101.0], [102.0, 103.0]),
        (8, [pytest.approx(136.0), pytest.approx(169.0)], [202.0, 203.0]),
        (12, [pytest.approx(236.0), pytest.approx(269.0)], [302.0, 303.0]),
    ]
    assert executed == pytest.approx([HOLD, HOLD, 100, 101, 102, 103, 136, 169, 202, 203, 236, 269, 302, 303])
    assert [r.blended_frames for r in timeline.requests] == [0, 2, 2, 2]
    # Both kinks of every crossfade are metric boundaries; the profile keeps the switches.
    assert timeline.metric_boundaries(14) == [6, 10]
    assert timeline.kink_frames(14) == [6, 8, 10, 12]


def test_without_blending_the_kinks_are_the_switches():
    timeline, _, _ = run("act_smooth", 14, delay=2, past_length=2)
    assert timeline.kink_frames(14) == timeline.metric_boundaries(14)


@pytest.mark.parametrize("kwargs", [dict(policy_type="act_smooth", delay=2, blend_frames=-1),
                                    dict(policy_type="act_smooth", delay=2, blend_frames=2, threshold=3),
                                    dict(policy_type="act_smooth", delay=2, blend_frames=5),
                                    dict(policy_type="act", blend_frames=2)])
def test_bad_blending_is_refused(kwargs):
    with pytest.raises(ValueError, match="blend|threshold"):
        ChunkTimeline(chunk_size=6, action_dim=A, **kwargs)
