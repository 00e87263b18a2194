"""Pre/post-processing pipelines of act_smooth, built from LeRobot's public processor steps."""

from dataclasses import dataclass
from typing import Any

import torch

from lerobot.configs import PipelineFeatureType, PolicyFeature
from lerobot.processor import ObservationProcessorStep, PolicyAction, PolicyProcessorPipeline
from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines
from lerobot.utils.constants import OBS_ENV_STATE, OBS_STATE

from .configuration_act_smooth import ACTSmoothConfig


@dataclass
class SplitEnvironmentStateStep(ObservationProcessorStep):
    """Takes `observation.environment_state` out of a longer `observation.state`.

    LeRobot's robot path (`lerobot-rollout`, `lerobot-record`) folds every scalar a robot reports
    into one `observation.state` vector, so a robot that also reports the task's low-dimensional
    state (the simulated SO-101's cube and target, see docs/deployment.md) arrives as
    [joints (state_dim), environment (env_dim), anything else]. This step splits it back into the
    two inputs the policy was trained on; entries after state_dim + env_dim (the simulator's
    success flag) are not policy inputs and are dropped. A batch that already has
    `observation.environment_state` (training, `actsmooth-sim-eval`) passes through untouched.

    Saved in the checkpoint's preprocessor by its class path, so loading needs no registration.

    Attributes:
        state_dim: size of the policy's `observation.state` input (0: the policy reads no state,
            the incoming state is left as it is).
        env_dim: size of the policy's `observation.environment_state` input.
    """

    state_dim: int = 0
    env_dim: int = 0

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        state = observation.get(OBS_STATE)
        if OBS_ENV_STATE in observation or state is None or self.env_dim == 0:
            return observation
        size = state.shape[-1]
        if size == self.state_dim:
            return observation  # no environment entries: the policy names the missing input
        if size < self.state_dim + self.env_dim:
            raise ValueError(
                f"observation.state has {size} values; act_smooth needs the {self.state_dim} joint values "
                f"followed by the {self.env_dim} environment-state values (robot type so101_sim reports "
                "both), or a separate observation.environment_state."
            )
        observation = dict(observation)
        observation[OBS_ENV_STATE] = state[..., self.state_dim : self.state_dim + self.env_dim]
        if self.state_dim:
            observation[OBS_STATE] = state[..., : self.state_dim]
        return observation

    def get_config(self) -> dict[str, Any]:
        return {"state_dim": self.state_dim, "env_dim": self.env_dim}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        return features  # the policy-side features are the policy's own, before and after


def make_act_smooth_pre_post_processors(
    config: ACTSmoothConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    """Preprocessor: rename (identity) -> add batch dim -> device -> split the environment state out of
    a robot's combined state (policies with an environment-state input only) -> normalise
    observations and actions (the action window [B, K+D+C, A] and any raw-unit prefix are
    normalised with the action stats).
    Postprocessor: un-normalise the predicted actions -> CPU.

    `lerobot-train` finds this function by name (make_<type>_pre_post_processors in processor_<type>).
    """
    steps = make_default_policy_processor_steps(config, dataset_stats, normalizer_device=config.device)
    input_steps = [steps.rename_observations, steps.add_batch_dim, steps.to_device]
    if config.env_state_feature is not None:
        state_dim = config.robot_state_feature.shape[0] if config.robot_state_feature is not None else 0
        input_steps.append(SplitEnvironmentStateStep(state_dim, config.env_state_feature.shape[0]))
    return make_policy_processor_pipelines(
        input_steps=[*input_steps, steps.normalize],
        output_steps=[steps.unnormalize, steps.to_cpu],
    )
