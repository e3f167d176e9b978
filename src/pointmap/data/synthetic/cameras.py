"""Camera sampling for synthetic scenes: look-at poses, field-of-view intrinsics, view overlap."""

from __future__ import annotations

import torch
from torch import Tensor

from ...geometry.cameras import depth_to_points, intrinsics_from_focal, invert_pose, project_points, transform_points


def look_at(eye: Tensor, target: Tensor, roll: Tensor | None = None) -> Tensor:
    """OpenCV camera-to-world poses looking from eye to target, world z up, image rows downwards.

    Args:
        eye: (B, 3) camera centres.
        target: (B, 3) points on the optical axis.
        roll: (B,) rotation about the optical axis in radians (clockwise in the image), or None.
    Returns:
        (B, 4, 4) cam2world.
    """
    forward = target - eye
    forward = forward / forward.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    up = torch.zeros_like(forward)
    up[:, 2] = 1
    # Looking straight up or down: any horizontal right vector will do.
    degenerate = torch.cross(forward, up, dim=-1).norm(dim=-1, keepdim=True) < 1e-6
    up = torch.where(degenerate, torch.tensor([0.0, 1.0, 0.0], device=eye.device, dtype=eye.dtype), up)
    right = torch.cross(forward, up, dim=-1)
    right = right / right.norm(dim=-1, keepdim=True)
    down = torch.cross(forward, right, dim=-1)
    if roll is not None:
        c, s = torch.cos(roll)[:, None], torch.sin(roll)[:, None]
        right, down = c * right + s * down, c * down - s * right
    pose = torch.zeros(eye.shape[0], 4, 4, device=eye.device, dtype=eye.dtype)
    pose[:, :3, 0], pose[:, :3, 1], pose[:, :3, 2], pose[:, :3, 3] = right, down, forward, eye
    pose[:, 3, 3] = 1
    return pose


def intrinsics_from_fov(hfov_deg: Tensor, height: int, width: int) -> Tensor:
    """(B, 3, 3) K with square pixels, principal point (W / 2, H / 2), from horizontal FOV (B,) degrees."""
    focal = (width / 2) / torch.tan(torch.deg2rad(hfov_deg) / 2)
    return intrinsics_from_focal(focal, height, width)


def overlap(
    depth1: Tensor,
    K1: Tensor,
    cam2world1: Tensor,
    depth2: Tensor,
    K2: Tensor,
    cam2world2: Tensor,
    rel_tol: float = 0.02,
) -> Tensor:
    """Fraction of view 1's valid pixels that view 2 sees too (reprojection with a depth test).

    A pixel of view 1 counts when its 3D point projects inside view 2, in front of it, and its depth
    in view 2 lies within rel_tol of the depth range of the 3x3 valid pixels around where it lands
    (a range, not the nearest pixel, so that surfaces seen at grazing angles are not rejected).

    Args:
        depth1: (B, H1, W1) z-depth, 0 where invalid; K1 (B, 3, 3); cam2world1 (B, 4, 4).
        depth2: (B, H2, W2) z-depth, 0 where invalid; K2 (B, 3, 3); cam2world2 (B, 4, 4).
    Returns:
        (B,) overlap in [0, 1] (0 when view 1 has no valid pixel).
    """
    pts_in_1 = depth_to_points(depth1, K1)
    world2cam2 = invert_pose(cam2world2) @ cam2world1
    pts_in_2 = transform_points(world2cam2, pts_in_1)  # (B, H1, W1, 3)
    uv = project_points(pts_in_2, K2)
    height2, width2 = depth2.shape[-2:]
    col, row = torch.round(uv[..., 0]).long(), torch.round(uv[..., 1]).long()
    inside = (col >= 0) & (col < width2) & (row >= 0) & (row < height2) & (pts_in_2[..., 2] > 0)
    valid2 = depth2 > 0
    near = -torch.nn.functional.max_pool2d(torch.where(valid2, -depth2, -torch.inf)[:, None], 3, 1, 1)[:, 0]
    far = torch.nn.functional.max_pool2d(torch.where(valid2, depth2, -torch.inf)[:, None], 3, 1, 1)[:, 0]
    flat = (row.clamp(0, height2 - 1) * width2 + col.clamp(0, width2 - 1)).reshape(depth1.shape[0], -1)

    def at_landing(x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1).gather(1, flat).reshape(depth1.shape)

    z = pts_in_2[..., 2]
    visible = (
        inside & at_landing(valid2) & (z >= at_landing(near) * (1 - rel_tol)) & (z <= at_landing(far) * (1 + rel_tol))
    )
    valid1 = depth1 > 0
    return (visible & valid1).sum(dim=(-2, -1)) / valid1.sum(dim=(-2, -1)).clamp_min(1)


def open_view(
    depth: Tensor, min_valid: float = 0.4, min_nearest: float = 0.3, min_median: float | Tensor = 1.0
) -> Tensor:
    """Whether probe depth maps (..., h, w) show a view worth training on.

    True where at least min_valid of the pixels hit a surface (not sky), none nearer than min_nearest
    metres, and the median hit lies beyond min_median metres (not staring at a close wall or sofa);
    min_median may be a tensor that broadcasts against the leading dimensions (one per scene).
    """
    valid = depth > 0
    fraction = valid.float().mean(dim=(-2, -1))
    nearest = torch.where(valid, depth, torch.inf).amin(dim=(-2, -1))
    median = torch.where(valid, depth, torch.nan).flatten(-2).nanmedian(dim=-1).values
    return (fraction >= min_valid) & (nearest > min_nearest) & (median > min_median)
