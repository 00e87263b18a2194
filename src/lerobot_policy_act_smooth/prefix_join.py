"""A chunk head that starts where the prefix ends (`prefix_join_horizon`, issue 11).

The decoder's chunk for delay d covers frames d .. d+C-1 and follows the committed action a_{d-1}.
Nothing ties its first actions to that prefix, so a chunk whose prediction disagrees with the prefix
jumps at the boundary. With a join horizon H the chunk is instead

    a_i = w(i) * (p + (i + 1) * v) + (1 - w(i)) * r_i,     i = 0 .. C-1

where r is the decoded chunk, p = a_{d-1} and v = a_{d-1} - a_{d-2} are the last committed action and
the prefix's velocity there (v = 0 when a_{d-2} is padding), and w is the minimum-jerk fade of
prefix_augmentation.reanchor_weights: w(0) = 1, w = 0 from i = H on, flat at both ends. The first
action continues the prefix at constant velocity, and the chunk turns into the decoded one within H
frames without a kink. The crossfade is part of the model: training computes the loss on a_i, so the
decoder learns r given the join, and inference runs the same function (unlike overlap blending,
which mixes two chunks at run time). All values are in normalised action space (an affine map of the
raw units, so "constant velocity" means the same in both).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .prefix_augmentation import reanchor_weights


def join_weights(horizon: int, chunk_size: int) -> Tensor:
    """[C] weights w(i) of the prefix continuation on chunk step i."""
    return reanchor_weights(horizon, chunk_size, "minimum_jerk")


def join_prefix(chunk: Tensor, prefix: Tensor, prefix_valid: Tensor, delays, past_length: int,
                weights: Tensor) -> Tensor:
    """Chunks [n, B, C, A] crossfaded from the prefix continuation (module docstring).

    prefix [B, K+D, A] (slot j is a_{j-K}), prefix_valid [B, K+D]; delays: a list of n delays for every
    sample or a LongTensor [n, B]; weights [C]. A sample whose last committed slot is padding is left as
    decoded.
    """
    n, batch_size = chunk.shape[:2]
    delay_t = torch.as_tensor(delays, device=chunk.device)
    if delay_t.ndim == 1:
        delay_t = delay_t.unsqueeze(1).expand(n, batch_size)
    sample = torch.arange(batch_size, device=chunk.device).unsqueeze(0).expand(n, -1)
    last = past_length + delay_t - 1  # slot of a_{d-1}
    before = (last - 1).clamp(min=0)
    p, p_valid = prefix[sample, last], prefix_valid[sample, last]  # [n, B, A], [n, B]
    has_velocity = p_valid & prefix_valid[sample, before] & (last >= 1)
    v = torch.where(has_velocity.unsqueeze(-1), p - prefix[sample, before], torch.zeros_like(p))
    steps = torch.arange(1, chunk.shape[2] + 1, device=chunk.device, dtype=chunk.dtype)
    continuation = p.unsqueeze(2) + steps.view(1, 1, -1, 1) * v.unsqueeze(2)  # [n, B, C, A]
    w = weights.to(chunk).view(1, 1, -1, 1) * p_valid.view(n, batch_size, 1, 1).to(chunk.dtype)
    return w * continuation + (1 - w) * chunk
