"""Pinhole cameras: intrinsics, depth maps <-> pointmaps, rigid transforms and projection.

Conventions: OpenCV axes (x right, y down, z forward); pixel (x, y) = (column, row) index, so the pixel
centre of column u is at x = u; the default principal point is (W / 2, H / 2), as in DUSt3R.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """(H, W, 2) pixel coordinates (x, y) of every pixel."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def intrinsics_from_focal(focal: Tensor, height: int, width: int, principal_point: Tensor | None = None) -> Tensor:
    """Pinhole K from focal lengths.

    Args:
        focal: (B,) focal length in pixels (square pixels).
        principal_point: (B, 2) (cx, cy); default (W / 2, H / 2).
    Returns:
        (B, 3, 3) intrinsics, dtype and device of `focal`.
    """
    K = torch.zeros(*focal.shape, 3, 3, device=focal.device, dtype=focal.dtype)
    K[..., 0, 0] = focal
    K[..., 1, 1] = focal
    if principal_point is None:
        K[..., 0, 2] = width / 2
        K[..., 1, 2] = height / 2
    else:
        K[..., :2, 2] = principal_point
    K[..., 2, 2] = 1
    return K


def depth_to_points(depth: Tensor, K: Tensor) -> Tensor:
    """Unproject z-depth maps to pointmaps in the camera frame.

    Args:
        depth: (B, H, W) z-depth.
        K: (B, 3, 3) intrinsics.
    Returns:
        (B, H, W, 3) points in each camera's frame.
    """
    height, width = depth.shape[-2:]
    xy = pixel_grid(height, width, device=depth.device, dtype=depth.dtype)  # (H, W, 2)
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    x = (xy[..., 0] - cx) / fx * depth
    y = (xy[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


def transform_points(transform: Tensor, pts3d: Tensor) -> Tensor:
    """Apply rigid or similarity 4x4 transforms to point sets.

    Args:
        transform: (B, 4, 4), e.g. cam2world.
        pts3d: (B, ..., 3) points in the source frame.
    Returns:
        (B, ..., 3) points in the target frame.
    """
    batch = pts3d.shape[0]
    flat = pts3d.reshape(batch, -1, 3)
    out = flat @ transform[:, :3, :3].transpose(1, 2) + transform[:, None, :3, 3]
    return out.reshape(pts3d.shape)


def project_points(pts3d: Tensor, K: Tensor) -> Tensor:
    """Project camera-frame points to pixels.

    Args:
        pts3d: (B, ..., 3) points in the camera frame (z > 0 for points in front).
        K: (B, 3, 3) intrinsics.
    Returns:
        (B, ..., 2) pixel coordinates (x, y).
    """
    batch = pts3d.shape[0]
    flat = pts3d.reshape(batch, -1, 3)
    uvw = flat @ K.transpose(1, 2)
    uv = uvw[..., :2] / uvw[..., 2:].clamp_min(1e-12)
    return uv.reshape(*pts3d.shape[:-1], 2)


def invert_pose(pose: Tensor) -> Tensor:
    """(B, 4, 4) inverse of rigid poses (e.g. cam2world -> world2cam)."""
    rot_t = pose[..., :3, :3].transpose(-1, -2)
    inv = torch.zeros_like(pose)
    inv[..., :3, :3] = rot_t
    inv[..., :3, 3] = -(rot_t @ pose[..., :3, 3:])[..., 0]
    inv[..., 3, 3] = 1
    return inv
