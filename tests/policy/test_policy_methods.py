"""Training-only smoothing methods of act_smooth: sampled delays, the smooth chunk head, the perturbed
and the own-prediction prefix with re-anchored targets (issue 9 item 3, issue 11)."""

import math

import numpy as np
import pytest
import torch
from policy_testlib import random_batch
from policy_testlib import tiny_config as base_config
from policy_testlib import tiny_policy as base_policy

from lerobot_policy_act_smooth.chunk_basis import bspline_basis, chunk_basis, dct_basis
from lerobot_policy_act_smooth.prefix_augmentation import apply_prefix_offset, reanchor_weights, smooth_offsets

torch.set_num_threads(1)
K, D, C, A = 4, 2, 8, 6
H = 4  # the default re-anchoring horizon (10) exceeds the tiny chunk (8)


def tiny_config(**overrides):
    return base_config(**{"reanchor_horizon": H, **overrides})


def tiny_policy(seed=0, **overrides):
    return base_policy(seed=seed, **{"reanchor_horizon": H, **overrides})


def training_parts(policy, batch):
    """prefix, validity, targets [D, B, C, A] and delays [D, B] as `forward` builds them (no lookback)."""
    actions, is_pad = batch["action"], batch["action_is_pad"]
    B = actions.shape[0]
    delays = torch.arange(1, D + 1).unsqueeze(1).expand(D, B)
    targets = torch.stack([actions[:, K + d : K + d + C] for d in range(1, D + 1)])
    target_valid = torch.stack([~is_pad[:, K + d : K + d + C] for d in range(1, D + 1)])
    return actions[:, : K + D], ~is_pad[:, : K + D], targets, target_valid, delays


# ------------------------------------------------------------------ sampled delays


def test_per_sample_delays_decode_like_shared_delays():
    policy = tiny_policy().eval()
    batch = random_batch(policy.config, batch_size=3)
    batch["action_is_pad"][0, :2] = True
    memory, _, _ = policy.model.encode(policy._observation(batch))
    prefix, valid = batch["action"][:, : K + D], ~batch["action_is_pad"][:, : K + D]
    mixed = policy.model.decode(memory, prefix, valid, torch.tensor([[2, 1, 2]]))[0]
    for b, d in enumerate([2, 1, 2]):
        alone = policy.model.decode(memory, prefix, valid, [d])[0]
        torch.testing.assert_close(mixed[b], alone[b], atol=1e-5, rtol=0)


def test_sampled_delays_train_one_delay_per_sample():
    policy = tiny_policy(train_delays="sampled").train()
    batch = random_batch(policy.config, batch_size=600)
    seen = []
    decode = policy.model.decode

    def spy(memory, prefix, valid, delays):  # records the delays and chunks of the training pass
        out = decode(memory, prefix, valid, delays)
        seen.append((torch.as_tensor(delays).clone(), out))
        return out

    policy.model.decode = spy
    loss, loss_dict = policy.forward(batch)
    delays, pred = seen[0]
    assert delays.shape == (1, 600) and set(delays.unique().tolist()) == {1, 2}
    assert abs((delays == 1).float().mean().item() - 0.5) < 4 * (0.25 / 600) ** 0.5
    targets = torch.stack([batch["action"][b, K + d : K + d + C] for b, d in enumerate(delays[0].tolist())])
    assert loss.item() == pytest.approx((pred[0] - targets).abs().mean().item(), abs=1e-5)
    assert {"l1_loss_d1", "l1_loss_d2"} <= loss_dict.keys()
    policy.eval()  # validation scores every delay
    policy.forward(batch)
    assert seen[1][0].shape == (D, 600)


# ------------------------------------------------------------------ smooth chunk head


