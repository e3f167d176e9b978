"""The unknowns of the alignment: per-image cameras and grid depths, and per-edge similarities."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CameraState:
    """Cameras and grid depths of N images (OpenCV axes, camera-to-world).

    Attributes:
        rotation: (N, 3, 3) camera-to-world rotation.
        centre: (N, 3) camera centre in the world.
        focal: (N,) horizontal focal length fx in pixels.
        pp: (N, 2) principal point (cx, cy) in pixels.
        depth: (N, M) z-depth at the grid samples.
        aspect: (N,) fy / fx, fixed: 1 for square pixels; the resize of the 224 rule makes processed
            pixels slightly non-square (see `geometry.cameras.focal_aspect`).
    """

    rotation: Tensor
    centre: Tensor
    focal: Tensor
    pp: Tensor
    depth: Tensor
    aspect: Tensor

    def focal_xy(self) -> Tensor:
        """(N, 2) focal lengths (fx, fy) in pixels."""
        return torch.stack([self.focal, self.focal * self.aspect], -1)

    def rays(self, pixels: Tensor) -> Tensor:
        """(N, M, 3) camera-frame rays (z = 1) through pixels (N, M, 2)."""
        xy = (pixels - self.pp[:, None]) / self.focal_xy()[:, None]
        return torch.cat([xy, torch.ones_like(xy[..., :1])], -1)

    def world_points(self, pixels: Tensor) -> Tensor:
        """(N, M, 3) world points of the grid depths along the rays through pixels (N, M, 2)."""
        cam_pts = self.depth[..., None] * self.rays(pixels)
        return cam_pts @ self.rotation.transpose(1, 2) + self.centre[:, None]

    def poses(self) -> Tensor:
        """(N, 4, 4) cam2world."""
        out = torch.zeros(len(self.focal), 4, 4, device=self.focal.device, dtype=self.focal.dtype)
        out[:, :3, :3] = self.rotation
        out[:, :3, 3] = self.centre
        out[:, 3, 3] = 1
        return out

    def intrinsics(self) -> Tensor:
        """(N, 3, 3) K."""
        out = torch.zeros(len(self.focal), 3, 3, device=self.focal.device, dtype=self.focal.dtype)
        out[:, 0, 0] = self.focal
        out[:, 1, 1] = self.focal * self.aspect
        out[:, :2, 2] = self.pp
        out[:, 2, 2] = 1
        return out


@dataclass
class EdgeSimilarities:
    """Per-edge similarity x -> scale * rotation @ x + translation, from edge frame (camera i) to world.

    Attributes:
        scale: (E,)
        rotation: (E, 3, 3)
        translation: (E, 3)
    """

    scale: Tensor
    rotation: Tensor
    translation: Tensor

    def moved(self, scale: Tensor, rotation: Tensor, translation: Tensor) -> EdgeSimilarities:
        """The similarities followed by the world similarity x -> scale * rotation @ x + translation."""
        return EdgeSimilarities(
            scale * self.scale, rotation @ self.rotation, scale * self.translation @ rotation.T + translation
        )

    def apply(self, pts: Tensor) -> Tensor:
        """(E, ..., 3) edge-frame points to the world."""
        flat = pts.reshape(len(self.scale), -1, 3)
        out = self.scale[:, None, None] * flat @ self.rotation.transpose(1, 2) + self.translation[:, None]
        return out.reshape(pts.shape)


@dataclass
class KnownCameras:
    """What the caller knows; NaN marks unknown entries, except in `aspect`, which is always set.

    Attributes:
        focal: (N,) fx, px.
        pp: (N, 2) px.
        poses: (N, 4, 4) cam2world.
        aspect: (N,) fy / fx, never optimised: from known intrinsics, else from the views' resize, else 1.
    """

    focal: Tensor
    pp: Tensor
    poses: Tensor
    aspect: Tensor

    def to(self, device: torch.device) -> KnownCameras:
        return KnownCameras(self.focal.to(device), self.pp.to(device), self.poses.to(device), self.aspect.to(device))

    @property
    def has_focal(self) -> Tensor:
        """(N,) bool."""
        return torch.isfinite(self.focal)

    @property
    def has_pp(self) -> Tensor:
        """(N,) bool."""
        return torch.isfinite(self.pp).all(-1)

    @property
    def has_pose(self) -> Tensor:
        """(N,) bool."""
        return torch.isfinite(self.poses).flatten(1).all(-1)
