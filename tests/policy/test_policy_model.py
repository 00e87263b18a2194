"""Behaviour of the act_smooth model: multi-delay training, relative actions, observation dropout,
save/load, overfitting, and the LeRobot select_action queue."""

import pytest
import torch
from lerobot.configs import NormalizationMode
from policy_testlib import random_batch, tiny_policy

from lerobot_policy_act_smooth.modeling_act_smooth import ACTSmoothPolicy, from_relative, to_relative

torch.set_num_threads(1)
K, D, C = 4, 2, 8


@pytest.mark.parametrize(
    "camera, n_decoder_layers, pre_norm", [(False, 1, False), (True, 1, False), (False, 2, True)]
)
def test_one_pass_multi_delay_equals_per_delay(camera, n_decoder_layers, pre_norm):
    policy = tiny_policy(
        camera=camera, env=not camera, n_decoder_layers=n_decoder_layers, pre_norm=pre_norm
    ).eval()
    batch = random_batch(policy.config, batch_size=3)
    # Sample 0 starts an episode (two past slots padded); sample 1 ends one (last targets padded).
    batch["action_is_pad"][0, :2] = True
    batch["action_is_pad"][1, -3:] = True
    loss, loss_dict = policy.forward(batch)

    obs = policy._observation(batch)
    memory, _, _ = policy.model.encode(obs)
    prefix, valid = batch["action"][:, : K + D], ~batch["action_is_pad"][:, : K + D]
    together = policy.model.decode(memory, prefix, valid, [1, 2])
    abs_sum, count = 0.0, 0
    for i, d in enumerate([1, 2]):
        alone = policy.model.decode(memory, prefix, valid, [d])[0]
        torch.testing.assert_close(together[i], alone, atol=1e-5, rtol=0)
        target = batch["action"][:, K + d : K + d + C]
        mask = ~batch["action_is_pad"][:, K + d : K + d + C]
        err = ((alone - target).abs() * mask.unsqueeze(-1)).sum()
        n = mask.sum() * target.shape[-1]
        assert loss_dict[f"l1_loss_d{d}"] == pytest.approx((err / n).item(), abs=1e-5)
        abs_sum, count = abs_sum + err, count + n
    assert loss.item() == pytest.approx((abs_sum / count).item(), abs=1e-5)

    # The inference path (unpadded sample 2, explicit prefix) gives the same chunk per delay.
    for i, d in enumerate([1, 2]):
        chunk = policy.predict_chunk_normalised(
            {k: v[2:] for k, v in batch.items()}, batch["action"][2:, :K], batch["action"][2:, K : K + d]
        )
        torch.testing.assert_close(chunk[0], together[i, 2], atol=1e-5, rtol=0)


def test_loss_ignores_padded_targets():
    policy = tiny_policy().eval()
    batch = random_batch(policy.config)
    batch["action_is_pad"][:, -3:] = True
    loss = policy.forward(batch)[0]
    batch["action"][:, -3:] += 100.0
    assert policy.forward(batch)[0].item() == pytest.approx(loss.item(), abs=1e-6)


def test_relative_transform_inverse():
    actions, anchor = torch.randn(5, 9, 6), torch.randn(5, 6)
    deltas = to_relative(actions, anchor)
    torch.testing.assert_close(from_relative(deltas, anchor), actions)
    torch.testing.assert_close(to_relative(anchor.unsqueeze(1), anchor), torch.zeros(5, 1, 6))


def test_relative_policy_returns_anchor_plus_delta():
    policy = tiny_policy(state=False, use_action_relative=True).eval()
    batch = random_batch(policy.config, batch_size=3)
    past, committed = batch["action"][:, :K], batch["action"][:, K : K + 2]
    chunk = policy.predict_chunk_normalised(batch, past, committed)

    anchor = committed[:, 0]
    memory, _, _ = policy.model.encode(policy._observation(batch))
    prefix = to_relative(torch.cat([past, committed, torch.zeros(3, D - 2, 6)], dim=1), anchor)
    delta = policy.model.decode(memory, prefix, torch.ones(3, K + D, dtype=torch.bool), [2])[0]
    torch.testing.assert_close(chunk, anchor.unsqueeze(1) + delta)
    # Shifting the whole prefix shifts the chunk by the same amount (only deltas reach the network).
    shifted = policy.predict_chunk_normalised(batch, past + 3.0, committed + 3.0)
    torch.testing.assert_close(shifted, chunk + 3.0, atol=1e-5, rtol=0)


def test_relative_training_loss_uses_absolute_targets():
    policy = tiny_policy(use_action_relative=True).eval()
    batch = random_batch(policy.config)
    loss = policy.forward(batch)[0]
    pred = policy.predict_chunk_normalised(batch, batch["action"][:, :K], batch["action"][:, K : K + 1])
    l1_d1 = (pred - batch["action"][:, K + 1 : K + 1 + C]).abs().mean()
    assert policy.forward(batch)[1]["l1_loss_d1"] == pytest.approx(l1_d1.item(), abs=1e-5)
    assert torch.isfinite(loss)


