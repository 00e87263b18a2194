"""join_prefix on a hand-made prefix in the precisions a model may run in: the joined chunk has the
decoded chunk's dtype and the hand-computed values."""

import pytest
import torch

from lerobot_policy_act_smooth.prefix_join import join_prefix, join_weights


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_join_keeps_the_chunks_dtype_and_values(dtype):
    # K = 1, d = 1: a_{-1} = 1, a_0 = 2, so p = 2, v = 1 and the continuation is 3, 4, 5, 6.
    # H = 2: w = 1, 1/2, 0, 0 (minimum jerk at s = 1/2); the decoded chunk is 0.
    weights = join_weights(2, 4)
    assert weights.dtype == torch.float32 and weights.tolist() == [1.0, 0.5, 0.0, 0.0]
    prefix = torch.tensor([1.0, 2.0], dtype=dtype).view(1, 2, 1)
    decoded = torch.zeros(1, 1, 4, 1, dtype=dtype)
    out = join_prefix(decoded, prefix, torch.ones(1, 2, dtype=torch.bool), [1], 1, weights)
    assert out.dtype == dtype
    assert out[0, 0, :, 0].tolist() == [3.0, 2.0, 0.0, 0.0]  # 3; 1/2 * 4 + 1/2 * 0; decoded from H on
