"""The stock lerobot-train trains act_smooth with every smoothing method on at once (sampled delays,
B-spline chunk head, perturbed and own-prediction prefix); the checkpoint loads and predicts."""

import json

import numpy as np
from test_policy_training_cli import check_predictor, run_lerobot_train

from lerobot_policy_act_smooth.chunk_basis import bspline_basis


def test_lerobot_train_with_all_smoothing_methods(tiny_dataset_root, tmp_path):
    checkpoint = run_lerobot_train(
        tiny_dataset_root,
        "test/tiny_state",
        tmp_path / "out",
        "--policy.use_vae=false",
        "--policy.train_delays=sampled",
        "--policy.chunk_basis=bspline",
        "--policy.chunk_basis_size=5",
        "--policy.p_prefix_perturb=0.5",
        "--policy.prefix_perturb_scale=0.2",
        "--policy.p_prefix_own=0.5",
        "--policy.reanchor_horizon=4",
        "--policy.reanchor_profile=cosine",
    )
    saved = json.loads((checkpoint / "config.json").read_text())
    assert (saved["train_delays"], saved["chunk_basis"], saved["p_prefix_own"]) == ("sampled", "bspline", 0.5)
    predictor = check_predictor(checkpoint, expect_relative=False)  # one observation frame at inference
    obs = {key: np.zeros((1, *shape), np.float32) for key, shape in predictor.input_features.items()}
    chunk = predictor.predict(obs, np.zeros((1, 4, 6), np.float32), np.zeros((1, 2, 6), np.float32))[0]
    basis = bspline_basis(8, 5)  # raw units are an affine map of normalised ones: still in the span
    residual = basis @ np.linalg.lstsq(basis, chunk, rcond=None)[0] - chunk
    assert np.abs(residual).max() < 1e-3 * max(1.0, np.abs(chunk).max())


def test_lerobot_train_with_the_prefix_join_head(tiny_dataset_root, tmp_path):
    checkpoint = run_lerobot_train(
        tiny_dataset_root, "test/tiny_state", tmp_path / "out", "--policy.use_vae=false",
        "--policy.chunk_basis=dct", "--policy.chunk_basis_size=4", "--policy.prefix_join_horizon=3",
    )
    assert json.loads((checkpoint / "config.json").read_text())["prefix_join_horizon"] == 3
    predictor = check_predictor(checkpoint, expect_relative=False)
    obs = {key: np.zeros((1, *shape), np.float32) for key, shape in predictor.input_features.items()}
    past = np.linspace(0.0, 0.3, 4 * 6, dtype=np.float32).reshape(1, 4, 6)
    committed = np.array([[[0.4] * 6, [0.5] * 6]], np.float32)
    chunk = predictor.predict(obs, past, committed)[0]
    # Raw units are an affine map of normalised ones: the first action continues the prefix in both.
    np.testing.assert_allclose(chunk[0], 0.5 + (0.5 - 0.4), atol=1e-4)