def test_observation_dropout_rate_and_eval():
    p, n = 0.3, 4000
    policy = tiny_policy(camera=False, p_drop_obs=p).train()
    obs = {"observation.state": torch.randn(n, 6) + 5.0, "observation.environment_state": torch.randn(n, 4)}
    dropped_obs, dropped = policy.drop_observation_state(obs)
    frac = dropped.float().mean().item()
    assert abs(frac - p) < 4 * (p * (1 - p) / n) ** 0.5
    assert torch.all(dropped_obs["observation.state"][dropped] == 0)
    assert torch.equal(dropped_obs["observation.state"][~dropped], obs["observation.state"][~dropped])
    assert dropped_obs["observation.environment_state"] is obs["observation.environment_state"]
    assert not torch.all(obs["observation.state"] == dropped_obs["observation.state"])  # input not mutated...
    assert torch.all(obs["observation.state"] != 0)  # ...and still intact

    policy.eval()
    eval_obs, eval_dropped = policy.drop_observation_state(obs)
    assert not eval_dropped.any()
    assert eval_obs["observation.state"] is obs["observation.state"]


def test_observation_dropout_touches_only_the_state():
    dropping = tiny_policy(seed=1, camera=True, p_drop_obs=1.0).train()
    plain = tiny_policy(seed=2, camera=True, p_drop_obs=0.0).train()
    plain.load_state_dict(dropping.state_dict())
    batch = random_batch(dropping.config)
    before = {k: v.clone() for k, v in batch.items()}
    loss, loss_dict = dropping.forward(batch)
    assert loss_dict["obs_dropped_fraction"] == 1.0
    for key in batch:  # images, prefix and targets are bit-identical after the forward pass
        assert torch.equal(batch[key], before[key])
    zeroed = dict(batch, **{"observation.state": torch.zeros_like(batch["observation.state"])})
    assert plain.forward(zeroed)[0].item() == pytest.approx(loss.item(), abs=1e-6)
    assert plain.forward(batch)[0].item() != pytest.approx(loss.item(), abs=1e-6)


@pytest.mark.parametrize("relative", [False, True])
def test_save_load_round_trip(tmp_path, relative):
    stats = {
        "observation.state": {"mean": torch.full((6,), 2.0), "std": torch.full((6,), 3.0)},
        "action": {"mean": torch.full((6,), 1.0), "std": torch.full((6,), 2.0)},
    }
    policy = tiny_policy(camera=True, use_vae=True, use_action_relative=relative, dataset_stats=stats).eval()
    batch = random_batch(policy.config, batch_size=2)
    policy.save_pretrained(tmp_path)
    loaded = ACTSmoothPolicy.from_pretrained(tmp_path).eval()
    assert loaded.config.use_action_relative == relative
    args = (batch, batch["action"][:, 1:K], batch["action"][:, K : K + 2])
    assert torch.equal(loaded.predict_chunk_normalised(*args), policy.predict_chunk_normalised(*args))
    torch.testing.assert_close(loaded.bootstrap_scale, torch.full((6,), 1.5))
    assert torch.equal(loaded.select_action(batch), policy.select_action(batch))


# Centre and spread of each normalisation mode, per joint: mean and std (MEAN_STD), midpoint and half
# the range (MIN_MAX, LeRobot's [-1, 1] scaling). Powers of two and sums of them, so that every
# value below is exact in float32.
STATE_NORM = {
    NormalizationMode.MEAN_STD: ([2.0, -1.0, 0.0, 10.0, 4.0, 0.5], [3.0, 1.0, 2.0, 4.0, 0.5, 1.0]),
    NormalizationMode.MIN_MAX: ([2.0, 0.0, 0.0, 4.0, 2.0, 0.5], [2.0, 10.0, 2.0, 4.0, 1.0, 0.5]),
}
ACTION_NORM = {
    NormalizationMode.MEAN_STD: ([1.0, 1.0, 0.0, 2.0, 4.0, -0.5], [2.0, 4.0, 0.5, 8.0, 1.0, 0.25]),
    NormalizationMode.MIN_MAX: ([0.0, 0.0, 0.0, 4.0, 4.0, 1.0], [2.0, 8.0, 1.0, 2.0, 4.0, 1.0]),
}


def feature_stats(norm):
    """LeRobot-style stats holding both modes' entries, so the policy must pick by its mapping."""
    (mean, std), (mid, half) = norm[NormalizationMode.MEAN_STD], norm[NormalizationMode.MIN_MAX]
    return {
        "mean": torch.tensor(mean), "std": torch.tensor(std),
        "min": torch.tensor(mid) - torch.tensor(half), "max": torch.tensor(mid) + torch.tensor(half),
    }


MS, MM = NormalizationMode.MEAN_STD, NormalizationMode.MIN_MAX


