"""Focal length of a pointmap seen by a pinhole camera with a known principal point."""

from __future__ import annotations

import torch
from torch import Tensor

from pointmap.geometry.cameras import pixel_grid


def estimate_focal(
    pts3d: Tensor,
    conf: Tensor | None = None,
    principal_point: Tensor | None = None,
    iterations: int = 10,
    min_fov_deg: float | None = None,
    max_fov_deg: float | None = None,
) -> Tensor:
    """Robust focal length of pointmaps in their own camera frame (the paper's Weiszfeld estimate).

    Minimises sum_p conf_p * || (x_p - c) - f * (X_p / Z_p, Y_p / Z_p) || over f by iteratively
    reweighted least squares (Weiszfeld), starting from the least-squares solution. The L1-type norm
    makes it robust to a few wrong points.

    Args:
        pts3d: (B, H, W, 3) points in the camera's own frame.
        conf: (B, H, W) non-negative weights, default 1.
        principal_point: (B, 2) (cx, cy) in pixels; default (W / 2, H / 2).
        iterations: Weiszfeld reweighting steps.
        min_fov_deg, max_fov_deg: optional clamp of the result by the field of view along the
            longer image side, to reject degenerate pointmaps.
    Returns:
        (B,) focal length in pixels, dtype of pts3d.
    """
    batch, height, width, _ = pts3d.shape
    dtype = pts3d.dtype
    pts = pts3d.double().reshape(batch, -1, 3)
    if conf is None:
        weights = torch.ones(pts.shape[:2], device=pts.device, dtype=torch.float64)
    else:
        weights = conf.double().reshape(batch, -1)
    if principal_point is None:
        centre = torch.tensor([width / 2, height / 2], device=pts.device, dtype=torch.float64).expand(batch, 2)
    else:
        centre = principal_point.double()
    offsets = pixel_grid(height, width, device=pts.device, dtype=torch.float64).reshape(1, -1, 2) - centre[:, None]
    z = pts[..., 2:]
    valid = (z[..., 0] > 1e-8) & torch.isfinite(pts).all(-1)
    rays = torch.where(valid[..., None], pts[..., :2] / z.clamp_min(1e-8), torch.zeros_like(pts[..., :2]))
    weights = torch.where(valid, weights, torch.zeros_like(weights))

    def weighted_ls(w: Tensor) -> Tensor:
        num = (w * (offsets * rays).sum(-1)).sum(-1)
        den = (w * (rays * rays).sum(-1)).sum(-1).clamp_min(1e-12)
        return num / den

    focal = weighted_ls(weights)
    for _ in range(iterations):
        residual = (offsets - focal[:, None, None] * rays).norm(dim=-1)
        focal = weighted_ls(weights / residual.clamp_min(1e-8))

    longer = max(height, width)
    if min_fov_deg is not None:
        max_focal = longer / 2 / torch.tan(torch.deg2rad(torch.tensor(min_fov_deg / 2, dtype=torch.float64)))
        focal = focal.clamp(max=max_focal.item())
    if max_fov_deg is not None:
        min_focal = longer / 2 / torch.tan(torch.deg2rad(torch.tensor(max_fov_deg / 2, dtype=torch.float64)))
        focal = focal.clamp(min=min_focal.item())
    return focal.to(dtype)
