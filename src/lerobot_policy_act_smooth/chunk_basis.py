"""Smooth bases for a chunk head: the decoder predicts M coefficients per joint, and a fixed [C, M]
matrix turns them into the C actions of the chunk (`chunk = basis @ coefficients`).

- "dct": column k is cos(pi * (c + 1/2) * k / C) for chunk step c, k = 0 .. M-1 (DCT-II cosines, not
  normalised, so that column 0 is all ones and coefficients have the scale of actions). A decoded chunk
  holds no frequency above (M - 1) / 2 cycles per chunk.
- "bspline": clamped cubic B-spline with M control points and uniform knots over the chunk; a decoded
  chunk is a C2-continuous piecewise cubic through C samples, its first and last values equal the first
  and last coefficients. The columns sum to one (a constant chunk is reproduced by equal coefficients).
"""

from __future__ import annotations

import numpy as np
import torch

SPLINE_DEGREE = 3


def dct_basis(chunk_size: int, n_coefficients: int) -> np.ndarray:
    """[C, M] DCT-II cosines (see the module docstring)."""
    steps = np.arange(chunk_size)[:, None] + 0.5
    return np.cos(np.pi * steps * np.arange(n_coefficients)[None, :] / chunk_size)


def spline_knots(n_coefficients: int, degree: int = SPLINE_DEGREE) -> np.ndarray:
    """Clamped uniform knot vector on [0, 1] for n_coefficients control points."""
    interior = np.linspace(0.0, 1.0, n_coefficients - degree + 1)[1:-1]
    return np.concatenate([np.zeros(degree + 1), interior, np.ones(degree + 1)])


def bspline_basis(chunk_size: int, n_coefficients: int, degree: int = SPLINE_DEGREE) -> np.ndarray:
    """[C, M] B-spline basis functions (Cox-de Boor) at C equally spaced points of [0, 1]."""
    if n_coefficients < degree + 1:
        raise ValueError(f"a degree-{degree} B-spline needs at least {degree + 1} coefficients, got {n_coefficients}")
    knots = spline_knots(n_coefficients, degree)
    u = np.linspace(0.0, 1.0, chunk_size) if chunk_size > 1 else np.zeros(1)
    # Degree 0: indicator of the knot span holding u; the end point u = 1 belongs to the last real span.
    n_spans = len(knots) - 1
    values = np.zeros((chunk_size, n_spans))
    for j in range(n_spans):
        if knots[j] < knots[j + 1]:
            values[:, j] = (knots[j] <= u) & (u < knots[j + 1])
    values[u >= 1.0, n_coefficients - 1] = 1.0
    for p in range(1, degree + 1):
        raised = np.zeros((chunk_size, n_spans - p))
        for j in range(n_spans - p):
            left_width = knots[j + p] - knots[j]
            right_width = knots[j + p + 1] - knots[j + 1]
            if left_width > 0:
                raised[:, j] += (u - knots[j]) / left_width * values[:, j]
            if right_width > 0:
                raised[:, j] += (knots[j + p + 1] - u) / right_width * values[:, j + 1]
        values = raised
    return values


def chunk_basis(kind: str, chunk_size: int, n_coefficients: int) -> torch.Tensor:
    """The [C, M] float32 decoding matrix of basis `kind` ("dct" or "bspline")."""
    if kind == "dct":
        matrix = dct_basis(chunk_size, n_coefficients)
    elif kind == "bspline":
        matrix = bspline_basis(chunk_size, n_coefficients)
    else:
        raise ValueError(f"unknown chunk basis {kind!r}; expected 'dct' or 'bspline'")
    return torch.as_tensor(matrix, dtype=torch.float32)

