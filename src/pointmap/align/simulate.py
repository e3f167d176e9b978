"""Simulated pairwise predictions of known cameras and depth maps, the ground truth of alignment tests."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pointmap.geometry.cameras import depth_to_points, invert_pose
from pointmap.inference import PairPredictions


@dataclass(frozen=True)
class PredictionNoise:
    """How simulated predictions depart from the truth (all zero: exact up to a similarity)."""

    scale_spread: float = 0.0
    """Each edge's unknown scale is exp(u), u uniform in [-scale_spread, scale_spread]."""
    depth_noise: float = 0.0
    """Relative standard deviation of each point's depth along its own camera ray."""
    warp: float = 0.0
    """Amplitude of a slow smooth displacement of each edge's points, relative to view i's median depth."""
    outliers: float = 0.0
    """Fraction of pixels given a wrong depth (x0.6 to x1.4 along the right ray) and a low confidence."""


def circle_cameras(num_cameras: int, radius: float = 2.0, generator: torch.Generator | None = None) -> Tensor:
    """(N, 4, 4) cam2world of cameras on a horizontal circle looking at its centre (y down), slightly jittered."""
    angles = torch.arange(num_cameras, dtype=torch.float64) * 2 * math.pi / num_cameras
    jitter = 0.05 * torch.randn(num_cameras, 3, generator=generator, dtype=torch.float64)
    centre = torch.stack([radius * torch.sin(angles), jitter[:, 0], -radius * torch.cos(angles)], -1)
    forward = -centre + jitter * radius
    forward = forward / forward.norm(dim=-1, keepdim=True)
    down = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(forward)
    right = torch.linalg.cross(down, forward)
    right = right / right.norm(dim=-1, keepdim=True)
    down = torch.linalg.cross(forward, right)
    poses = torch.eye(4, dtype=torch.float64).repeat(num_cameras, 1, 1)
    poses[:, :3, :3] = torch.stack([right, down, forward], -1)
    poses[:, :3, 3] = centre
    return poses.float()


def smooth_depths(
    num_images: int, height: int, width: int, near: float = 1.5, far: float = 3.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(N, H, W) smooth random depth maps in [near, far] (bilinear upsampling of a coarse random grid)."""
    coarse = near + (far - near) * torch.rand(num_images, 1, 4, 5, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[
        :, 0
    ].clamp(near, far)


def simulate_predictions(
    cam2world: Tensor,
    intrinsics: Tensor,
    depths: Tensor,
    edges: list[tuple[int, int]],
    noise: PredictionNoise | None = None,
    generator: torch.Generator | None = None,
    storage_dtype: torch.dtype = torch.float32,
    storage_device: torch.device | str = "cpu",
) -> PairPredictions:
    """What a perfect-but-for-`noise` network would predict for each edge (i, j).

    pts_i: view i's points in camera i's frame; pts_j: view j's points in camera i's frame; both times the
    edge's unknown scale. Computed on the device of `depths`, one edge at a time, and stored as
    `storage_dtype` on `storage_device`.

    Args:
        cam2world: (N, 4, 4).
        intrinsics: (N, 3, 3).
        depths: (N, H, W) z-depth, 0 where unknown.
        generator: a torch.Generator on the device of `depths`.
    """
    noise = noise or PredictionNoise()
    device = depths.device
    height, width = depths.shape[-2:]
    cam2world = cam2world.to(device).float()
    world2cam = invert_pose(cam2world)
    pts_own = depth_to_points(depths.float(), intrinsics.to(device).float())  # (N, H, W, 3) own frame
    median_depth = depths.flatten(1).median(-1).values

    def noisy_view(k: int) -> tuple[Tensor, Tensor]:
        factor = 1 + noise.depth_noise * torch.randn(height, width, generator=generator, device=device)
        outlier = torch.rand(height, width, generator=generator, device=device) < noise.outliers
        factor = torch.where(outlier, 0.6 + 0.8 * torch.rand(height, width, generator=generator, device=device), factor)
        conf = 1 + torch.exp(1.5 + 0.5 * torch.randn(height, width, generator=generator, device=device))
        conf = torch.where(outlier, 1 + 0.3 * torch.rand(height, width, generator=generator, device=device), conf)
        # No ground truth (e.g. sky): the network still predicts something there, with the lowest confidence.
        conf = torch.where(depths[k] > 0, conf, 1)
        return pts_own[k] * factor[..., None], conf

    num_edges = len(edges)
    storage = {
        name: torch.empty(num_edges, height, width, *tail, dtype=storage_dtype, device=storage_device)
        for name, tail in (("pts_i", (3,)), ("pts_j", (3,)), ("conf_i", ()), ("conf_j", ()))
    }
    for e, (i, j) in enumerate(edges):
        pts_i, conf_i = noisy_view(i)
        pts_j, conf_j = noisy_view(j)
        j_to_i = world2cam[i] @ cam2world[j]
        pts_j = pts_j @ j_to_i[:3, :3].T + j_to_i[:3, 3]
        scale = math.exp(noise.scale_spread * (2 * torch.rand(1, generator=generator, device=device).item() - 1))
        if noise.warp > 0:
            # A slow sinusoidal displacement field over the edge's frame, wavelength ~ 6 median depths.
            direction = torch.randn(3, 3, generator=generator, device=device)
            phase = 2 * math.pi * torch.rand(3, generator=generator, device=device)
            unit = median_depth[i].item()
            amplitude = noise.warp * unit

            pts_i = pts_i + amplitude * torch.sin(pts_i @ direction.T / unit + phase)
            pts_j = pts_j + amplitude * torch.sin(pts_j @ direction.T / unit + phase)
        for name, value in (("pts_i", scale * pts_i), ("pts_j", scale * pts_j), ("conf_i", conf_i), ("conf_j", conf_j)):
            storage[name][e] = value.to(storage_device, storage_dtype)
    return PairPredictions(edges=list(edges), **storage)
