"""The stock lerobot-train trains act_smooth on real LeRobot datasets; the checkpoint loads and predicts.
Also: load_chunk_predictor loads LeRobot's own act checkpoints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lerobot_policy_act_smooth.inference import load_chunk_predictor

LEROBOT_TRAIN = str(Path(sys.executable).parent / "lerobot-train")
TINY_MODEL_FLAGS = [
    "--policy.chunk_size=8",
    "--policy.n_action_steps=8",
    "--policy.dim_model=32",
    "--policy.n_heads=2",
    "--policy.dim_feedforward=64",
    "--policy.n_encoder_layers=1",
    "--policy.n_decoder_layers=1",
    "--policy.n_vae_encoder_layers=1",
    "--policy.pretrained_backbone_weights=null",
]


def run_lerobot_train(dataset_root: Path, repo_id: str, output_dir: Path, *extra: str) -> Path:
    cmd = [
        LEROBOT_TRAIN,
        "--policy.type=act_smooth",
        f"--dataset.repo_id={repo_id}",
        f"--dataset.root={dataset_root}",
        "--policy.optimizer_lr=1e-3",
        "--policy.optimizer_lr_backbone=1e-3",
        "--policy.length_prefix_past=4",
        "--policy.length_prefix_future=2",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        "--wandb.enable=false",
        "--num_workers=0",
        f"--output_dir={output_dir}",
        "--steps=20",
        "--save_freq=20",
        "--batch_size=4",
        "--seed=0",
        *TINY_MODEL_FLAGS,
        *extra,
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    checkpoint = output_dir / "checkpoints" / "000020" / "pretrained_model"
    assert (checkpoint / "model.safetensors").is_file()
    return checkpoint


def check_predictor(checkpoint: Path, expect_relative: bool):
    predictor = load_chunk_predictor(checkpoint)
    assert predictor.policy_type == "act_smooth"
    assert (predictor.past_length, predictor.max_delay, predictor.chunk_size) == (4, 2, 8)
    assert predictor.use_action_relative is expect_relative
    rng = np.random.default_rng(0)
    obs = {key: rng.random((3, *shape), dtype=np.float32) for key, shape in predictor.input_features.items()}
    for k, d in [(4, 2), (0, 1), (2, 2)]:
        past = rng.normal(0, 20, (3, k, predictor.action_dim)).astype(np.float32)
        committed = rng.normal(0, 20, (3, d, predictor.action_dim)).astype(np.float32)
        chunk = predictor.predict(obs, past, committed)
        assert chunk.shape == (3, 8, predictor.action_dim) and np.isfinite(chunk).all()
    with pytest.raises(ValueError, match="1 to D=2"):
        predictor.predict(obs, past, committed[:, :0])
    return predictor


def test_lerobot_train_env_state_only(tiny_dataset_root, tmp_path):
    checkpoint = run_lerobot_train(
        tiny_dataset_root, "test/tiny_state", tmp_path / "out", "--policy.use_vae=false"
    )
    saved = json.loads((checkpoint / "config.json").read_text())
    assert saved["type"] == "act_smooth" and saved["length_prefix_past"] == 4
    assert "observation.environment_state" in saved["input_features"]
    predictor = check_predictor(checkpoint, expect_relative=False)
    # LeRobot's select_action path: at an episode start a_0 is the current state, in raw units
    # (lerobot-train handed the dataset stats to the policy, and they were saved in the checkpoint).
    policy, pre, post = predictor.policy, predictor.preprocessor, predictor.postprocessor
    policy.reset()
    obs = {
        "observation.state": torch.tensor([[10.0, -5.0, 3.0, 0.0, 20.0, 7.0]]),
        "observation.environment_state": torch.zeros(1, 4),
    }
    first = post(policy.select_action(pre(dict(obs))))
    torch.testing.assert_close(first, obs["observation.state"], atol=1e-3, rtol=1e-4)
    second = post(policy.select_action(pre(dict(obs))))
    assert second.shape == (1, 6) and torch.isfinite(second).all()


def test_lerobot_train_camera_relative_dropout_vae(tiny_camera_dataset_root, tmp_path):
    checkpoint = run_lerobot_train(
        tiny_camera_dataset_root,
        "test/tiny_camera",
        tmp_path / "out",
        "--policy.use_vae=true",
        "--policy.use_action_relative=true",
        "--policy.p_drop_obs=0.3",
    )
    predictor = check_predictor(checkpoint, expect_relative=True)
    assert predictor.input_features["observation.images.top"] == (3, 24, 32)
    # The raw-unit API agrees with the policy's normalised one (processors do the (un)normalisation).
    obs = {k: torch.rand(2, *s) for k, s in predictor.input_features.items()}
    prefix = torch.randn(2, 6, predictor.action_dim) * 10
    raw = predictor.predict(
        {k: v.numpy() for k, v in obs.items()}, prefix[:, :4].numpy(), prefix[:, 4:].numpy()
    )
    normalised = predictor.preprocessor(dict(obs, action=prefix))
    chunk = predictor.policy.predict_chunk_normalised(
        normalised, normalised["action"][:, :4], normalised["action"][:, 4:]
    )
    np.testing.assert_allclose(raw, predictor.postprocessor(chunk).numpy(), atol=1e-4)


def test_load_chunk_predictor_reads_lerobot_act(tmp_path):
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.act import ACTConfig, ACTPolicy, make_act_pre_post_processors

    config = ACTConfig(
        device="cpu",
        chunk_size=8,
        n_action_steps=8,
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        use_vae=False,
        pretrained_backbone_weights=None,
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(6,)),
            "observation.environment_state": PolicyFeature(type=FeatureType.ENV, shape=(4,)),
        },
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(6,))},
    )
    stats = {
        key: {"mean": torch.full(ft.shape, 1.0), "std": torch.full(ft.shape, 2.0)}
        for key, ft in {**config.input_features, **config.output_features}.items()
    }
    policy = ACTPolicy(config)
    pre, post = make_act_pre_post_processors(config, dataset_stats=stats)
    for thing in (policy, pre, post):
        thing.save_pretrained(tmp_path)
    predictor = load_chunk_predictor(tmp_path)
    assert (predictor.policy_type, predictor.past_length, predictor.max_delay) == ("act", 0, 0)
    obs = {
        "observation.state": np.ones((3, 6), np.float32),
        "observation.environment_state": np.ones((3, 4), np.float32),
    }
    empty = np.zeros((3, 0, 6), np.float32)
    chunk = predictor.predict(obs, empty, empty)
    expected = post(policy.predict_action_chunk(pre({k: torch.as_tensor(v) for k, v in obs.items()})))
    np.testing.assert_allclose(chunk, expected.numpy(), atol=1e-5)


def test_load_chunk_predictor_rejects_non_checkpoint(tmp_path):
    (tmp_path / "pretrained_model").mkdir()
    with pytest.raises(FileNotFoundError, match="pretrained_model"):
        load_chunk_predictor(tmp_path)


def test_bad_config_through_lerobot_train_names_the_problem(tmp_path):
    """draccus hides a config's ValueError behind "Couldn't instantiate class"; the reason must still
    reach the user, with a non-zero exit and nothing written."""
    out = tmp_path / "out"
    cmd = [LEROBOT_TRAIN, "--policy.type=act_smooth", "--dataset.repo_id=local/none", f"--dataset.root={tmp_path}",
           "--policy.chunk_size=30", "--policy.n_action_steps=4", "--policy.p_prefix_own=0.5",
           "--policy.device=cpu", f"--output_dir={out}", "--steps=2"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=300)
    assert result.returncode != 0
    assert "p_prefix_own > 0 needs n_action_steps >= K + D = 6, got 4" in result.stderr
    assert "--policy.n_action_steps" in result.stderr  # the fix
    assert not out.exists()
