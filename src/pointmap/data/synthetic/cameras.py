"""Camera sampling for synthetic scenes: look-at poses, field-of-view intrinsics, view overlap."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...geometry.cameras import depth_to_points, intrinsics_from_focal, invert_pose, project_points, transform_points
from .scenes import Layout


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


def open_view(depth: Tensor, min_valid: float = 0.4, min_nearest: float = 0.3, min_median: float = 1.0) -> Tensor:
    """Whether probe depth maps (..., h, w) show a view worth training on.

    True where at least min_valid of the pixels hit a surface (not sky), none nearer than min_nearest
    metres, and the median hit lies beyond min_median metres (not staring at a close wall or sofa).
    """
    valid = depth > 0
    fraction = valid.float().mean(dim=(-2, -1))
    nearest = torch.where(valid, depth, torch.inf).amin(dim=(-2, -1))
    median = torch.where(valid, depth, torch.nan).flatten(-2).nanmedian(dim=-1).values
    return (fraction >= min_valid) & (nearest > min_nearest) & (median > min_median)


def _uniform(generator: torch.Generator, low: float, high: float, n: int = 1) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _direction(yaw: Tensor, pitch: Tensor) -> Tensor:
    return torch.stack([torch.cos(pitch) * torch.cos(yaw), torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch)], -1)


def clear_of_obstacles(layout: Layout, eyes: Tensor, margin: float = 0.2) -> Tensor:
    """(N,) bool: True where a camera centre (N, 3) stands outside every obstacle footprint plus margin."""
    if not layout.obstacles:
        return torch.ones(eyes.shape[0], dtype=torch.bool, device=eyes.device)
    footprints = torch.tensor(layout.obstacles, dtype=eyes.dtype, device=eyes.device)  # (O, 3)
    distance = (eyes[:, None, :2] - footprints[None, :, :2]).norm(dim=-1)
    return (distance > footprints[:, 2] + margin).all(dim=-1)


def _clear_eye(layout: Layout, generator: torch.Generator, low: Tensor, high: Tensor, tries: int = 32) -> Tensor:
    """(3,) the first uniform draw in the box [low, high] that clears the obstacles (the last draw if none)."""
    draws = low + (high - low) * torch.rand(tries, 3, generator=generator)
    clear = clear_of_obstacles(layout, draws)
    return draws[clear.float().argmax()]


def sample_first_camera(layout: Layout, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(3,) eye and (3,) target of a first view that suits the scene kind (CPU float32)."""
    hx, hy, _ = layout.extent
    target0 = torch.tensor(layout.target)
    if layout.kind == "room":
        eye = _clear_eye(
            layout, generator, torch.tensor([-hx + 0.4, -hy + 0.4, 0.9]), torch.tensor([hx - 0.4, hy - 0.4, 1.9])
        )
        # Look across the room: towards the far half, at a random height.
        far = -torch.sign(eye[:2]) * torch.tensor([hx, hy]) * _uniform(generator, 0.0, 0.9, 2)
        return eye, torch.cat([far, _uniform(generator, 0.2, 1.5)])
    if layout.kind == "objects":
        radius, azimuth = _uniform(generator, 1.2, 3.5), _uniform(generator, -math.pi, math.pi)
        elevation = _uniform(generator, 0.15, 0.9)
        eye = target0 + radius * _direction(azimuth, elevation)[0]
        return eye, target0 + 0.15 * torch.randn(3, generator=generator)
    eye = _clear_eye(layout, generator, torch.tensor([-hx, -hy, 1.3]), torch.tensor([hx, hy, 2.2]))
    along = torch.where(torch.rand(1, generator=generator) < 0.5, math.pi / 2, -math.pi / 2)
    yaw = along + _uniform(generator, -1.0, 1.0)
    pitch = _uniform(generator, -0.15, 0.25)
    return eye, eye + 10 * _direction(yaw, pitch)[0]


def sample_second_cameras(layout: Layout, eye: Tensor, target: Tensor, count: int, generator: torch.Generator):
    """(count, 3) eyes and targets of candidate second views near a first view (eye, target)."""
    hx, hy, _ = layout.extent
    if layout.kind == "objects":
        offset = eye - target
        radius = offset.norm() * _uniform(generator, 0.75, 1.3, count)
        azimuth = torch.atan2(offset[1], offset[0]) + _uniform(generator, -1.2, 1.2, count)
        elevation = (torch.asin(offset[2] / offset.norm()) + _uniform(generator, -0.3, 0.3, count)).clamp(0.05, 1.3)
        eyes = target + radius[:, None] * _direction(azimuth, elevation)
        return eyes, target + 0.1 * torch.randn(count, 3, generator=generator)
    baseline = _uniform(generator, 0.1, 1.6 if layout.kind == "room" else 4.0, count)
    direction = torch.randn(count, 3, generator=generator) * torch.tensor([1.0, 1.0, 0.3])
    eyes = eye + baseline[:, None] * direction / direction.norm(dim=-1, keepdim=True)
    if layout.kind == "room":
        limit = torch.tensor([hx - 0.2, hy - 0.2])
        eyes[:, :2] = torch.maximum(torch.minimum(eyes[:, :2], limit), -limit)
        eyes[:, 2] = eyes[:, 2].clamp(0.5, layout.extent[2] - 0.3)
    spread = (target - eye).norm() * 0.25
    return eyes, target + spread * torch.randn(count, 3, generator=generator)


def sample_fov(count: int, generator: torch.Generator, low: float = 45.0, high: float = 80.0) -> Tensor:
    """(count,) horizontal fields of view in degrees."""
    return _uniform(generator, low, high, count)


def sample_roll(count: int, generator: torch.Generator, sigma_deg: float = 3.0) -> Tensor:
    """(count,) small camera rolls in radians (hand-held cameras are never perfectly level)."""
    return torch.deg2rad(sigma_deg * torch.randn(count, generator=generator))
