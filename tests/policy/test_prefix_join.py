"""The prefix-join head (prefix_join_horizon): hand-computed joins, what it leaves alone, and that
the policy's chunks start where their prefix ends in training and inference alike."""

import pytest
import torch
from policy_testlib import random_batch, tiny_config, tiny_policy

from lerobot_policy_act_smooth.prefix_join import join_prefix, join_weights

K, D, C = 4, 2, 8


def test_join_on_a_hand_built_prefix():
    # One joint; the prefix a_{-4} .. a_1 = 0, 1, 2, 3, 5, 9 (slot j is a_{j-K}).
    prefix = torch.tensor([0.0, 1, 2, 3, 5, 9]).view(1, 6, 1)
    valid = torch.ones(1, 6, dtype=torch.bool)
    decoded = torch.full((2, 1, C, 1), 100.0)  # delays 1 and 2
    w = join_weights(4, C)  # minimum jerk: 1, 1-mj(1/4), 1-mj(1/2), 1-mj(3/4), 0 ...
    mj = lambda s: 10 * s**3 - 15 * s**4 + 6 * s**5  # noqa: E731
    assert torch.allclose(w, torch.tensor([1, 1 - mj(0.25), 0.5, 1 - mj(0.75), 0, 0, 0, 0]))
    out = join_prefix(decoded, prefix, valid, [1, 2], K, w)[:, 0, :, 0]
    # d = 1: p = a_0 = 5, v = a_0 - a_{-1} = 2, continuation 7, 9, 11, 13, ...
    expected_d1 = w * (5 + 2 * torch.arange(1, C + 1)) + (1 - w) * 100
    # d = 2: p = a_1 = 9, v = 4, continuation 13, 17, ...
    expected_d2 = w * (9 + 4 * torch.arange(1, C + 1)) + (1 - w) * 100
    assert torch.allclose(out[0], expected_d1) and torch.allclose(out[1], expected_d2)
    assert out[0, 0] == 7 and out[1, 0] == 13 and (out[:, 4:] == 100).all()  # starts on the prefix, ends decoded


def test_join_without_velocity_or_without_prefix():
    prefix = torch.tensor([0.0, 0, 0, 0, 5, 9]).view(1, 6, 1).repeat(2, 1, 1)
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[0, :4] = False  # sample 0: a_{-1} is padding (episode start): constant continuation
    valid[1] = False  # sample 1: no prefix at all: left as decoded
    decoded = torch.zeros(1, 2, C, 1)
    out = join_prefix(decoded, prefix, valid, [1], K, join_weights(3, C))[0, :, :, 0]
    assert torch.allclose(out[0, 0], torch.tensor(5.0)) and torch.allclose(out[0], 5 * join_weights(3, C))
    assert (out[1] == 0).all()
    per_sample = join_prefix(decoded.expand(1, 2, C, 1), prefix, torch.ones(2, 6, dtype=torch.bool),
                             torch.tensor([[1, 2]]), K, join_weights(3, C))[0, :, 0, 0]
    assert torch.allclose(per_sample, torch.tensor([5.0 + 5.0, 9.0 + 4.0]))  # per-sample delays


def test_policy_chunks_start_where_the_prefix_ends_and_gradients_reach_the_decoder():
    policy = tiny_policy(prefix_join_horizon=3)
    batch = random_batch(policy.config, batch_size=3)
    obs = {k: v for k, v in batch.items() if k.startswith("observation")}
    past, committed = batch["action"][:, :K], batch["action"][:, K : K + 2]
    chunk = policy.predict_chunk_normalised(obs, past, committed)
    expected_first = committed[:, -1] + (committed[:, -1] - committed[:, -2])
    assert torch.allclose(chunk[:, 0], expected_first, atol=1e-6)
    plain = tiny_policy(prefix_join_horizon=0)
    plain_chunk = plain.predict_chunk_normalised(obs, past, committed)
    assert torch.allclose(chunk[:, 3:], plain_chunk[:, 3:], atol=1e-6)  # same weights (seed), after H: decoded
    policy.train()
    loss, _ = policy.forward(batch)
    loss.backward()
    assert policy.model.action_head.weight.grad.abs().sum() > 0
    # Checkpoints do not carry the weights: they are rebuilt from the config.
    assert "join_weights" not in policy.state_dict()


@pytest.mark.parametrize("horizon", [-1, C + 1])
def test_bad_join_horizon_is_one_clear_error(horizon):
    with pytest.raises(ValueError, match="prefix_join_horizon must be in \\[0, chunk_size=8\\]"):
        tiny_config(prefix_join_horizon=horizon)
