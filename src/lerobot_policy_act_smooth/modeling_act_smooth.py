"""ACTSmooth: an Action Chunking Transformer whose decoder also reads an action prefix.

Tensors inside the policy are in LeRobot's normalised space (the preprocessor normalises
observations and actions; the postprocessor un-normalises the returned actions).

Token layout
    encoder: [latent, (robot state), (environment state), (camera feature-map cells ...)]
    decoder: [K + D prefix slots, C chunk queries]; a prefix slot holds a projected action or,
             when it is padding (before the episode start, or beyond the delay d), a learned
             pad embedding. Queries carry a learned position and a learned delay embedding.
             With a smooth chunk head (chunk_basis) there are M queries, one per basis
             coefficient, decoded to the C actions by a fixed matrix (chunk_basis.py).

Training runs the backbone and the encoder once per sample; only the decoder's tokens are
replicated per delay (self-attention per delay, one shared memory for cross-attention), so the
extra cost over ACT is D x the decoder queries, not the backbone or the encoder
(train_delays="sampled": one delay per sample). The prefix methods (p_prefix_perturb,
p_prefix_own) move the prefix and re-anchor the targets before this (prefix_augmentation.py);
prefix_join_horizon makes each decoded chunk start where its prefix ends (prefix_join.py).
"""

from __future__ import annotations

import math
from collections import deque
from urllib.error import URLError

import torch
import torchvision
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from lerobot.configs import NormalizationMode
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

from .chunk_basis import chunk_basis
from .prefix_join import join_prefix, join_weights
from .configuration_act_smooth import ACTSmoothConfig
from .prefix_augmentation import apply_prefix_offset, random_smooth_offsets, reanchor_weights
from .rtc_prefix import RTCPrefixTracker

ACTION_IS_PAD = "action_is_pad"


def to_relative(actions: Tensor, anchor: Tensor) -> Tensor:
    """Deltas from the anchor. actions [B, T, A], anchor [B, A] (same units) -> [B, T, A]."""
    return actions - anchor.unsqueeze(1)


def from_relative(deltas: Tensor, anchor: Tensor) -> Tensor:
    """Inverse of `to_relative`: anchor + deltas. deltas [B, T, A], anchor [B, A] -> [B, T, A]."""
    return deltas + anchor.unsqueeze(1)


