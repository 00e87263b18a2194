"""Pre/post-processing pipelines of act_smooth, built from LeRobot's public processor steps."""

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lerobot.configs import PipelineFeatureType, PolicyFeature
from lerobot.processor import ObservationProcessorStep, PolicyAction, PolicyProcessorPipeline
from lerobot.processor.factory import make_default_policy_processor_steps, make_policy_processor_pipelines
from lerobot.utils.constants import OBS_ENV_STATE, OBS_STATE

from .configuration_act_smooth import ACTSmoothConfig

PREPROCESSOR_FILE = "policy_preprocessor.json"


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


def add_environment_split(checkpoint: str | Path, output: str | Path) -> Path:
    """Copy an act_smooth `pretrained_model` folder whose preprocessor predates
    `SplitEnvironmentStateStep` to `output`, with the step inserted before the normaliser (so the
    simulated robot's combined state reaches the policy through `lerobot-rollout`).

    Nothing is written unless the copy is complete (built in a sibling folder, then renamed);
    `output` must not exist. Raises ValueError naming the problem.
    """
    src, dst = Path(checkpoint), Path(output)
    if dst.exists():
        raise ValueError(f"{dst} exists; choose a new output folder (the checkpoint is copied there)")
    try:
        config = json.loads((src / "config.json").read_text())
        pipeline = json.loads((src / PREPROCESSOR_FILE).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{src} is not a pretrained_model folder with config.json and {PREPROCESSOR_FILE}: {err}") from None
    features = config.get("input_features") or {}
    if config.get("type") != "act_smooth" or OBS_ENV_STATE not in features:
        raise ValueError(f"{src} is not an act_smooth policy with an {OBS_ENV_STATE} input; it needs no split step")
    steps = pipeline["steps"]
    split_class = f"{SplitEnvironmentStateStep.__module__}.{SplitEnvironmentStateStep.__name__}"
    if any(step.get("class") == split_class for step in steps):
        raise ValueError(f"{src} already has the split step; use it as it is")
    at = next((i for i, step in enumerate(steps) if step.get("registry_name") == "normalizer_processor"), None)
    if at is None:
        raise ValueError(f"{src}/{PREPROCESSOR_FILE} has no normalizer_processor step to insert the split before")
    state_dim = features.get(OBS_STATE, {}).get("shape", [0])[0]
    steps.insert(at, {"class": split_class, "config": {"state_dim": state_dim, "env_dim": features[OBS_ENV_STATE]["shape"][0]}})

    staging = dst.with_name(f".{dst.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging)
    for index in range(len(steps) - 1, at, -1):  # later steps move up by one: rename their state files
        old = steps[index].get("state_file")
        if old:
            new = re.sub(r"_step_\d+_", f"_step_{index}_", old, count=1)
            (staging / old).rename(staging / new)
            steps[index]["state_file"] = new
    (staging / PREPROCESSOR_FILE).write_text(json.dumps(pipeline, indent=2))
    staging.rename(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    """python -m lerobot_policy_act_smooth.processor_act_smooth CHECKPOINT OUTPUT (see add_environment_split)."""
    import argparse

    parser = argparse.ArgumentParser(description=add_environment_split.__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="pretrained_model folder written by lerobot-train")
    parser.add_argument("output", help="new folder for the copy with the split step")
    args = parser.parse_args(argv)
    try:
        print(add_environment_split(args.checkpoint, args.output))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
