"""A synthetic two-camera scene with exact depth: a tilted plane behind a sphere, seen by two pinholes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pointmap.geometry.cameras import depth_to_points, intrinsics_from_focal, invert_pose, transform_points

# Scene in camera 1's frame: the plane n . X = offset and one sphere.
PLANE_NORMAL = (0.15, 0.1, -1.0)
PLANE_OFFSET = -4.0
SPHERE_CENTRE = (0.2, 0.1, 2.6)
SPHERE_RADIUS = 0.6


@dataclass
class TwoViewScene:
    """Ground truth, float64. cam2_to_cam1 (4, 4); K1, K2 (3, 3); depth1, depth2 (H, W); pts (H, W, 3)."""

    K1: Tensor
    K2: Tensor
    cam2_to_cam1: Tensor
    depth1: Tensor
    depth2: Tensor
    pts1_in_1: Tensor
    pts2_in_1: Tensor
    pts2_in_2: Tensor


def rotation_about(axis: tuple[float, float, float], degrees: float) -> Tensor:
    """(3, 3) rotation by Rodrigues' formula."""
    k = torch.tensor(axis, dtype=torch.float64)
    k = k / k.norm()
    cross = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=torch.float64)
    angle = math.radians(degrees)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def ray_depth(K: Tensor, cam2world: Tensor, height: int, width: int) -> Tensor:
    """(H, W) z-depth of the first surface hit by each pixel's ray of a camera placed in camera 1's frame."""
    ones = torch.ones(1, height, width, dtype=torch.float64)
    rays = transform_points(cam2world[None], depth_to_points(ones, K[None]))[0] - cam2world[:3, 3]  # z = 1 in cam
    origin = cam2world[:3, 3]
    normal = torch.tensor(PLANE_NORMAL, dtype=torch.float64)
    t_plane = (PLANE_OFFSET - normal @ origin) / (rays @ normal)
    offset = origin - torch.tensor(SPHERE_CENTRE, dtype=torch.float64)
    a = (rays * rays).sum(-1)
    b = 2 * rays @ offset
    c = offset @ offset - SPHERE_RADIUS**2
    disc = b * b - 4 * a * c
    t_sphere = (-b - disc.clamp_min(0).sqrt()) / (2 * a)
    t_sphere = torch.where(disc > 0, t_sphere, torch.full_like(t_sphere, math.inf))
    return torch.minimum(t_plane, t_sphere)


def make_two_view_scene(height: int = 48, width: int = 64, focal1: float = 58.0, focal2: float = 66.0) -> TwoViewScene:
    """Camera 2 sits 0.6 to the right of camera 1, turned 12 degrees towards the sphere."""
    K1 = intrinsics_from_focal(torch.tensor([focal1], dtype=torch.float64), height, width)[0]
    K2 = intrinsics_from_focal(torch.tensor([focal2], dtype=torch.float64), height, width)[0]
    cam2_to_cam1 = torch.eye(4, dtype=torch.float64)
    cam2_to_cam1[:3, :3] = rotation_about((0.1, -1.0, 0.05), 12.0)
    cam2_to_cam1[:3, 3] = torch.tensor([0.6, 0.05, 0.1], dtype=torch.float64)
    depth1 = ray_depth(K1, torch.eye(4, dtype=torch.float64), height, width)
    depth2 = ray_depth(K2, cam2_to_cam1, height, width)
    pts1_in_1 = depth_to_points(depth1[None], K1[None])[0]
    pts2_in_2 = depth_to_points(depth2[None], K2[None])[0]
    pts2_in_1 = transform_points(cam2_to_cam1[None], pts2_in_2[None])[0]
    return TwoViewScene(K1, K2, cam2_to_cam1, depth1, depth2, pts1_in_1, pts2_in_1, pts2_in_2)


def exact_matches(scene: TwoViewScene, stride: int = 3) -> tuple[Tensor, Tensor]:
    """Pixels of image 1 on a grid and where their surface points project in image 2, where image 2 sees
    them unoccluded and inside."""
    height, width = scene.depth1.shape
    ys, xs = torch.meshgrid(torch.arange(2, height - 2, stride), torch.arange(2, width - 2, stride), indexing="ij")
    xy1 = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)
    points = scene.pts1_in_1[xy1[:, 1], xy1[:, 0]]  # (M, 3) in camera 1
    in_2 = transform_points(invert_pose(scene.cam2_to_cam1[None]), points[None])[0]
    projected = in_2 @ scene.K2.T
    xy2 = projected[:, :2] / projected[:, 2:]
    pixel = xy2.round().long()
    inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < width) & (pixel[:, 1] >= 0) & (pixel[:, 1] < height)
    pixel = pixel.clamp(torch.tensor([0, 0]), torch.tensor([width - 1, height - 1]))
    seen = inside & ((scene.depth2[pixel[:, 1], pixel[:, 0]] - in_2[:, 2]).abs() < 0.02 * in_2[:, 2])
    return xy1[seen].double(), xy2[seen]


def corrupt(pts3d: Tensor, generator: torch.Generator, depth_noise: float = 0.01, outliers: float = 0.05) -> Tensor:
    """(H, W, 3) points with Gaussian noise of std depth_noise x depth on each axis, and a fraction of
    `outliers` points moved to uniform random places in the points' bounding box."""
    noisy = pts3d + depth_noise * pts3d[..., 2:] * torch.randn(pts3d.shape, generator=generator, dtype=pts3d.dtype)
    flat = noisy.reshape(-1, 3)
    count = int(round(outliers * flat.shape[0]))
    index = torch.randperm(flat.shape[0], generator=generator)[:count]
    low, high = flat.min(0).values, flat.max(0).values
    flat[index] = low + (high - low) * torch.rand(count, 3, generator=generator, dtype=pts3d.dtype)
    return noisy


def noisy_depth_points(
    depth: Tensor, K: Tensor, generator: torch.Generator, cam2world: Tensor | None = None, outliers: float = 0.05
) -> Tensor:
    """(H, W, 3) pointmap of a depth map with 1 % multiplicative depth noise (along the rays) and a fraction
    of `outliers` points thrown anywhere; moved by `cam2world` if given."""
    noisy = depth * (1 + 0.01 * torch.randn(depth.shape, generator=generator, dtype=depth.dtype))
    pts = depth_to_points(noisy[None], K[None])
    if cam2world is not None:
        pts = transform_points(cam2world[None], pts)
    return corrupt(pts[0], generator, depth_noise=0.0, outliers=outliers)


def rotation_error_deg(R_estimate: Tensor, R_true: Tensor) -> float:
    """Angle of R_estimate^T R_true in degrees."""
    cos = ((R_estimate.transpose(-1, -2) @ R_true).diagonal().sum() - 1) / 2
    return math.degrees(math.acos(float(cos.clamp(-1, 1))))


def angle_between_deg(u: Tensor, v: Tensor) -> float:
    """Angle between two 3-vectors in degrees."""
    cos = (u @ v) / (u.norm() * v.norm())
    return math.degrees(math.acos(float(cos.clamp(-1, 1))))
