"""Configuration of the act_smooth policy: ACT conditioned on an action prefix."""

import logging
from dataclasses import dataclass, field

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig
from lerobot.optim.schedulers import CosineAnnealingWithWarmupSchedulerConfig


@PreTrainedConfig.register_subclass("act_smooth")
@dataclass
class ACTSmoothConfig(PreTrainedConfig):
    """Configuration of ACTSmooth.

    Every sample is a window of actions a_{-K} .. a_{D+C-1} around the observation frame t0
    (a_0 is the action recorded at t0). For a delay d in 1..D the model sees the prefix

        [a_{-K} .. a_{-1}] (executed, K = length_prefix_past)
        + [a_0 .. a_{d-1}] (committed: already sent to the robot while the model runs)

    and predicts the chunk a_d .. a_{d+C-1} (C = chunk_size). Training covers every d in 1..D
    (or one sampled d per sample with train_delays="sampled").

    Inputs: at least one camera (`observation.images.*`) and/or `observation.environment_state`;
    `observation.state` is optional. Output: `action`. `input_features` / `output_features` are
    normally filled from the dataset by `lerobot-train`.

    Args (beyond LeRobot's common policy fields):
        n_obs_steps: observation frames per sample; only 1 is supported.
        chunk_size: C, the number of actions predicted per call.
        n_action_steps: actions executed from each chunk before the next one (<= chunk_size).
        normalization_mapping: normalisation mode per feature type (mean/std everywhere by default).
        vision_backbone: torchvision classification model whose convolutional trunk encodes every camera:
            a ResNet (resnet18, the default, resnet34, ...; frozen batch norm as in ACT) or, for a CPU,
            a lighter family such as mobilenet_v3_small, shufflenet_v2_x0_5 or regnet_x_400mf (its
            layers up to the pooling/classifier, with its own normalisation).
        pretrained_backbone_weights: torchvision weights enum name, e.g. "ResNet18_Weights.IMAGENET1K_V1";
            None (`--policy.pretrained_backbone_weights=null`) trains the backbone from scratch, which is
            required offline.
        replace_final_stride_with_dilation: dilate ResNet's last stage instead of striding.
        pre_norm: pre-LayerNorm transformer blocks instead of post-norm.
        dim_model: transformer width.
        n_heads: attention heads.
        dim_feedforward: hidden width of the transformer feed-forward blocks.
        feedforward_activation: "relu" or "gelu".
        n_encoder_layers: layers of the observation encoder.
        n_decoder_layers: layers of the action decoder (prefix tokens + chunk queries).
        use_vae: train with ACT's variational objective (a CVAE encoder over the future actions).
        latent_dim: size of the VAE latent.
        n_vae_encoder_layers: layers of the VAE encoder.
        dropout: dropout inside the transformer layers.
        kl_weight: weight of the KL term when use_vae is true.
        optimizer_lr: AdamW learning rate for everything except the backbone.
        optimizer_weight_decay: AdamW weight decay.
        optimizer_lr_backbone: learning rate of the ResNet backbone.
        scheduler: learning-rate schedule, "constant" (ACT's) or "cosine": linear warm-up over
            scheduler_warmup_steps, then cosine annealing to 0 at the run's last step (`--steps`). A
            decayed rate removes most of the step-to-step weight noise that shows as jitter in chunks.
        scheduler_warmup_steps: warm-up steps of the "cosine" schedule (>= 0).
        length_prefix_past: K >= 0, executed actions a_{-K} .. a_{-1} in the prefix.
        length_prefix_future: D >= 1, the largest delay; committed actions a_0 .. a_{d-1}, d <= D.
        p_drop_obs: probability, per training sample, of replacing observation.state by zeros in the
            normalised space (= the dataset mean state). Eval mode never drops.
        use_action_relative: prefix and targets become deltas from the anchor a_0 (in normalised action
            space); the output is a_0 + delta.
        train_delays: "all" trains every delay d in 1..D on every sample (D x C decoder queries);
            "sampled" trains one delay per sample, drawn uniformly from 1..D (C queries; a cheaper
            step that sees each delay 1/D as often). Validation (eval mode) always scores every delay.
        chunk_basis: "none" (one decoder query per action, as ACT), "dct" (cosines of 0 .. M-1 half
            periods over the chunk) or "bspline" (clamped uniform cubic B-spline with M control points):
            the decoder predicts M coefficients per joint, decoded to the C actions by a fixed matrix;
            the loss stays on the actions.
        chunk_basis_size: M, the number of basis coefficients (1..C for dct, 4..C for bspline).
        p_prefix_perturb: probability, per training sample, of shifting the prefix by a smooth random
            offset (per joint: constant + slope) and re-anchoring the first H targets (see
            prefix_augmentation.py). Eval mode never perturbs.
        prefix_perturb_scale: std of the offset's constant and of its change across the K + D prefix
            frames, in normalised action units. Default 0.27: the offset spread of the cpu plan's converged
            baseline's own self-chaining prefix error (docs/policy.md); measure your model's with
            evaluation/boundary_error.py.
        p_prefix_own: probability, per training sample, of replacing the prefix by the policy's own
            chunk predicted (without gradient) from the observation n_action_steps frames earlier,
            with targets re-anchored as for p_prefix_perturb. Needs n_action_steps >= K + D.
        reanchor_horizon: H, the target frames over which a prefix offset decays to zero (1..C).
        reanchor_profile: shape of that decay, "minimum_jerk" or "cosine" (both start and end flat).
        prefix_join_horizon: H > 0 makes every chunk start where the prefix ends: its first action
            continues the last committed action at the prefix's velocity and the chunk fades into the
            decoded actions over H frames (minimum jerk; prefix_join.py). Part of the model in training
            and inference alike. 0 (default): off.
    """

    # Input / output structure.
    n_obs_steps: int = 1
    chunk_size: int = 100
    n_action_steps: int = 100

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ENV": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )

    # Vision backbone.
    vision_backbone: str = "resnet18"
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    replace_final_stride_with_dilation: bool = False
    # Transformer.
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    # VAE.
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4

    # Training.
    dropout: float = 0.1
    kl_weight: float = 10.0
    optimizer_lr: float = 1e-5
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5
    scheduler: str = "constant"
    scheduler_warmup_steps: int = 0

    # Action prefix and the experiment's ablations.
    length_prefix_past: int = 4
    length_prefix_future: int = 2
    p_drop_obs: float = 0.0
    use_action_relative: bool = False

    # Training-only methods for smoother chunks (issue 9, item 3; issue 11).
    train_delays: str = "all"
    chunk_basis: str = "none"
    chunk_basis_size: int = 8
    p_prefix_perturb: float = 0.0
    prefix_perturb_scale: float = 0.27
    p_prefix_own: float = 0.0
    reanchor_horizon: int = 10
    reanchor_profile: str = "minimum_jerk"
    prefix_join_horizon: int = 0

    def __post_init__(self):
        super().__post_init__()
        try:
            self._validate()
        except ValueError as e:
            # lerobot-train's parser (draccus) replaces this message with "Couldn't instantiate class
            # ACTSmoothConfig using the given arguments"; logged here, the reason reaches the user.
            logging.getLogger(__name__).error("act_smooth config: %s", e)
            raise

    def _validate(self) -> None:
        import torchvision

        if self.vision_backbone not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(
                f"vision_backbone {self.vision_backbone!r} is not a torchvision classification model: choose e.g. "
                "resnet18, mobilenet_v3_small, shufflenet_v2_x0_5 or regnet_x_400mf "
                "(torchvision.models.list_models(module=torchvision.models) lists them)."
            )
        if self.n_obs_steps != 1:
            raise ValueError(f"Only n_obs_steps=1 is supported, got {self.n_obs_steps}.")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}.")
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(
                f"n_action_steps must be in [1, chunk_size={self.chunk_size}], got {self.n_action_steps}: "
                "a chunk cannot execute more actions than it predicts."
            )
        if self.length_prefix_past < 0:
            raise ValueError(f"length_prefix_past (K) must be >= 0, got {self.length_prefix_past}.")
        if self.length_prefix_future < 1:
            raise ValueError(
                f"length_prefix_future (D) must be >= 1, got {self.length_prefix_future}: a_0 is always "
                "committed, so the smallest delay is 1."
            )
        if self.length_prefix_future > self.chunk_size:
            raise ValueError(
                f"length_prefix_future (D={self.length_prefix_future}) must be <= chunk_size (C={self.chunk_size}): "
                "with a delay longer than a chunk the arm runs out of actions before the next chunk arrives. "
                "Lower --policy.length_prefix_future or raise --policy.chunk_size."
            )
        if not 0.0 <= self.p_drop_obs <= 1.0:
            raise ValueError(f"p_drop_obs must be a probability in [0, 1], got {self.p_drop_obs}.")
        if self.feedforward_activation not in ("relu", "gelu"):
            raise ValueError(
                f"feedforward_activation must be 'relu' or 'gelu', got {self.feedforward_activation!r}."
            )
        if self.scheduler not in ("constant", "cosine"):
            raise ValueError(f"scheduler must be 'constant' or 'cosine', got {self.scheduler!r}.")
        if self.scheduler_warmup_steps < 0:
            raise ValueError(f"scheduler_warmup_steps must be >= 0, got {self.scheduler_warmup_steps}.")
        if self.dim_model % self.n_heads != 0:
            raise ValueError(f"dim_model ({self.dim_model}) must be divisible by n_heads ({self.n_heads}).")
        self._validate_smoothing_methods()

    def _validate_smoothing_methods(self) -> None:
        K, D, C = self.length_prefix_past, self.length_prefix_future, self.chunk_size
        if self.train_delays not in ("all", "sampled"):
            raise ValueError(
                f"train_delays must be 'all' or 'sampled', got {self.train_delays!r}: "
                "pass --policy.train_delays=all or --policy.train_delays=sampled."
            )
        if self.chunk_basis not in ("none", "dct", "bspline"):
            raise ValueError(
                f"chunk_basis must be 'none', 'dct' or 'bspline', got {self.chunk_basis!r}: "
                "pass one of them to --policy.chunk_basis."
            )
        smallest = 4 if self.chunk_basis == "bspline" else 1  # a cubic spline needs 4 control points
        if self.chunk_basis != "none" and not smallest <= self.chunk_basis_size <= C:
            raise ValueError(
                f"chunk_basis_size must be in [{smallest}, chunk_size={C}] for chunk_basis="
                f"{self.chunk_basis!r}, got {self.chunk_basis_size}: set --policy.chunk_basis_size in that range."
            )
        for name in ("p_prefix_perturb", "p_prefix_own"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}.")
        if self.prefix_perturb_scale < 0:
            raise ValueError(
                f"prefix_perturb_scale must be >= 0 (normalised action units), got {self.prefix_perturb_scale}."
            )
        if self.p_prefix_perturb > 0 or self.p_prefix_own > 0:
            if not 1 <= self.reanchor_horizon <= C:
                raise ValueError(
                    f"reanchor_horizon (H) must be in [1, chunk_size={C}], got {self.reanchor_horizon}: "
                    "the offset decays over the first H target frames; set --policy.reanchor_horizon "
                    "in that range."
                )
            if self.reanchor_profile not in ("minimum_jerk", "cosine"):
                raise ValueError(
                    f"reanchor_profile must be 'minimum_jerk' or 'cosine', got {self.reanchor_profile!r}."
                )
        if not 0 <= self.prefix_join_horizon <= C:
            raise ValueError(
                f"prefix_join_horizon must be in [0, chunk_size={C}], got {self.prefix_join_horizon}: the chunk "
                "fades from the prefix into the decoded actions over that many frames (0 = off); set "
                "--policy.prefix_join_horizon in that range."
            )
        if self.p_prefix_own > 0 and self.n_action_steps < K + D:
            raise ValueError(
                f"p_prefix_own > 0 needs n_action_steps >= K + D = {K + D}, got {self.n_action_steps}: the "
                "chunk predicted n_action_steps frames earlier must cover the whole prefix a_{-K} .. a_{D-1}, "
                "so no earlier chunk exists for it; raise --policy.n_action_steps or lower "
                "--policy.length_prefix_past."
            )

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, weight_decay=self.optimizer_weight_decay)

    def get_scheduler_preset(self) -> CosineAnnealingWithWarmupSchedulerConfig | None:
        if self.scheduler == "cosine":
            return CosineAnnealingWithWarmupSchedulerConfig(num_warmup_steps=self.scheduler_warmup_steps)
        return None

    def validate_features(self) -> None:
        if not self.image_features and not self.env_state_feature:
            raise ValueError(
                "act_smooth needs at least one camera (observation.images.*) or "
                "observation.environment_state among its input features; the dataset/"
                "--policy.input_features provides neither."
            )
        if self.action_feature is None:
            raise ValueError("act_smooth needs an 'action' output feature.")

    @property
    def prefix_length(self) -> int:
        """K + D: prefix slots seen by the decoder."""
        return self.length_prefix_past + self.length_prefix_future

    @property
    def own_prefix_lookback(self) -> int:
        """Frames between the earlier observation and t0 for p_prefix_own (0 when it is off)."""
        return self.n_action_steps if self.p_prefix_own > 0 else 0

    @property
    def observation_delta_indices(self) -> list | None:
        # The own-prediction prefix needs the observation of the chunk before: [t0 - n_action_steps, t0].
        return [-self.own_prefix_lookback, 0] if self.own_prefix_lookback else None

    @property
    def action_delta_indices(self) -> list:
        # a_{-K} .. a_{D+C-1}: the prefix for every delay plus the targets of the largest delay; with the
        # own-prediction prefix also the earlier chunk's prefix, from a_{-n_action_steps-K}.
        start = -self.own_prefix_lookback - self.length_prefix_past
        return list(range(start, self.length_prefix_future + self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None