def sinusoid_1d(length: int, dim: int) -> Tensor:
    """[length, dim] fixed sine/cosine position codes."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(position * freq)
    codes[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return codes


def sinusoid_2d(height: int, width: int, dim: int) -> Tensor:
    """[height * width, dim] position codes of a feature map: half the channels code y, half x."""
    y = sinusoid_1d(height, dim // 2).unsqueeze(1).expand(height, width, dim // 2)
    x = sinusoid_1d(width, dim - dim // 2).unsqueeze(0).expand(height, width, dim - dim // 2)
    return torch.cat([y, x], dim=-1).reshape(height * width, dim)


# Children of a torchvision classification model from which on it pools or classifies.
_HEAD_CHILDREN = {"avgpool", "fc", "classifier", "heads", "head"}


def _trunk_of(model: nn.Module) -> nn.Sequential:
    children = []
    for name, child in model.named_children():
        if name in _HEAD_CHILDREN:
            break
        children.append(child)
    return nn.Sequential(*children)


def build_backbone(config: ACTSmoothConfig) -> tuple[nn.Module, int]:
    """The convolutional trunk of a torchvision classification model (a ResNet: without pooling and
    fc, frozen batch norm as in ACT; any other family: its children up to the pooling/classifier,
    with its own normalisation layers) and its output channel count. Every camera's image must
    leave a feature map of at least 1 x 1."""
    try:
        if config.vision_backbone.startswith("resnet"):
            model = getattr(torchvision.models, config.vision_backbone)(
                weights=config.pretrained_backbone_weights,
                replace_stride_with_dilation=[False, False, config.replace_final_stride_with_dilation],
                norm_layer=FrozenBatchNorm2d,
            )
        else:
            model = torchvision.models.get_model(config.vision_backbone, weights=config.pretrained_backbone_weights)
    except (URLError, OSError, RuntimeError) as err:
        if config.pretrained_backbone_weights is None:
            raise
        raise RuntimeError(
            f"Could not fetch the pretrained backbone weights {config.pretrained_backbone_weights!r} "
            f"(is this machine offline?): {err}. Train the backbone from scratch with "
            "--policy.pretrained_backbone_weights=null, or pre-download the torchvision weights."
        ) from err
    trunk = _trunk_of(model)
    was_training = trunk.training
    trunk.eval()
    channels = None
    with torch.no_grad():
        for key, feature in config.image_features.items():
            c, h, w = feature.shape
            try:
                out = trunk(torch.zeros(1, c, h, w))
            except (RuntimeError, AssertionError, ValueError) as err:  # e.g. a transformer's shape check
                out, reason = None, (str(err).splitlines() or [type(err).__name__])[0]
            else:
                reason = f"a feature map of shape {tuple(out.shape[1:])}"
            if out is None or out.ndim != 4 or min(out.shape[2:]) < 1:
                raise ValueError(
                    f"vision_backbone {config.vision_backbone!r} leaves nothing usable of {key} at {h}x{w} ({reason}): "
                    "give the camera a larger image, or choose a convolutional backbone that downsamples less "
                    "(resnet18, mobilenet_v3_small, shufflenet_v2_x0_5, regnet_x_400mf)"
                )
            channels = out.shape[1]
    trunk.train(was_training)
    return trunk, int(channels)


def _transformer_layer_kwargs(config: ACTSmoothConfig) -> dict:
    return dict(
        d_model=config.dim_model,
        nhead=config.n_heads,
        dim_feedforward=config.dim_feedforward,
        dropout=config.dropout,
        activation=config.feedforward_activation,
        batch_first=True,
        norm_first=config.pre_norm,
    )


def _encoder(config: ACTSmoothConfig, n_layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(**_transformer_layer_kwargs(config))
    norm = nn.LayerNorm(config.dim_model) if config.pre_norm else None
    return nn.TransformerEncoder(layer, n_layers, norm=norm, enable_nested_tensor=False)


class DelayDecoderLayer(nn.Module):
    """Transformer decoder layer over x [n_delays, B, T, dim] sharing one memory [B, S, dim] per sample.

    Self-attention runs per (delay, sample) sequence. Cross-attention and the feed-forward block act on
    each token independently, so the delays of a sample are laid side by side and attend to a single
    copy of the memory (its keys/values are projected once, not once per delay). With `n_out`, only
    the last n_out tokens are updated (the prefix slots of the last layer are never read).
    """

    def __init__(self, config: ACTSmoothConfig):
        super().__init__()
        dim = config.dim_model
        self.self_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout, batch_first=True)
        activation = nn.ReLU() if config.feedforward_activation == "relu" else nn.GELU()
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, config.dim_feedforward),
            activation,
            nn.Dropout(config.dropout),
            nn.Linear(config.dim_feedforward, dim),
        )
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])
        self.dropouts = nn.ModuleList([nn.Dropout(config.dropout) for _ in range(3)])
        self.pre_norm = config.pre_norm

    def _self_attention(self, x: Tensor, n_out: int | None) -> Tensor:
        n_delays, batch_size, n_tokens, dim = x.shape
        seqs = x.reshape(n_delays * batch_size, n_tokens, dim)
        queries = seqs if n_out is None else seqs[:, -n_out:]
        out = self.self_attn(queries, seqs, seqs, need_weights=False)[0]
        return out.reshape(n_delays, batch_size, -1, dim)

    def _cross_attention(self, x: Tensor, memory: Tensor) -> Tensor:
        n_delays, batch_size, n_tokens, dim = x.shape
        side_by_side = x.transpose(0, 1).reshape(batch_size, n_delays * n_tokens, dim)
        out = self.cross_attn(side_by_side, memory, memory, need_weights=False)[0]
        return out.reshape(batch_size, n_delays, n_tokens, dim).transpose(0, 1)

    def forward(self, x: Tensor, memory: Tensor, n_out: int | None = None) -> Tensor:
        residual = x if n_out is None else x[:, :, -n_out:]
        if self.pre_norm:
            y = residual + self.dropouts[0](self._self_attention(self.norms[0](x), n_out))
            y = y + self.dropouts[1](self._cross_attention(self.norms[1](y), memory))
            return y + self.dropouts[2](self.feed_forward(self.norms[2](y)))
        y = self.norms[0](residual + self.dropouts[0](self._self_attention(x, n_out)))
        y = self.norms[1](y + self.dropouts[1](self._cross_attention(y, memory)))
        return self.norms[2](y + self.dropouts[2](self.feed_forward(y)))


class ACTSmoothModel(nn.Module):
    """The network: observation encoder (+ optional CVAE encoder) and a prefix-aware decoder."""

    def __init__(self, config: ACTSmoothConfig):
        super().__init__()
        self.config = config
        dim = config.dim_model
        action_dim = config.action_feature.shape[0]
        self.has_state = config.robot_state_feature is not None
        self.has_env = config.env_state_feature is not None
        self.image_keys = list(config.image_features)

        if self.image_keys:
            self.backbone, backbone_channels = build_backbone(config)
            self.image_proj = nn.Conv2d(backbone_channels, dim, kernel_size=1)
        if self.has_state:
            self.state_proj = nn.Linear(config.robot_state_feature.shape[0], dim)
        if self.has_env:
            self.env_proj = nn.Linear(config.env_state_feature.shape[0], dim)
        self.latent_proj = nn.Linear(config.latent_dim, dim)
        self.token_pos = nn.Embedding(1 + int(self.has_state) + int(self.has_env), dim)
        self.encoder = _encoder(config, config.n_encoder_layers)

        if config.use_vae:
            self.vae_cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.vae_action_proj = nn.Linear(action_dim, dim)
            if self.has_state:
                self.vae_state_proj = nn.Linear(config.robot_state_feature.shape[0], dim)
            n_vae_tokens = 1 + int(self.has_state) + config.length_prefix_future + config.chunk_size
            self.register_buffer("vae_pos", sinusoid_1d(n_vae_tokens, dim), persistent=False)
            self.vae_encoder = _encoder(config, config.n_vae_encoder_layers)
            self.vae_out = nn.Linear(dim, 2 * config.latent_dim)

        self.action_in_proj = nn.Linear(action_dim, dim)
        self.prefix_pad = nn.Parameter(torch.zeros(dim))
        self.prefix_pos = nn.Embedding(config.prefix_length, dim)
        # One query per action, or per basis coefficient with a smooth chunk head.
        self.n_queries = config.chunk_size if config.chunk_basis == "none" else config.chunk_basis_size
        if config.chunk_basis != "none":
            basis = chunk_basis(config.chunk_basis, config.chunk_size, config.chunk_basis_size)
            self.register_buffer("chunk_basis", basis, persistent=False)  # rebuilt from the config
        self.query_pos = nn.Embedding(self.n_queries, dim)
        self.delay_embed = nn.Embedding(config.length_prefix_future, dim)
        self.decoder_layers = nn.ModuleList(
            [DelayDecoderLayer(config) for _ in range(config.n_decoder_layers)]
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.action_head = nn.Linear(dim, action_dim)

        for module in (self.encoder, self.decoder_layers) + ((self.vae_encoder,) if config.use_vae else ()):
            for p in module.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        nn.init.normal_(self.prefix_pad, std=0.02)

    def encode(
        self,
        obs: dict[str, Tensor],
        future_actions: Tensor | None = None,
        future_is_pad: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Observation tokens -> memory [B, S, dim].

        future_actions [B, D+C, A] (a_0 .. a_{D+C-1}, relative if configured) feed the CVAE encoder
        in training; otherwise the latent is zero. Returns (memory, mu, log_var) (None, None without VAE).
        """
        batch_size = next(iter(obs.values())).shape[0]
        mu = log_var = None
        if self.config.use_vae and self.training and future_actions is not None:
            tokens = [self.vae_cls.expand(batch_size, -1, -1)]
            if self.has_state:
                tokens.append(self.vae_state_proj(obs[OBS_STATE]).unsqueeze(1))
            tokens.append(self.vae_action_proj(future_actions))
            tokens = torch.cat(tokens, dim=1) + self.vae_pos
            n_lead = 1 + int(self.has_state)
            pad = torch.zeros(batch_size, n_lead, dtype=torch.bool, device=tokens.device)
            if future_is_pad is None:
                future_is_pad = torch.zeros(future_actions.shape[:2], dtype=torch.bool, device=tokens.device)
            cls_out = self.vae_encoder(tokens, src_key_padding_mask=torch.cat([pad, future_is_pad], dim=1))[
                :, 0
            ]
            mu, log_var = self.vae_out(cls_out).chunk(2, dim=-1)
            latent = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
        else:
            latent = self.token_pos.weight.new_zeros(batch_size, self.config.latent_dim)

        tokens = [self.latent_proj(latent)]
        if self.has_state:
            tokens.append(self.state_proj(obs[OBS_STATE]))
        if self.has_env:
            tokens.append(self.env_proj(obs[OBS_ENV_STATE]))
        tokens = [torch.stack(tokens, dim=1) + self.token_pos.weight]
        for key in self.image_keys:
            features = self.image_proj(self.backbone(obs[key]))  # [B, dim, h, w]
            _, dim, h, w = features.shape
            pos = sinusoid_2d(h, w, dim).to(features)
            tokens.append(features.flatten(2).transpose(1, 2) + pos)
        return self.encoder(torch.cat(tokens, dim=1)), mu, log_var

    def decode(
        self, memory: Tensor, prefix: Tensor, prefix_valid: Tensor, delays: list[int] | Tensor
    ) -> Tensor:
        """Chunks for several delays at once.

        memory [B, S, dim]; prefix [B, K+D, A] (slot j is a_{j-K}); prefix_valid [B, K+D] (False =
        padding). delays: a list of n delays for every sample, or a LongTensor [n, B] of per-sample
        delays. For a delay d, slots j >= K+d are treated as padding too. Returns [n, B, C, A].
        """
        cfg = self.config
        batch_size, n_slots, _ = prefix.shape
        delay_t = torch.as_tensor(delays, device=prefix.device)
        if delay_t.ndim == 1:
            delay_t = delay_t.unsqueeze(1).expand(-1, batch_size)
        slot = torch.arange(n_slots, device=prefix.device)
        # valid[i, b, j]: slot j is a real action in the prefix of delay delay_t[i, b] for sample b.
        valid = prefix_valid.unsqueeze(0) & (slot < (cfg.length_prefix_past + delay_t).unsqueeze(-1))
        projected = self.action_in_proj(prefix).unsqueeze(0)
        prefix_tokens = torch.where(valid.unsqueeze(-1), projected, self.prefix_pad) + self.prefix_pos.weight
        queries = self.query_pos.weight + self.delay_embed(delay_t - 1).unsqueeze(2)  # [n, B, queries, dim]
        x = torch.cat([prefix_tokens, queries], dim=2)  # [n, B, K+D+queries, dim]
        for i, layer in enumerate(self.decoder_layers):
            last = i == len(self.decoder_layers) - 1
            x = layer(x, memory, n_out=self.n_queries if last else None)
        out = self.action_head(self.decoder_norm(x))
        if cfg.chunk_basis != "none":  # coefficients [n, B, M, A] -> actions [n, B, C, A]
            out = torch.einsum("cm,nbma->nbca", self.chunk_basis, out)
        return out