@pytest.mark.parametrize("kind, M", [("dct", 5), ("bspline", 6)])
def test_basis_reproduces_a_chunk_in_its_span(kind, M):
    basis = chunk_basis(kind, 30, M).double()
    coefficients = torch.randn(M, A, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    chunk = basis @ coefficients
    fitted = torch.linalg.lstsq(basis, chunk).solution
    torch.testing.assert_close(basis @ fitted, chunk, atol=1e-9, rtol=0)
    outside = torch.randn(30, A, dtype=torch.float64)  # a generic chunk is not in a 5- or 6-dim span
    assert (basis @ torch.linalg.lstsq(basis, outside).solution - outside).abs().max() > 0.1


@pytest.mark.parametrize("kind, M", [("dct", 3), ("bspline", 5)])
def test_basis_head_output_lies_in_the_span(kind, M):
    policy = tiny_policy(chunk_basis=kind, chunk_basis_size=M).eval()
    assert policy.model.query_pos.weight.shape[0] == M  # one query per coefficient
    batch = random_batch(policy.config, batch_size=3)
    chunk = policy.predict_chunk_normalised(batch, batch["action"][:, :K], batch["action"][:, K : K + 2]).double()
    basis = policy.model.chunk_basis.double()
    residual = basis @ torch.linalg.lstsq(basis.expand(3, -1, -1), chunk).solution - chunk
    assert residual.abs().max() < 1e-5 and chunk.abs().max() > 1e-3
    loss, _ = policy.train().forward(batch)
    loss.backward()
    assert torch.isfinite(loss) and policy.model.query_pos.weight.grad.abs().sum() > 0


def test_dct_basis_hand_values():
    # C = 4, M = 3: entry (n, k) = cos(pi * (n + 1/2) * k / 4), unnormalised. Column 1 holds
    # cos(pi/8) = sqrt(2 + sqrt 2) / 2 and cos(3 pi/8) = sqrt(2 - sqrt 2) / 2, column 2 +-cos(pi/4).
    c1, c3, r = 0.9238795325112867, 0.3826834323650898, 0.7071067811865476
    expected = [
        [1.0, c1, r],
        [1.0, c3, -r],
        [1.0, -c3, -r],
        [1.0, -c1, r],
    ]
    assert dct_basis(4, 3) == pytest.approx(np.array(expected), rel=1e-12, abs=1e-15)
    assert chunk_basis("dct", 4, 3).numpy() == pytest.approx(np.array(expected), rel=1e-7)
    # The head decodes with the same matrix: C = 8, column 1 runs from cos(pi/16) to cos(15 pi/16).
    head = tiny_policy(chunk_basis="dct", chunk_basis_size=3).model.chunk_basis
    assert head.shape == (C, 3)
    assert head[[0, -1], 1].tolist() == pytest.approx([0.9807852804032304, -0.9807852804032304], rel=1e-7)


def test_dct_head_output_has_no_frequency_above_the_basis():
    policy = tiny_policy(chunk_basis="dct", chunk_basis_size=3).eval()
    batch = random_batch(policy.config, batch_size=4)
    chunk = policy.predict_chunk_normalised(batch, batch["action"][:, :K], batch["action"][:, K : K + 1]).double()
    spectrum = torch.linalg.solve(torch.as_tensor(dct_basis(C, C)), chunk)  # all C cosines: invertible
    assert spectrum[:, 3:].abs().max() < 1e-5 < spectrum[:, :3].abs().max()


def test_bspline_head_output_is_piecewise_cubic_and_interpolates_its_ends():
    basis = torch.as_tensor(bspline_basis(30, 6))
    torch.testing.assert_close(basis.sum(1), torch.ones(30, dtype=torch.float64))  # partition of unity
    coefficients = torch.randn(6, A, dtype=torch.float64)
    chunk = basis @ coefficients
    torch.testing.assert_close(chunk[[0, -1]], coefficients[[0, -1]])
    # Knots every 29/3 samples: inside one knot span a cubic has zero 4th differences.
    fourth = torch.diff(chunk, n=4, dim=0)  # row r covers samples r .. r+4
    span = torch.floor(torch.arange(30) * 3 / 29).clamp(max=2)
    same_span = torch.tensor([bool(span[r] == span[r + 4]) for r in range(26)])
    assert same_span.sum() >= 12
    assert fourth[same_span].abs().max() < 1e-9 < fourth[~same_span].abs().max()


def test_bspline_basis_hand_values():
    # Four control points of a cubic leave no interior knot: the basis is Bernstein's,
    # (1-u)^3, 3u(1-u)^2, 3u^2(1-u), u^3; at u = 1/3 that is 8, 12, 6, 1 over 27.
    bernstein = np.array([[27, 0, 0, 0], [8, 12, 6, 1], [1, 6, 12, 8], [0, 0, 0, 27]]) / 27
    assert bspline_basis(4, 4) == pytest.approx(bernstein, abs=1e-15)
    # Five: knots 0,0,0,0, 1/2, 1,1,1,1, and sample 2 of C = 5 lies on the interior knot. Cox-de Boor
    # there: N_3,1 = 1; N_2,2 = N_3,2 = 1/2; N_1,3 = 1/4, N_2,3 = 1/2, N_3,3 = 1/4.
    on_knot = bspline_basis(5, 5)
    assert on_knot[2] == pytest.approx(np.array([0.0, 0.25, 0.5, 0.25, 0.0]), abs=1e-15)
    assert on_knot.sum(axis=1) == pytest.approx(np.ones(5), abs=1e-15)  # partition of unity on the knot too
    # Degree 2, three control points: the quadratic Bernstein basis, 1/4, 1/2, 1/4 at u = 1/2.
    quadratic = np.array([[1.0, 0.0, 0.0], [0.25, 0.5, 0.25], [0.0, 0.0, 1.0]])
    assert bspline_basis(3, 3, degree=2) == pytest.approx(quadratic, abs=1e-15)
    # Chunks of one and two steps: the first sample is the first control point, the last the last.
    assert bspline_basis(1, 4) == pytest.approx(np.array([[1.0, 0.0, 0.0, 0.0]]))
    assert bspline_basis(2, 4) == pytest.approx(np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))


