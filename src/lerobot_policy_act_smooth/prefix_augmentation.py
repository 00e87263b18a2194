"""Prefix offsets and re-anchored targets (issue 11, methods 1 and 2), as pure tensor functions.

At deployment the prefix is the policy's previous chunk, which has drifted from where the demonstration
would be. Training can show the same situation: the prefix (slots j = 0 .. K+D-1, frames f = j - K
relative to a_0) is moved by an offset e(f) per joint, and the targets of delay d (frames d + i,
i = 0 .. C-1) are moved by

    e_target(i) = (e(d-1) + v * (i + 1)) * w(i),    v = e(d-1) - e(d-2)   (0 when the prefix has one slot)

i.e. the offset and its velocity at the join are continued and faded out by w, which falls from
w(0) = 1 to 0 at i = H with zero slope at both ends, so the target trajectory leaves the prefix
without a jump or a kink in velocity and returns to the demonstration within H frames:

    minimum_jerk: w(i) = 1 - (10 s^3 - 15 s^4 + 6 s^5),   s = min(i / H, 1)
    cosine:       w(i) = (1 + cos(pi * s)) / 2

The random smooth offset of `p_prefix_perturb` is e(f) = c + s * f / (K + D) per joint, with c and s
drawn from N(0, scale^2): c is the offset at a_0, s its change across the prefix. For such a linear
offset the target offset is e(d + i) * w(i). The own-prediction prefix of `p_prefix_own` uses
e(f) = own chunk - demonstration on the prefix frames. Padding (prefix slots or targets flagged as
padding by LeRobot) is never moved.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

PROFILES = ("minimum_jerk", "cosine")


def reanchor_weights(horizon: int, chunk_size: int, profile: str) -> Tensor:
    """[C] weights w(i) of the offset on target step i (module docstring); 0 from i = H on."""
    s = (torch.arange(chunk_size, dtype=torch.float32) / horizon).clamp(max=1.0)
    if profile == "minimum_jerk":
        return 1.0 - (10 * s**3 - 15 * s**4 + 6 * s**5)
    if profile == "cosine":
        return 0.5 * (1.0 + torch.cos(math.pi * s))
    raise ValueError(f"unknown re-anchoring profile {profile!r}; expected one of {PROFILES}")


def smooth_offsets(const: Tensor, slope: Tensor, past_length: int, max_delay: int) -> Tensor:
    """e(f) = const + slope * f / (K + D) on the prefix frames f = -K .. D-1. const, slope [B, A] -> [B, K+D, A]."""
    frames = torch.arange(-past_length, max_delay, dtype=const.dtype, device=const.device)
    return const.unsqueeze(1) + slope.unsqueeze(1) * (frames / (past_length + max_delay)).view(1, -1, 1)


def random_smooth_offsets(
    apply: Tensor, action_dim: int, past_length: int, max_delay: int, scale: float
) -> Tensor:
    """Random smooth offsets [B, K+D, A] for the samples where apply [B] is True, zero elsewhere."""
    shape = (apply.shape[0], action_dim)
    const = torch.randn(shape, device=apply.device) * scale
    slope = torch.randn(shape, device=apply.device) * scale
    return smooth_offsets(const, slope, past_length, max_delay) * apply.view(-1, 1, 1)


def join_offsets(prefix_offset: Tensor, delays: Tensor, past_length: int) -> tuple[Tensor, Tensor]:
    """Offset e(d-1) and its velocity e(d-1) - e(d-2) at the join of each delay.

    prefix_offset [B, K+D, A]; delays [n, B] (delay of each (row, sample)). Returns two [n, B, A].
    """
    last = past_length + delays - 1  # slot of a_{d-1}
    sample = torch.arange(prefix_offset.shape[0], device=delays.device).unsqueeze(0)
    end = prefix_offset[sample, last]
    before = prefix_offset[sample, (last - 1).clamp_min(0)]
    velocity = torch.where((last >= 1).unsqueeze(-1), end - before, torch.zeros_like(end))
    return end, velocity


def apply_prefix_offset(
    prefix: Tensor,
    prefix_valid: Tensor,
    targets: Tensor,
    target_valid: Tensor,
    delays: Tensor,
    prefix_offset: Tensor,
    weights: Tensor,
    past_length: int,
) -> tuple[Tensor, Tensor]:
    """Move the prefix by prefix_offset and re-anchor the targets (module docstring).

    prefix [B, K+D, A], prefix_valid [B, K+D]; targets [n, B, C, A], target_valid [n, B, C] for delays
    [n, B]; prefix_offset [B, K+D, A]; weights [C] from `reanchor_weights`. Returns new tensors
    (the inputs are not modified); padded entries are returned unchanged.
    """
    moved_prefix = prefix + prefix_offset * prefix_valid.unsqueeze(-1)
    end, velocity = join_offsets(prefix_offset, delays, past_length)
    steps = torch.arange(1, targets.shape[2] + 1, dtype=targets.dtype, device=targets.device).view(1, 1, -1, 1)
    target_offset = (end.unsqueeze(2) + velocity.unsqueeze(2) * steps) * weights.to(targets).view(1, 1, -1, 1)
    return moved_prefix, targets + target_offset * target_valid.unsqueeze(-1)
