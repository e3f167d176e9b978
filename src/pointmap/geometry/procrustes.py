"""Weighted similarity alignment of corresponding point sets (Umeyama, 1991)."""

from __future__ import annotations

import torch
from torch import Tensor


def weighted_procrustes(
    src: Tensor, dst: Tensor, weights: Tensor | None = None, with_scale: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Similarity (s, R, t) minimising sum_n w_n || s R src_n + t - dst_n ||^2.

    Args:
        src: (B, N, 3) source points.
        dst: (B, N, 3) corresponding target points.
        weights: (B, N) non-negative weights, default 1.
        with_scale: if False, s = 1 (rigid alignment).
    Returns:
        scale (B,), rotation (B, 3, 3) with det +1, translation (B, 3), in the dtype of src.
        Computed in float64: the 3x3 SVD is cheap and float32 loses digits on far-away scenes.
    """
    dtype = src.dtype
    src64, dst64 = src.double(), dst.double()
    w = torch.ones(src.shape[:2], device=src.device, dtype=torch.float64) if weights is None else weights.double()
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-300)
    mean_src = (w[..., None] * src64).sum(1)
    mean_dst = (w[..., None] * dst64).sum(1)
    src_c = src64 - mean_src[:, None]
    dst_c = dst64 - mean_dst[:, None]
    cov = (w[..., None] * dst_c).transpose(1, 2) @ src_c  # (B, 3, 3)
    u, sigma, vh = torch.linalg.svd(cov)
    # Flip the last singular direction when the best orthogonal matrix is a reflection.
    sign = torch.sign(torch.linalg.det(u @ vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.ones_like(sigma)
    d[:, 2] = sign
    rotation = u @ torch.diag_embed(d) @ vh
    if with_scale:
        var_src = (w * (src_c * src_c).sum(-1)).sum(-1).clamp_min(1e-300)
        scale = (sigma * d).sum(-1) / var_src
    else:
        scale = torch.ones_like(sigma[:, 0])
    translation = mean_dst - scale[:, None] * (rotation @ mean_src[..., None])[..., 0]
    return scale.to(dtype), rotation.to(dtype), translation.to(dtype)


def nearest_rotation(matrix: Tensor) -> Tensor:
    """(..., 3, 3) rotation R maximising trace(R^T matrix) (SVD in float64, reflections flipped away)."""
    u, _, vh = torch.linalg.svd(matrix.double())
    sign = torch.where(torch.linalg.det(u @ vh) < 0, -1.0, 1.0)
    flip = torch.ones_like(u[..., 0])
    flip[..., 2] = sign
    return (u @ torch.diag_embed(flip) @ vh).to(matrix.dtype)


def similarity_matrix(scale: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """(B, 4, 4) matrix of x -> s R x + t from scale (B,), rotation (B, 3, 3), translation (B, 3)."""
    out = torch.zeros(*rotation.shape[:-2], 4, 4, device=rotation.device, dtype=rotation.dtype)
    out[..., :3, :3] = scale[..., None, None] * rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1
    return out
