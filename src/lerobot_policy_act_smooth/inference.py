"""One loader for act_smooth and LeRobot act checkpoints, with a raw-unit chunk prediction API.

    predictor = load_chunk_predictor("outputs/train/x/checkpoints/last/pretrained_model")
    chunk = predictor.predict(observation, past_actions, committed_actions)   # [B, C, A] raw

Normalisation happens inside, with the pre/post-processors saved next to the checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

SUPPORTED_TYPES = ("act_smooth", "act")


class ChunkPredictor:
    """A trained policy plus its processors, predicting one chunk per call in raw units.

    Attributes:
        policy_type: "act_smooth" or "act" (LeRobot's own ACT).
        past_length: K (0 for act).
        max_delay: D (0 for act).
        chunk_size: C.
        n_action_steps: actions executed per chunk in the policy's own config.
        action_dim: A.
        input_features: observation key -> shape (images: C, H, W).
        use_action_relative: whether the policy predicts deltas from a_0 (False for act).
    """

    def __init__(self, policy, preprocessor, postprocessor):
        config = policy.config
        self.policy = policy
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.policy_type = config.type
        self.past_length = getattr(config, "length_prefix_past", 0) if self.policy_type == "act_smooth" else 0
        self.max_delay = getattr(config, "length_prefix_future", 0) if self.policy_type == "act_smooth" else 0
        self.chunk_size = config.chunk_size
        self.n_action_steps = config.n_action_steps
        self.action_dim = config.action_feature.shape[0]
        self.input_features = {key: tuple(ft.shape) for key, ft in config.input_features.items()}
        self.use_action_relative = bool(getattr(config, "use_action_relative", False))

    @torch.no_grad()
    def predict(
        self, observation: dict[str, np.ndarray], past_actions: np.ndarray, committed_actions: np.ndarray
    ) -> np.ndarray:
        """Predict the next chunk.

        observation: each value [B, *shape] in raw units (state/env state as in the dataset, images
        float32 in [0, 1], channels first). past_actions [B, k, A] raw, 0 <= k <= K; committed_actions
        [B, d, A] raw, 1 <= d <= D, committed_actions[:, 0] being the action at the observation frame t.
        Returns [B, C, A] raw actions for frames t+d .. t+d+C-1.
        For policy_type "act" the prefix is ignored (pass [B, 0, A] arrays) and the chunk covers t .. t+C-1.
        """
        missing = [key for key in self.input_features if key not in observation]
        if missing:
            raise ValueError(f"observation lacks {missing}; this policy needs {sorted(self.input_features)}.")
        obs = {
            key: torch.as_tensor(np.asarray(observation[key]), dtype=torch.float32)
            for key in self.input_features
        }
        if self.policy_type == "act":
            batch = self.preprocessor(obs)
            chunk = self.postprocessor(self.policy.predict_action_chunk(batch))
        else:
            past, committed = np.asarray(past_actions), np.asarray(committed_actions)
            for name, arr in (("past_actions", past), ("committed_actions", committed)):
                if arr.ndim != 3 or arr.shape[-1] != self.action_dim:
                    raise ValueError(f"{name} must be [B, n, A={self.action_dim}], got shape {arr.shape}.")
            chunk = self.policy.predict_chunk_from_prefix(
                obs, past, committed, self.preprocessor, self.postprocessor
            )
        return chunk.detach().cpu().numpy().astype(np.float32)


def load_chunk_predictor(path: str | Path, device: str = "cpu") -> ChunkPredictor:
    """Load a `pretrained_model` folder written by lerobot-train (act_smooth or act).

    The backbone weights come from the checkpoint, so nothing is downloaded.
    """
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        hint = " (pass the pretrained_model folder inside it)" if (path / "pretrained_model").is_dir() else ""
        raise FileNotFoundError(
            f"{path} is not a policy checkpoint: no config.json{hint}. Expected "
            "<output_dir>/checkpoints/<step>/pretrained_model from lerobot-train."
        )
    policy_type = json.loads(config_file.read_text()).get("type")
    if policy_type not in SUPPORTED_TYPES:
        raise ValueError(
            f"{path} holds a {policy_type!r} policy; load_chunk_predictor supports {SUPPORTED_TYPES}."
        )

    from lerobot.configs import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    from . import configuration_act_smooth  # noqa: F401  registers "act_smooth"

    config = PreTrainedConfig.from_pretrained(path)
    config.device = device
    config.pretrained_backbone_weights = None  # the checkpoint holds the trained backbone
    policy = get_policy_class(policy_type).from_pretrained(path, config=config)
    policy.to(device).eval()
    preprocessor, postprocessor = make_pre_post_processors(
        config,
        pretrained_path=str(path),
        preprocessor_overrides={"device_processor": {"device": device}},
    )
    return ChunkPredictor(policy, preprocessor, postprocessor)
