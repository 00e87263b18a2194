"""Small act_smooth configs and synthetic normalised batches for the policy tests."""

from __future__ import annotations

import torch

from lerobot.configs import FeatureType, PolicyFeature

from lerobot_policy_act_smooth.configuration_act_smooth import ACTSmoothConfig
from lerobot_policy_act_smooth.modeling_act_smooth import ACTSmoothPolicy

ACTION_DIM = 6
STATE_DIM = 6
ENV_DIM = 4
IMAGE_SHAPE = (3, 32, 32)


def tiny_config(camera: bool = False, env: bool = True, state: bool = True, **overrides) -> ACTSmoothConfig:
    """A small act_smooth config with features set as lerobot-train would set them."""
    inputs = {}
    if state:
        inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,))
    if env:
        inputs["observation.environment_state"] = PolicyFeature(type=FeatureType.ENV, shape=(ENV_DIM,))
    if camera:
        inputs["observation.images.top"] = PolicyFeature(type=FeatureType.VISUAL, shape=IMAGE_SHAPE)
    kwargs = dict(
        device="cpu",
        chunk_size=8,
        n_action_steps=8,
        length_prefix_past=4,
        length_prefix_future=2,
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=1,
        n_vae_encoder_layers=1,
        use_vae=False,
        dropout=0.0,
        pretrained_backbone_weights=None,
        input_features=inputs,
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))},
    )
    kwargs.update(overrides)
    return ACTSmoothConfig(**kwargs)


def tiny_policy(seed: int = 0, dataset_stats=None, **config_kwargs) -> ACTSmoothPolicy:
    torch.manual_seed(seed)
    return ACTSmoothPolicy(tiny_config(**config_kwargs), dataset_stats=dataset_stats)


def random_batch(config: ACTSmoothConfig, batch_size: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A normalised training batch shaped like lerobot-train's: action [B, K+D+C, A] + action_is_pad."""
    g = torch.Generator().manual_seed(seed)
    window = config.length_prefix_past + config.length_prefix_future + config.chunk_size
    batch = {
        "action": torch.randn(batch_size, window, ACTION_DIM, generator=g),
        "action_is_pad": torch.zeros(batch_size, window, dtype=torch.bool),
    }
    for key, ft in config.input_features.items():
        batch[key] = torch.randn(batch_size, *ft.shape, generator=g)
    return batch
