"""Config validation, registration and the batch-length check at the call boundary."""

import pytest
import torch
from policy_testlib import random_batch, tiny_config, tiny_policy

from lerobot.configs import PreTrainedConfig

from lerobot_policy_act_smooth.configuration_act_smooth import ACTSmoothConfig


def test_registered_as_act_smooth():
    assert PreTrainedConfig.get_choice_class("act_smooth") is ACTSmoothConfig
    assert ACTSmoothConfig(device="cpu").type == "act_smooth"


def test_action_delta_indices_cover_past_committed_and_chunk():
    config = tiny_config(length_prefix_past=3, length_prefix_future=2, chunk_size=5, n_action_steps=5)
    assert config.action_delta_indices == list(range(-3, 7))
    assert config.observation_delta_indices is None
    assert tiny_config(length_prefix_past=0).action_delta_indices[0] == 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"length_prefix_future": 0}, "length_prefix_future"),
        ({"length_prefix_future": 9, "chunk_size": 8}, r"length_prefix_future \(D=9\) must be <= chunk_size \(C=8\)"),
        ({"length_prefix_past": -1}, "length_prefix_past"),
        ({"n_action_steps": 9, "chunk_size": 8}, "n_action_steps"),
        ({"p_drop_obs": -0.1}, "p_drop_obs"),
        ({"p_drop_obs": 1.5}, "p_drop_obs"),
        ({"vision_backbone": "resnet_magic"}, "not a torchvision classification model"),
    ],
)
def test_invalid_config_raises_clear_value_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_no_image_and_no_env_state_is_rejected():
    config = tiny_config(camera=False, env=False)
    with pytest.raises(ValueError, match="environment_state"):
        config.validate_features()
    with pytest.raises(ValueError, match="environment_state"):
        tiny_policy(camera=False, env=False)


def test_batch_action_length_checked_at_call_boundary():
    policy = tiny_policy()
    batch = random_batch(policy.config)
    batch["action"] = batch["action"][:, :-1]
    batch["action_is_pad"] = batch["action_is_pad"][:, :-1]
    with pytest.raises(ValueError, match="K\\+D\\+C=14"):
        policy.forward(batch)


def test_unreachable_backbone_download_says_offline(monkeypatch):
    from urllib.error import URLError

    import torchvision.models._api

    def unreachable(*args, **kwargs):  # stands for download.pytorch.org being unreachable
        raise URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", unreachable)
    with pytest.raises(RuntimeError, match="offline.*pretrained_backbone_weights=null"):
        tiny_policy(camera=True, pretrained_backbone_weights="ResNet18_Weights.IMAGENET1K_V1")


def test_optim_params_use_backbone_lr():
    policy = tiny_policy(camera=True, optimizer_lr_backbone=1e-6)
    groups = policy.get_optim_params()
    n_backbone = sum(p.numel() for p in policy.model.backbone.parameters() if p.requires_grad)
    assert groups[1]["lr"] == 1e-6
    assert sum(p.numel() for p in groups[1]["params"]) == n_backbone > 0
    total = sum(p.numel() for g in groups for p in g["params"])
    assert total == sum(p.numel() for p in policy.parameters() if p.requires_grad)
    assert torch.is_tensor(groups[0]["params"][0])


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "shufflenet_v2_x0_5", "regnet_x_400mf"])
def test_a_lighter_torchvision_backbone_trains_on_camera_input(backbone):
    policy = tiny_policy(camera=True, vision_backbone=backbone)
    batch = random_batch(policy.config)
    loss, _ = policy.forward(batch)
    loss.backward()
    grads = [p.grad for n, p in policy.named_parameters() if n.startswith("model.backbone") and p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)  # the trunk learns
    assert policy.model.image_proj.in_channels == {"mobilenet_v3_small": 576, "shufflenet_v2_x0_5": 1024,
                                                   "regnet_x_400mf": 400}[backbone]


@pytest.mark.parametrize(("backbone", "shape", "message"), [
    ("vit_b_16", (3, 32, 32), "leaves nothing usable of observation.images.top at 32x32"),
    ("squeezenet1_0", (3, 8, 8), "leaves nothing usable of observation.images.top at 8x8"),
])
def test_a_backbone_that_leaves_no_feature_map_is_refused(backbone, shape, message):
    from lerobot.configs import FeatureType, PolicyFeature

    config = tiny_config(camera=True, vision_backbone=backbone)
    config.input_features["observation.images.top"] = PolicyFeature(type=FeatureType.VISUAL, shape=shape)
    with pytest.raises(ValueError, match=message):
        tiny_policy(camera=True, vision_backbone=backbone, input_features=config.input_features)
