"""Pre/post-processing pipelines of act_smooth, built from LeRobot's public processor steps."""

from typing import Any

import torch

from lerobot.processor import PolicyAction, PolicyProcessorPipeline
from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines

from .configuration_act_smooth import ACTSmoothConfig


def make_act_smooth_pre_post_processors(
    config: ACTSmoothConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    """Preprocessor: rename (identity) -> add batch dim -> device -> normalise observations and actions
    (the action window [B, K+D+C, A] and any raw-unit prefix are normalised with the action stats).
    Postprocessor: un-normalise the predicted actions -> CPU.

    `lerobot-train` finds this function by name (make_<type>_pre_post_processors in processor_<type>).
    """
    steps = make_default_policy_processor_steps(config, dataset_stats, normalizer_device=config.device)
    return make_policy_processor_pipelines(
        input_steps=[steps.rename_observations, steps.add_batch_dim, steps.to_device, steps.normalize],
        output_steps=[steps.unnormalize, steps.to_cpu],
    )