def test_basis_refuses_too_few_spline_coefficients_and_unknown_kinds():
    with pytest.raises(ValueError, match="a degree-3 B-spline needs at least 4 coefficients, got 3"):
        bspline_basis(30, 3)
    with pytest.raises(ValueError, match="unknown chunk basis 'fourier'; expected 'dct' or 'bspline'"):
        chunk_basis("fourier", 30, 4)


# ------------------------------------------------------------------ perturbed prefix, re-anchoring


def test_reanchor_weights_hand_values():
    torch.testing.assert_close(
        reanchor_weights(4, 6, "cosine"), torch.tensor([1.0, 0.853553, 0.5, 0.146447, 0.0, 0.0]), atol=1e-6, rtol=0
    )
    # minimum jerk at s = 1/2: 1 - (10/8 - 15/16 + 6/32) = 0.5
    torch.testing.assert_close(reanchor_weights(2, 4, "minimum_jerk"), torch.tensor([1.0, 0.5, 0.0, 0.0]))


def test_prefix_offset_and_reanchored_targets_on_a_hand_built_batch():
    const, slope = torch.tensor([[2.0, -1.0]]), torch.tensor([[6.0, 0.0]])  # B = 1, A = 2
    offset = smooth_offsets(const, slope, past_length=2, max_delay=2)  # frames -2, -1, 0, 1 over K+D = 4
    torch.testing.assert_close(offset[0, :, 0], torch.tensor([-1.0, 0.5, 2.0, 3.5]))
    torch.testing.assert_close(offset[0, :, 1], torch.full((4,), -1.0))
    prefix, targets = torch.zeros(1, 4, 2), torch.zeros(2, 1, 5, 2)  # delays 1 and 2, C = 5
    prefix_valid = torch.tensor([[False, True, True, True]])  # slot 0 before the episode start
    target_valid = torch.ones(2, 1, 5, dtype=torch.bool)
    target_valid[1, 0, 4] = False  # the last target of delay 2 past the episode end
    w = reanchor_weights(2, 5, "minimum_jerk")  # [1, 0.5, 0, 0, 0]
    delays = torch.tensor([[1], [2]])
    new_prefix, new_targets = apply_prefix_offset(prefix, prefix_valid, targets, target_valid, delays, offset, w, 2)
    torch.testing.assert_close(new_prefix[0, :, 0], torch.tensor([0.0, 0.5, 2.0, 3.5]))  # padding untouched
    # Joint 0, e(f) = 2 + 1.5 f: delay 1 targets frames 1.. -> e(1) w(0), e(2) w(1) = 3.5, 5.0 * 0.5
    torch.testing.assert_close(new_targets[0, 0, :, 0], torch.tensor([3.5, 2.5, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(new_targets[1, 0, :, 0], torch.tensor([5.0, 3.25, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(new_targets[:, 0, :2, 1], torch.tensor([[-1.0, -0.5], [-1.0, -0.5]]))
    assert torch.equal(prefix, torch.zeros(1, 4, 2))  # inputs not modified


def test_policy_perturbs_with_smooth_offsets_of_the_configured_scale():
    policy = tiny_policy(p_prefix_perturb=1.0, prefix_perturb_scale=0.5, reanchor_horizon=3, reanchor_profile="cosine")
    batch = random_batch(policy.config, batch_size=2000)
    batch["action"].zero_()
    batch["action_is_pad"][:5, :1] = True
    parts = training_parts(policy, batch)
    prefix, targets, stats = policy.train().augment_prefix(*parts)
    assert stats["prefix_perturbed_fraction"] == 1.0
    assert torch.all(prefix[:5, 0] == 0)  # padded slots keep their value
    f = torch.arange(-K, D, dtype=torch.float32) / (K + D)
    design = torch.stack([torch.ones_like(f), f], 1)
    fit = torch.linalg.lstsq(design.expand(1995, -1, -1), prefix[5:]).solution  # [B, 2, A]: c, s
    torch.testing.assert_close(design @ fit, prefix[5:], atol=1e-5, rtol=0)  # constant + slope per joint
    assert fit[:, 0].std().item() == pytest.approx(0.5, rel=0.05)
    assert fit[:, 1].std().item() == pytest.approx(0.5, rel=0.05)
    w = reanchor_weights(3, C, "cosine")
    for i, d in enumerate([1, 2]):  # targets: e(d + step) * w(step), the line continued and faded
        frames = (d + torch.arange(C)) / (K + D)
        expected = (fit[:, 0:1] + fit[:, 1:2] * frames.view(1, -1, 1)) * w.view(1, -1, 1)
        torch.testing.assert_close(targets[i, 5:], expected, atol=1e-5, rtol=0)


def test_nothing_changes_with_probability_zero_or_in_eval_mode():
    plain = tiny_policy(seed=0)
    batch = random_batch(plain.config)
    for overrides in ({"p_prefix_perturb": 0.0}, {"p_prefix_perturb": 1.0}):
        policy = tiny_policy(seed=0, **overrides)
        parts = training_parts(policy, batch)
        prefix, targets, _ = policy.eval().augment_prefix(*parts)
        assert prefix is parts[0] and targets is parts[2]
        assert policy.forward(batch)[0].item() == pytest.approx(plain.eval().forward(batch)[0].item(), abs=1e-6)
    zero = tiny_policy(seed=0, p_prefix_perturb=0.0).train()
    assert zero.forward(batch)[0].item() == pytest.approx(plain.train().forward(batch)[0].item(), abs=1e-6)


# ------------------------------------------------------------------ own-prediction prefix

N_STEPS = 6  # n_action_steps: the lookback L of the earlier chunk


def own_batch(policy, batch_size=3):
    batch = random_batch(policy.config, batch_size)
    window = len(policy.config.action_delta_indices)  # a_{-L-K} .. a_{D+C-1}
    batch["action"] = torch.randn(batch_size, window, A)
    batch["action_is_pad"] = torch.zeros(batch_size, window, dtype=torch.bool)
    for key, ft in policy.config.input_features.items():
        batch[key] = torch.randn(batch_size, 2, *ft.shape)  # frames t0 - L and t0
    return batch


def test_own_prefix_config_asks_for_the_earlier_frames():
    config = tiny_config(p_prefix_own=0.5, n_action_steps=N_STEPS)
    assert config.observation_delta_indices == [-N_STEPS, 0]
    assert config.action_delta_indices == list(range(-N_STEPS - K, D + C))
    assert tiny_config(n_action_steps=N_STEPS).action_delta_indices[0] == -K


@pytest.mark.parametrize("relative", [False, True])
def test_own_prefix_is_the_earlier_chunk_without_gradient(relative):
    policy = tiny_policy(p_prefix_own=1.0, n_action_steps=N_STEPS, use_action_relative=relative).train()
    batch = own_batch(policy)
    batch["action_is_pad"][2, : N_STEPS + 1] = True  # sample 2: the earlier frame precedes the episode
    L = N_STEPS
    window = {"action": batch["action"][:, L:], "action_is_pad": batch["action_is_pad"][:, L:]}
    parts = training_parts(policy, window)
    earlier = {key: batch[key][:, 0] for key in policy.config.input_features}
    prefix, targets, stats = policy.augment_prefix(*parts, earlier, batch["action"], batch["action_is_pad"])
    assert policy.model.training and not prefix.requires_grad and stats["prefix_own_fraction"] == pytest.approx(2 / 3)

    # Reference: the inference path, at the earlier frame with the demonstration's prefix there, delay D.
    earlier_chunk = policy.predict_chunk_normalised(
        {k: v[:2] for k, v in earlier.items()}, batch["action"][:2, :K], batch["action"][:2, K : K + D]
    )  # frames -L+D .. -L+D+C-1
    torch.testing.assert_close(prefix[:2], earlier_chunk[:, L - D - K : L], atol=1e-5, rtol=0)
    torch.testing.assert_close(prefix[2], parts[0][2])  # no earlier chunk: the demonstration's prefix
    torch.testing.assert_close(targets[:, 2], parts[2][:, 2])
    error = prefix[:2] - parts[0][:2]
    w = reanchor_weights(4, C, "minimum_jerk").view(-1, 1)
    for i, d in enumerate([1, 2]):
        end, velocity = error[:, K + d - 1], error[:, K + d - 1] - error[:, K + d - 2]
        expected = (end[:, None] + velocity[:, None] * torch.arange(1, C + 1).view(-1, 1)) * w
        torch.testing.assert_close(targets[i, :2] - parts[2][i, :2], expected, atol=1e-5, rtol=0)

    loss, loss_dict = policy.train().forward(batch)  # the whole training step, and validation without it
    loss.backward()
    assert torch.isfinite(loss) and loss_dict["prefix_own_fraction"] == pytest.approx(2 / 3)
    assert "prefix_own_fraction" not in policy.eval().forward(batch)[1]
    single = {k: v[:, -1] if k.startswith("observation") else v for k, v in batch.items()}
    with pytest.raises(ValueError, match="observation_delta_indices"):
        policy.forward(single)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"train_delays": "one"}, "train_delays"),
        ({"chunk_basis": "fourier"}, "chunk_basis"),
        ({"chunk_basis": "dct", "chunk_basis_size": 9}, "chunk_basis_size"),
        ({"chunk_basis": "bspline", "chunk_basis_size": 3}, "chunk_basis_size"),
        ({"p_prefix_perturb": 1.5}, "p_prefix_perturb"),
        ({"p_prefix_own": -0.1}, "p_prefix_own"),
        ({"prefix_perturb_scale": -1.0}, "prefix_perturb_scale"),
        ({"p_prefix_perturb": 0.5, "reanchor_horizon": 0}, "reanchor_horizon"),
        ({"p_prefix_perturb": 0.5, "reanchor_horizon": 9}, "reanchor_horizon"),
        ({"p_prefix_perturb": 0.5, "reanchor_profile": "linear"}, "reanchor_profile"),
        ({"p_prefix_own": 0.5, "n_action_steps": 5}, "n_action_steps >= K \\+ D = 6"),
    ],
)
def test_bad_method_settings_raise_one_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_defaults_leave_the_model_unchanged():
    config = tiny_config()
    assert (config.train_delays, config.chunk_basis, config.p_prefix_perturb, config.p_prefix_own) == (
        "all",
        "none",
        0.0,
        0.0,
    )
    assert config.observation_delta_indices is None and math.isclose(config.prefix_perturb_scale, 0.27)
    with pytest.raises(ValueError, match="reanchor_horizon"):  # the default H = 10 needs chunk_size >= 10
        base_config(p_prefix_perturb=0.5)


def test_all_methods_together_with_camera_vae_and_relative_actions():
    policy = tiny_policy(
        camera=True,
        use_vae=True,
        use_action_relative=True,
        p_drop_obs=0.5,
        train_delays="sampled",
        chunk_basis="dct",
        chunk_basis_size=4,
        p_prefix_perturb=0.5,
        p_prefix_own=0.5,
        n_action_steps=N_STEPS,
    ).train()
    batch = own_batch(policy, batch_size=6)
    assert batch["observation.images.top"].shape == (6, 2, 3, 32, 32)
    loss, loss_dict = policy.forward(batch)
    loss.backward()
    assert torch.isfinite(loss) and {"kld_loss", "prefix_own_fraction", "prefix_perturbed_fraction"} <= loss_dict.keys()
    per_sample, _ = policy.forward(batch, reduction="none")
    assert per_sample.shape == (6,)
    obs = {k: v[:, -1] for k, v in batch.items() if k.startswith("observation")}  # inference: one frame
    chunk = policy.predict_chunk_normalised(obs, batch["action"][:, :K], batch["action"][:, K : K + 1])
    assert chunk.shape == (6, C, A) and torch.isfinite(chunk).all()