@pytest.mark.parametrize(
    "state_mode, action_mode, scale, shift",
    [
        # scale = state spread / action spread, shift = (state centre - action centre) / action spread
        (MS, MS, [1.5, 0.25, 4.0, 0.5, 0.5, 4.0], [0.5, -0.5, 0.0, 1.0, 0.0, 4.0]),
        (MM, MM, [1.0, 1.25, 2.0, 2.0, 0.25, 0.5], [1.0, 0.0, 0.0, 0.0, -0.5, -0.5]),
        (MS, MM, [1.5, 0.125, 2.0, 2.0, 0.125, 1.0], [1.0, -0.125, 0.0, 3.0, 0.0, -0.5]),
        (MM, MS, [1.0, 2.5, 4.0, 0.5, 1.0, 2.0], [0.5, -0.25, 0.0, 0.25, -2.0, 4.0]),
    ],
)
def test_bootstrap_action_is_the_state_in_action_units(state_mode, action_mode, scale, shift):
    stats = {"observation.state": feature_stats(STATE_NORM), "action": feature_stats(ACTION_NORM)}
    mapping = {"VISUAL": MS, "ENV": MS, "STATE": state_mode, "ACTION": action_mode}
    policy = tiny_policy(dataset_stats=stats, normalization_mapping=mapping)
    assert torch.equal(policy.bootstrap_scale, torch.tensor(scale))
    assert torch.equal(policy.bootstrap_shift, torch.tensor(shift))
    # A state normalised to 1 on every joint is raw centre + spread; its bootstrap a_0, taken back to
    # raw units with the action's centre and spread, is that same state.
    batch = random_batch(policy.config, batch_size=1)
    batch["observation.state"] = torch.ones(1, 6)
    a0 = policy._bootstrap_action(batch)[0]
    (s_centre, s_spread), (a_centre, a_spread) = STATE_NORM[state_mode], ACTION_NORM[action_mode]
    raw_state = torch.tensor(s_centre) + torch.tensor(s_spread)
    assert torch.equal(a0 * torch.tensor(a_spread) + torch.tensor(a_centre), raw_state)


def test_loss_falls_when_overfitting_one_batch():
    policy = tiny_policy(seed=0, use_vae=True).train()
    batch = random_batch(policy.config, batch_size=8)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss, loss_dict = policy.forward(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss_dict["l1_loss"])
    assert losses[-1] < 0.5 * losses[0]


def test_prefix_length_out_of_range():
    policy = tiny_policy()
    batch = random_batch(policy.config, batch_size=2)
    with pytest.raises(ValueError, match="0 to K=4"):
        policy.predict_chunk_normalised(batch, torch.zeros(2, 5, 6), torch.zeros(2, 1, 6))
    with pytest.raises(ValueError, match="1 to D=2"):
        policy.predict_chunk_normalised(batch, torch.zeros(2, 0, 6), torch.zeros(2, 0, 6))
    with pytest.raises(ValueError, match="1 to D=2"):
        policy.predict_chunk_normalised(batch, torch.zeros(2, 0, 6), torch.zeros(2, 3, 6))


def test_select_action_chains_its_own_chunks():
    stats = {  # identical state/action stats: the bootstrap a_0 is the current state
        "observation.state": {"mean": torch.zeros(6), "std": torch.ones(6)},
        "action": {"mean": torch.zeros(6), "std": torch.ones(6)},
    }
    policy = tiny_policy(dataset_stats=stats, n_action_steps=6)
    batch = random_batch(policy.config, batch_size=2)
    calls = []
    original = policy.predict_chunk_normalised

    def spy(obs, past, committed):  # records the prefixes the policy builds for itself
        chunk = original(obs, past, committed)
        calls.append((past.clone(), committed.clone(), chunk.clone()))
        return chunk

    policy.predict_chunk_normalised = spy
    policy.reset()
    actions = [policy.select_action(batch) for _ in range(14)]
    torch.testing.assert_close(actions[0], batch["observation.state"], atol=1e-6, rtol=0)
    # Chunk 1 is planned at step 0 (prefix: a_0 only); later chunks every n_action_steps steps.
    assert len(calls) == 3
    past, committed, chunk0 = calls[0]
    assert past.shape[1] == 0 and committed.shape[1] == 1
    torch.testing.assert_close(torch.stack(actions[1:5], 1), chunk0[:, :4])
    past, committed, chunk1 = calls[1]  # planned at step 5: a_5, a_6 committed, a_1..a_4 executed
    torch.testing.assert_close(committed, chunk0[:, 4:6])
    torch.testing.assert_close(past, torch.stack(actions[1:5], 1))
    torch.testing.assert_close(torch.stack(actions[5:7], 1), committed)
    torch.testing.assert_close(torch.stack(actions[7:11], 1), chunk1[:, :4])
    chunk_lerobot = ACTSmoothPolicy.predict_action_chunk(policy, batch)
    assert chunk_lerobot.shape == (2, C, 6)


def test_per_sample_loss_for_lerobot_sample_weighting():
    policy = tiny_policy().eval()
    batch = random_batch(policy.config, batch_size=3)
    per_sample, _ = policy.forward(batch, reduction="none")
    assert per_sample.shape == (3,)
    assert per_sample.mean().item() == pytest.approx(policy.forward(batch)[0].item(), abs=1e-6)
    single = policy.forward({k: v[1:2] for k, v in batch.items()})[0]
    assert per_sample[1].item() == pytest.approx(single.item(), abs=1e-5)