def _affine_stats(stats: dict | None, mode: NormalizationMode, dim: int) -> tuple[Tensor, Tensor]:
    """(centre, scale) with x_norm = (x - centre) / scale for LeRobot's normalisation modes."""

    def get(name):
        return torch.as_tensor(stats[name], dtype=torch.float32).reshape(dim)

    if stats is None or mode is None or mode == NormalizationMode.IDENTITY:
        return torch.zeros(dim), torch.ones(dim)
    if mode == NormalizationMode.MEAN_STD:
        return get("mean"), get("std") + 1e-8
    if mode == NormalizationMode.MIN_MAX:
        return (get("max") + get("min")) / 2, (get("max") - get("min")).clamp_min(1e-8) / 2
    raise ValueError(f"Unsupported normalisation mode {mode} for act_smooth's bootstrap action.")


class ACTSmoothPolicy(PreTrainedPolicy):
    """ACT with an action prefix (LeRobot policy type "act_smooth")."""

    config_class = ACTSmoothConfig
    name = "act_smooth"

    def __init__(self, config: ACTSmoothConfig, dataset_stats: dict | None = None, **kwargs):
        super().__init__(config)
        config.validate_features()
        self.config = config
        self.model = ACTSmoothModel(config)
        # Rebuilt from the config, so not part of the checkpoint.
        self.register_buffer("join_weights", join_weights(max(config.prefix_join_horizon, 1), config.chunk_size),
                             persistent=False)
        self._register_bootstrap(dataset_stats)
        self.reset()

    @classmethod
    def from_pretrained(cls, pretrained_name_or_path, *, config: ACTSmoothConfig | None = None, **kwargs):
        """Load a checkpoint; backbone weights come from the checkpoint, so nothing is downloaded."""
        if config is None:
            config = ACTSmoothConfig.from_pretrained(pretrained_name_or_path, **kwargs)
        config.pretrained_backbone_weights = None
        return super().from_pretrained(pretrained_name_or_path, config=config, **kwargs)

    # ------------------------------------------------------------------ LeRobot API
    def get_optim_params(self) -> list[dict]:
        backbone, rest = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (backbone if name.startswith("model.backbone") else rest).append(p)
        return [{"params": rest}, {"params": backbone, "lr": self.config.optimizer_lr_backbone}]

    def reset(self):
        """Forget the executed history and planned actions (call at every episode start)."""
        self._executed: deque[Tensor] = deque(maxlen=self.config.length_prefix_past)
        self._planned: deque[Tensor] = deque()
        if not hasattr(self, "_rtc"):
            self._rtc = RTCPrefixTracker(self.config.length_prefix_past, self.config.length_prefix_future)
        self._rtc.reset()

    def supports_rtc(self) -> bool:
        """act_smooth conditions every chunk on the committed actions: LeRobot's RTC engine can drive it."""
        return True

    def forward(self, batch: dict[str, Tensor], reduction: str = "mean") -> tuple[Tensor, dict]:
        """Training/validation loss (normalised batch from LeRobot).

        batch[ACTION]: [B, L+K+D+C, A] (a_{-L-K} .. a_{D+C-1}) and batch["action_is_pad"]: [B, L+K+D+C],
        where L = config.own_prefix_lookback (0 unless p_prefix_own > 0). With L > 0 every observation key
        holds two frames, [B, 2, ...] = (t0 - L, t0). Delays: every d in 1..D, or one per sample with
        train_delays="sampled" (training mode only; validation scores every delay).
        """
        cfg = self.config
        K, D, C, L = cfg.length_prefix_past, cfg.length_prefix_future, cfg.chunk_size, cfg.own_prefix_lookback
        actions = batch[ACTION]
        if actions.ndim != 3 or actions.shape[1] != L + K + D + C:
            raise ValueError(
                f"act_smooth expects batch['action'] of shape [B, L+K+D+C={L + K + D + C}, A] "
                f"(L={L} own-prefix lookback, K={K} past, D={D} committed, C={C} chunk; "
                f"action_delta_indices={-L - K}..{D + C - 1}), got {tuple(actions.shape)}. "
                "Build the dataset with this config's action_delta_indices."
            )
        is_pad = batch.get(ACTION_IS_PAD)
        if is_pad is None:
            is_pad = torch.zeros(actions.shape[:2], dtype=torch.bool, device=actions.device)
        obs = self._observation(batch)
        earlier_obs = None
        if L:  # frames (t0 - L, t0) from observation_delta_indices
            for key, value in obs.items():
                if value.ndim != 2 + len(self.config.input_features[key].shape) or value.shape[1] != 2:
                    raise ValueError(
                        f"p_prefix_own > 0 needs two observation frames per sample, [B, 2, ...] for {key}, got "
                        f"{tuple(value.shape)}. Build the dataset with this config's observation_delta_indices."
                    )
            earlier_obs = {key: value[:, 0] for key, value in obs.items()}
            obs = {key: value[:, -1] for key, value in obs.items()}
        obs, dropped = self.drop_observation_state(obs)

        batch_size, action_dim = actions.shape[0], actions.shape[-1]
        window, window_pad = actions[:, L:], is_pad[:, L:]  # a_{-K} .. a_{D+C-1}
        delays = self._training_delays(batch_size, actions.device)  # [n, B]
        frames = K + delays.unsqueeze(-1) + torch.arange(C, device=actions.device)  # [n, B, C]
        sample = torch.arange(batch_size, device=actions.device).view(1, -1, 1)
        targets, target_valid = window[sample, frames], ~window_pad[sample, frames]  # [n, B, C, (A)]
        prefix, prefix_valid = window[:, : K + D], ~window_pad[:, : K + D]
        loss_dict = {}
        if self.training and (cfg.p_prefix_perturb > 0 or cfg.p_prefix_own > 0):
            prefix, targets, loss_dict = self.augment_prefix(
                prefix, prefix_valid, targets, target_valid, delays, earlier_obs, actions, is_pad
            )

        anchor = prefix[:, K]
        future = to_relative(window[:, K:], anchor) if cfg.use_action_relative else window[:, K:]
        memory, mu, log_var = self.model.encode(obs, future, window_pad[:, K:])
        pred = self._decode_actions(memory, prefix, prefix_valid, delays)
        abs_err = (pred - targets).abs() * target_valid.unsqueeze(-1)
        count = target_valid.sum(dim=(0, 2)) * action_dim  # per sample
        per_sample_l1 = abs_err.sum(dim=(0, 2, 3)) / count.clamp_min(1)

        for d in range(1, D + 1):
            rows = delays == d
            if rows.any():  # with sampled delays a small batch may miss one
                n_d = (target_valid[rows].sum() * action_dim).clamp_min(1)
                loss_dict[f"l1_loss_d{d}"] = (abs_err[rows].sum() / n_d).item()
        loss_dict["obs_dropped_fraction"] = dropped.float().mean().item()
        per_sample = per_sample_l1
        if mu is not None:
            kld = (-0.5 * (1 + log_var - mu.pow(2) - log_var.exp())).sum(-1)
            loss_dict["kld_loss"] = kld.mean().item()
            per_sample = per_sample + cfg.kl_weight * kld
        if reduction == "none":
            loss_dict["l1_loss"] = per_sample_l1.mean().item()
            return per_sample, loss_dict
        l1 = abs_err.sum() / (target_valid.sum() * action_dim).clamp_min(1)
        loss_dict["l1_loss"] = l1.item()
        loss = l1 + (cfg.kl_weight * kld.mean() if mu is not None else 0.0)
        return loss, loss_dict

    def _training_delays(self, batch_size: int, device) -> Tensor:
        """[n, B] delays trained per sample: every d in 1..D (n = D), or one uniform draw (n = 1)."""
        D = self.config.length_prefix_future
        if self.training and self.config.train_delays == "sampled":
            return torch.randint(1, D + 1, (1, batch_size), device=device)
        return torch.arange(1, D + 1, device=device).unsqueeze(1).expand(D, batch_size)

    def _decode_actions(self, memory: Tensor, prefix: Tensor, prefix_valid: Tensor, delays) -> Tensor:
        """`model.decode` in action space: with use_action_relative the prefix's a_0 (slot K) is the anchor
        of the deltas the network sees and predicts. Returns [n, B, C, A]."""
        cfg = self.config
        if not cfg.use_action_relative:
            chunk = self.model.decode(memory, prefix, prefix_valid, delays)
        else:
            anchor = prefix[:, cfg.length_prefix_past]
            deltas = self.model.decode(memory, to_relative(prefix, anchor), prefix_valid, delays)
            chunk = from_relative(deltas, anchor)  # [n, B, C, A] + [B, 1, A] broadcasts per delay
        if cfg.prefix_join_horizon > 0:
            chunk = join_prefix(chunk, prefix, prefix_valid, delays, cfg.length_prefix_past, self.join_weights)
        return chunk

    def augment_prefix(
        self,
        prefix: Tensor,
        prefix_valid: Tensor,
        targets: Tensor,
        target_valid: Tensor,
        delays: Tensor,
        earlier_obs: dict[str, Tensor] | None = None,
        actions: Tensor | None = None,
        is_pad: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, dict]:
        """Training mode only: per sample, with probability p_prefix_own the prefix becomes the policy's own
        earlier chunk (for samples whose earlier frame lies inside the episode), else with probability
        p_prefix_perturb it is shifted by a random smooth offset; the targets are re-anchored to match
        (prefix_augmentation.py). prefix [B, K+D, A], prefix_valid [B, K+D], targets [n, B, C, A],
        target_valid [n, B, C], delays [n, B]; the own prefix also needs the earlier observation and
        `forward`'s full action window and padding. Returns (prefix, targets, logged fractions); in eval
        mode the inputs themselves."""
        cfg = self.config
        K, D = cfg.length_prefix_past, cfg.length_prefix_future
        stats = {}
        if not self.training:
            return prefix, targets, stats
        batch_size = prefix.shape[0]
        offset = torch.zeros_like(prefix)
        own = torch.zeros(batch_size, dtype=torch.bool, device=prefix.device)
        if cfg.p_prefix_own > 0:
            earlier_inside = ~is_pad[:, K]  # the earlier a_0, at the earlier observation's frame
            own = (torch.rand(batch_size, device=prefix.device) < cfg.p_prefix_own) & earlier_inside
            if own.any():
                own_prefix = self._own_prediction_prefix(
                    {key: value[own] for key, value in earlier_obs.items()}, actions[own], is_pad[own]
                )
                offset[own] = own_prefix - prefix[own]
            stats["prefix_own_fraction"] = own.float().mean().item()
        if cfg.p_prefix_perturb > 0:
            perturbed = ~own & (torch.rand(batch_size, device=prefix.device) < cfg.p_prefix_perturb)
            offset = offset + random_smooth_offsets(perturbed, prefix.shape[-1], K, D, cfg.prefix_perturb_scale)
            stats["prefix_perturbed_fraction"] = perturbed.float().mean().item()
        weights = reanchor_weights(cfg.reanchor_horizon, cfg.chunk_size, cfg.reanchor_profile).to(prefix.device)
        prefix, targets = apply_prefix_offset(prefix, prefix_valid, targets, target_valid, delays, offset, weights, K)
        return prefix, targets, stats

    @torch.no_grad()
    def _own_prediction_prefix(self, earlier_obs: dict[str, Tensor], actions: Tensor, is_pad: Tensor) -> Tensor:
        """The prefix a_{-K} .. a_{D-1} as the policy would have planned it at deployment: its chunk for delay
        D from the observation L = n_action_steps frames earlier, given the demonstration's prefix there
        (eval mode: no dropout, zero latent; no gradient). actions/is_pad: `forward`'s full windows."""
        cfg = self.config
        K, D, L = cfg.length_prefix_past, cfg.length_prefix_future, cfg.own_prefix_lookback
        was_training = self.model.training
        self.model.eval()
        try:
            memory, _, _ = self.model.encode(earlier_obs)
            chunk = self._decode_actions(memory, actions[:, : K + D], ~is_pad[:, : K + D], [D])[0]
        finally:
            self.model.train(was_training)
        # Chunk step i is frame -L + D + i, so the prefix frames -K .. D-1 are steps L-D-K .. L-1.
        return chunk[:, L - D - K : L]

    @torch.no_grad()
    def predict_action_chunk(
        self,
        batch: dict[str, Tensor],
        inference_delay: int | None = None,
        prev_chunk_left_over: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Next chunk (normalised) for LeRobot callers.

        Without `inference_delay` and `prev_chunk_left_over`: [B, C, A] for the policy's own prefix
        (past = the last K actions `select_action` returned since `reset()`; committed = the planned
        actions not yet returned, up to D, or at an episode start a_0 = the bootstrap action: the
        current observation.state mapped to action space when state and action have the same size,
        as for a position-controlled arm, else the mean action). The queue is not changed.

        With either (LeRobot's real-time chunking engine, `lerobot-rollout --inference.type=rtc`):
        [1, d + C, A] = the d committed actions followed by the predicted chunk, so that the
        engine's "drop the first real_delay rows" continues the prefix; see `rtc_prefix` for how d,
        the committed and the past actions are taken from the leftover. An optional `fps` keyword
        only sharpens the message logged once when the latency exceeds D control periods.
        """
        self._ensure_eval()
        if inference_delay is None and prev_chunk_left_over is None:
            past, committed = self._own_prefix(batch)
            return self.predict_chunk_normalised(batch, past, committed)
        if next(iter(self._observation(batch).values())).shape[0] != 1:
            raise ValueError("act_smooth's RTC path takes a batch of one observation (one robot).")
        d = self._rtc.delay(inference_delay, kwargs.get("fps"))
        past, committed = self._rtc.prefix(prev_chunk_left_over, d, self._bootstrap_action(batch))
        policy_past, policy_committed = self._rtc.policy_prefix(past, committed)
        chunk = torch.cat([committed, self.predict_chunk_normalised(batch, policy_past, policy_committed)], dim=1)
        self._rtc.remember(chunk)
        return chunk

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        """One action [B, A] per call; a new chunk is planned when at most D planned actions remain.

        The remaining planned actions become the committed prefix of the next chunk, whose first
        n_action_steps actions are queued after them.
        """
        self._ensure_eval()
        if len(self._planned) <= self.config.length_prefix_future:
            past, committed = self._own_prefix(batch)
            chunk = self.predict_chunk_normalised(batch, past, committed)
            self._planned = deque(committed.unbind(1))
            self._planned.extend(chunk[:, : self.config.n_action_steps].unbind(1))
        action = self._planned.popleft()
        self._executed.append(action)
        return action

    # ------------------------------------------------------------------ prefix-conditioned inference
    @torch.no_grad()
    def predict_chunk_normalised(
        self, batch: dict[str, Tensor], past_actions: Tensor, committed_actions: Tensor
    ) -> Tensor:
        """Chunk for frames t+d .. t+d+C-1, all in normalised space.

        batch: normalised observations [B, ...]; past_actions [B, k, A], 0 <= k <= K (a_{-k} .. a_{-1});
        committed_actions [B, d, A], 1 <= d <= D (a_0 .. a_{d-1}). Returns [B, C, A].
        """
        cfg = self.config
        K, D = cfg.length_prefix_past, cfg.length_prefix_future
        k, d = past_actions.shape[1], committed_actions.shape[1]
        if not 0 <= k <= K:
            raise ValueError(f"past_actions holds {k} actions; act_smooth accepts 0 to K={K}.")
        if not 1 <= d <= D:
            raise ValueError(
                f"committed_actions holds {d} actions; act_smooth accepts 1 to D={D} "
                "(a_0 is always committed)."
            )
        self._ensure_eval()
        batch_size, _, action_dim = committed_actions.shape
        prefix = committed_actions.new_zeros(batch_size, K + D, action_dim)
        prefix[:, K - k : K] = past_actions
        prefix[:, K : K + d] = committed_actions
        valid = torch.zeros(batch_size, K + D, dtype=torch.bool, device=prefix.device)
        valid[:, K - k : K + d] = True
        memory, _, _ = self.model.encode(self._observation(batch))
        return self._decode_actions(memory, prefix, valid, [d])[0]

    @torch.no_grad()
    def predict_chunk_from_prefix(
        self, observation: dict, past_actions, committed_actions, preprocessor, postprocessor
    ) -> Tensor:
        """Raw-unit inference: the documented entry point behind `inference.ChunkPredictor`.

        observation: raw values [B, ...] (images float in [0, 1], channels first); past_actions [B, k, A]
        and committed_actions [B, d, A] in raw action units; preprocessor/postprocessor: the checkpoint's
        pipelines (they hold the normalisation stats). Returns [B, C, A] raw actions for t+d .. t+d+C-1.
        """
        past = torch.as_tensor(past_actions, dtype=torch.float32)
        committed = torch.as_tensor(committed_actions, dtype=torch.float32)
        if past.ndim != 3 or committed.ndim != 3:
            raise ValueError("past_actions and committed_actions must be [B, n, A] arrays.")
        k = past.shape[1]
        batch = {key: torch.as_tensor(value, dtype=torch.float32) for key, value in observation.items()}
        batch[ACTION] = torch.cat([past, committed], dim=1)
        batch = preprocessor(batch)
        prefix = batch.pop(ACTION)
        chunk = self.predict_chunk_normalised(batch, prefix[:, :k], prefix[:, k:])
        return postprocessor(chunk)

    # ------------------------------------------------------------------ helpers
    def drop_observation_state(self, obs: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """Observation dropout: in training mode, zero each sample's observation.state with probability
        p_drop_obs. Zero is written in normalised space, i.e. the state becomes the dataset mean state
        (raw zeros would be an arbitrary, possibly far out-of-range pose). Other keys are passed through
        untouched (same tensors). Returns (observations, dropped [B] bool)."""
        state = obs.get(OBS_STATE)
        batch_size = next(iter(obs.values())).shape[0]
        device = next(iter(obs.values())).device
        if state is None or not self.training or self.config.p_drop_obs <= 0:
            return obs, torch.zeros(batch_size, dtype=torch.bool, device=device)
        dropped = torch.rand(batch_size, device=device) < self.config.p_drop_obs
        obs = dict(obs)
        obs[OBS_STATE] = state.masked_fill(dropped.unsqueeze(-1), 0.0)
        return obs, dropped

    def _observation(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        needed = list(self.config.image_features)
        if self.config.robot_state_feature is not None:
            needed.append(OBS_STATE)
        if self.config.env_state_feature is not None:
            needed.append(OBS_ENV_STATE)
        obs = {key: batch[key] for key in needed if key in batch}
        missing = [key for key in needed if key not in obs]
        if missing:
            raise ValueError(f"act_smooth is missing observation keys {missing} in its input batch.")
        return obs

    def _register_bootstrap(self, dataset_stats: dict | None) -> None:
        """Affine map normalised state -> normalised action, used as a_0 at an episode's first call."""
        action_dim = self.config.action_feature.shape[0]
        state_ft = self.config.robot_state_feature
        scale, shift = torch.zeros(action_dim), torch.zeros(action_dim)  # default: the mean action
        if state_ft is not None and tuple(state_ft.shape) == (action_dim,) and dataset_stats:
            mapping = self.config.normalization_mapping
            s_c, s_s = _affine_stats(dataset_stats.get(OBS_STATE), mapping.get("STATE"), action_dim)
            a_c, a_s = _affine_stats(dataset_stats.get(ACTION), mapping.get("ACTION"), action_dim)
            scale, shift = s_s / a_s, (s_c - a_c) / a_s
        self.register_buffer("bootstrap_scale", scale)
        self.register_buffer("bootstrap_shift", shift)

    def _ensure_eval(self) -> None:
        # nn.Module.eval() walks every submodule (about 2 ms for the CPU profile's model): skip it
        # when already in eval mode, since inference calls come at the control rate.
        if self.training:
            self.eval()

    def _bootstrap_action(self, batch: dict[str, Tensor]) -> Tensor:
        """a_0 [B, A] when nothing was executed yet: the state mapped to action space, else the mean action."""
        batch_size = next(iter(self._observation(batch).values())).shape[0]
        state = batch.get(OBS_STATE)
        if state is not None and state.shape[-1] == self.bootstrap_scale.shape[0]:
            return state * self.bootstrap_scale + self.bootstrap_shift
        return self.bootstrap_shift.expand(batch_size, -1)

    def _own_prefix(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        D = self.config.length_prefix_future
        if self._planned:
            committed = torch.stack(list(self._planned)[:D], dim=1)
        else:
            committed = self._bootstrap_action(batch).unsqueeze(1)
        past = (
            torch.stack(list(self._executed), dim=1)
            if self._executed
            else committed.new_zeros(committed.shape[0], 0, committed.shape[-1])
        )
        return past, committed
