"""Camera pairs for many scenes at once: vectorised draws from per-item random blocks.

Each item draws its random numbers in a few fixed-size blocks from its own torch.Generator (one call
per block), so an item's cameras do not depend on the other items of a batch, and the geometry of all
items is then computed with batched tensor ops (no Python loop per camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .scenes import SCENE_KINDS, Layout

EYE_TRIES = 32
"""Candidate eye positions drawn per camera; the first outside every obstacle is kept."""


@dataclass
class LayoutBatch:
    """Layouts of N scenes as tensors (see scenes.Layout).

    Attributes:
        kind: (N,) long index into SCENE_KINDS.
        extent: (N, 3) half sizes of the camera region.
        target: (N, 3) point worth looking at.
        obstacles: (N, O, 3) (x, y, radius) footprints, radius -1 for padding.
    """

    kind: Tensor
    extent: Tensor
    target: Tensor
    obstacles: Tensor

    @staticmethod
    def of(layouts: list[Layout]) -> LayoutBatch:
        count = max(1, max(len(layout.obstacles) for layout in layouts))
        obstacles = torch.full((len(layouts), count, 3), -1.0)
        for n, layout in enumerate(layouts):
            if layout.obstacles:
                obstacles[n, : len(layout.obstacles)] = torch.tensor(layout.obstacles, dtype=torch.float32)
        return LayoutBatch(
            kind=torch.tensor([SCENE_KINDS.index(layout.kind) for layout in layouts]),
            extent=torch.tensor([layout.extent for layout in layouts], dtype=torch.float32),
            target=torch.tensor([layout.target for layout in layouts], dtype=torch.float32),
            obstacles=obstacles,
        )


def clear_eyes(obstacles: Tensor, eyes: Tensor, margin: float = 0.2) -> Tensor:
    """(N, K) bool: camera centres eyes (N, K, 3) outside every footprint of obstacles (N, O, 3) + margin."""
    distance = (eyes[:, :, None, :2] - obstacles[:, None, :, :2]).norm(dim=-1)  # (N, K, O)
    blocked = (distance <= obstacles[:, None, :, 2] + margin) & (obstacles[:, None, :, 2] > 0)
    return ~blocked.any(dim=-1)


def _direction(yaw: Tensor, pitch: Tensor) -> Tensor:
    return torch.stack([torch.cos(pitch) * torch.cos(yaw), torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch)], -1)


def _lerp(low: Tensor | float, high: Tensor | float, u: Tensor) -> Tensor:
    return low + (high - low) * u


FIRST_UNIFORMS = 3 * EYE_TRIES + 6
"""Uniform numbers per first-view candidate: eye tries, then aim, fov."""
FIRST_NORMALS = 4
"""Normal numbers per first-view candidate: target jitter (3), roll."""
SECOND_UNIFORMS = 5
"""Uniform numbers per second-view candidate: baseline or orbit (3), fov, spare."""
SECOND_NORMALS = 7
"""Normal numbers per second-view candidate: direction (3), target jitter (3), roll."""


def draw_blocks(generator: torch.Generator, candidates: int, uniforms: int, normals: int) -> tuple[Tensor, Tensor]:
    """(candidates, uniforms) uniform and (candidates, normals) normal numbers from one generator."""
    return (
        torch.rand(candidates, uniforms, generator=generator),
        torch.randn(candidates, normals, generator=generator),
    )


def first_views(
    layouts: LayoutBatch,
    uniform: Tensor,
    normal: Tensor,
    hfov_deg: tuple[float, float],
    roll_deg: float = 3.0,
    orbit_m: tuple[float, float] = (1.2, 3.5),
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """First-view candidates suiting each scene kind.

    Args:
        layouts: N scenes.
        uniform: (N, F, FIRST_UNIFORMS) in [0, 1); normal: (N, F, FIRST_NORMALS) standard normal.
        hfov_deg: (low, high) horizontal field of view range.
        roll_deg: standard deviation of the camera roll.
        orbit_m: (near, far) distance of the "objects" kind's cameras from the objects' centre, metres.
    Returns:
        eye (N, F, 3), target (N, F, 3), fov (N, F) degrees, roll (N, F) radians.
    """
    num, count = uniform.shape[:2]
    extent = layouts.extent[:, None, :]  # (N, 1, 3)
    hx, hy = extent[..., 0], extent[..., 1]
    tries = uniform[..., : 3 * EYE_TRIES].reshape(num, count, EYE_TRIES, 3)
    aim = uniform[..., 3 * EYE_TRIES :]  # (N, F, 6)
    room = layouts.kind == SCENE_KINDS.index("room")
    street = layouts.kind == SCENE_KINDS.index("street")

    # Rooms and streets: an eye box, minus obstacles (first clear try, else the first try).
    margin = torch.where(room, 0.4, 0.0)[:, None]
    low = torch.stack([-hx + margin, -hy + margin, torch.where(room, 0.9, 1.3)[:, None].expand(-1, 1)], -1)
    high = torch.stack([hx - margin, hy - margin, torch.where(room, 1.9, 2.2)[:, None].expand(-1, 1)], -1)
    eyes = low[:, :, None] + (high - low)[:, :, None] * tries  # (N, F, T, 3)
    clear = clear_eyes(layouts.obstacles, eyes.reshape(num, -1, 3)).reshape(num, count, EYE_TRIES)
    pick = clear.float().argmax(-1)  # first clear try (0 if none)
    box_eye = eyes.gather(2, pick[..., None, None].expand(-1, -1, 1, 3))[:, :, 0]

    # Room: look across the room, towards the far half, at a random height.
    far = -torch.sign(box_eye[..., :2]) * torch.stack([hx, hy], -1) * 0.9 * aim[..., :2]
    room_target = torch.cat([far, _lerp(0.2, 1.5, aim[..., 2:3])], -1)
    # Street: along the street either way, some yaw and pitch, 10 m ahead.
    along = torch.where(aim[..., 0] < 0.5, math.pi / 2, -math.pi / 2)
    yaw = along + _lerp(-1.0, 1.0, aim[..., 1])
    street_target = box_eye + 10 * _direction(yaw, _lerp(-0.15, 0.25, aim[..., 2]))
    # Objects: on a sphere around the objects, looking at them.
    centre = layouts.target[:, None, :]
    orbit = _lerp(orbit_m[0], orbit_m[1], aim[..., 0:1]) * _direction(
        _lerp(-math.pi, math.pi, aim[..., 1]), _lerp(0.15, 0.9, aim[..., 2])
    )
    objects_eye, objects_target = centre + orbit, centre + 0.15 * normal[..., :3]
    # Clutter: closer, from the open side (-y: the wall is behind the things), looking down at them.
    clutter = (layouts.kind == SCENE_KINDS.index("clutter"))[:, None, None]
    close = _lerp(0.45, 1.3, aim[..., 0:1]) * _direction(
        _lerp(-math.pi / 2 - 1.0, -math.pi / 2 + 1.0, aim[..., 1]), _lerp(0.25, 1.0, aim[..., 2])
    )
    objects_eye = torch.where(clutter, centre + close, objects_eye)
    objects_target = torch.where(clutter, centre + 0.05 * normal[..., :3], objects_target)

    room_or_street = (room | street)[:, None, None]
    eye = torch.where(room_or_street, box_eye, objects_eye)
    target = torch.where(
        room[:, None, None], room_target, torch.where(street[:, None, None], street_target, objects_target)
    )
    fov = _lerp(hfov_deg[0], hfov_deg[1], aim[..., 3])
    roll = torch.deg2rad(roll_deg * normal[..., 3])
    return eye, target, fov, roll


def second_views(
    layouts: LayoutBatch,
    eye: Tensor,
    target: Tensor,
    uniform: Tensor,
    normal: Tensor,
    hfov_deg: tuple[float, float],
    roll_deg: float = 3.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Second-view candidates near each first view.

    Args:
        layouts: N scenes.
        eye, target: (N, 3) the first views.
        uniform: (N, C, SECOND_UNIFORMS); normal: (N, C, SECOND_NORMALS).
    Returns:
        eye (N, C, 3), target (N, C, 3), fov (N, C) degrees, roll (N, C) radians.
    """
    eye, target = eye[:, None], target[:, None]  # (N, 1, 3)
    room = (layouts.kind == SCENE_KINDS.index("room"))[:, None]
    clutter = (layouts.kind == SCENE_KINDS.index("clutter"))[:, None]
    objects = ((layouts.kind == SCENE_KINDS.index("objects"))[:, None] | clutter)[..., None]
    # Objects and clutter: move along the orbit (azimuth, elevation, radius) around the first view's target;
    # clutter stays on the open side, away from the wall behind the things.
    offset = eye - target
    radius = offset.norm(dim=-1)
    azimuth = torch.atan2(offset[..., 1], offset[..., 0]) + _lerp(-1.2, 1.2, uniform[..., 0])
    azimuth = torch.where(clutter, azimuth.clamp(-math.pi / 2 - 1.9, -math.pi / 2 + 1.9), azimuth)
    elevation = torch.asin((offset[..., 2] / radius).clamp(-1, 1)) + _lerp(-0.3, 0.3, uniform[..., 1])
    orbit_eye = target + (radius * _lerp(0.75, 1.3, uniform[..., 2]))[..., None] * _direction(
        azimuth, elevation.clamp(0.05, 1.3)
    )
    orbit_target = target + torch.where(clutter, 0.04, 0.1)[..., None] * normal[..., 3:6]
    # Rooms and streets: a baseline in a random, mostly horizontal direction; aim near the same point.
    baseline = torch.where(room, _lerp(0.1, 1.6, uniform[..., 0]), _lerp(0.1, 4.0, uniform[..., 0]))
    direction = normal[..., :3] * torch.tensor([1.0, 1.0, 0.3])
    moved = eye + baseline[..., None] * direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    limit = torch.stack([layouts.extent[:, 0] - 0.2, layouts.extent[:, 1] - 0.2], -1)[:, None]  # (N, 1, 2)
    in_room = torch.cat(
        [torch.maximum(torch.minimum(moved[..., :2], limit), -limit), moved[..., 2:].clamp(0.5, None)], -1
    )
    in_room[..., 2] = torch.minimum(in_room[..., 2], layouts.extent[:, None, 2] - 0.3)
    moved = torch.where(room[..., None], in_room, moved)
    spread = 0.25 * (target - eye).norm(dim=-1, keepdim=True)
    moved_target = target + spread * normal[..., 3:6]
    eyes = torch.where(objects, orbit_eye, moved)
    targets = torch.where(objects, orbit_target, moved_target)
    fov = _lerp(hfov_deg[0], hfov_deg[1], uniform[..., 3])
    roll = torch.deg2rad(roll_deg * normal[..., 6])
    return eyes, targets, fov, roll
