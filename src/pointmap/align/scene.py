"""The result of global alignment: cameras, depth maps and world points of every image."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from pointmap.geometry.cameras import invert_pose
from pointmap.images import View


@dataclass
class Scene:
    """A reconstructed scene of N images (OpenCV camera axes, camera-to-world poses).

    Attributes:
        poses: (N, 4, 4) cam2world of the processed images; `photo_poses()` gives those of the photos as
            stored, which differ for photos turned before processing (`View.quarter_turns`).
        intrinsics: (N, 3, 3) K in processed-image pixels (pixel centres at integers, see
            `geometry.cameras`); fx and fy differ where the resize made processed pixels non-square.
            `original_intrinsics()` gives K in pixels of the photos as stored (the cameras of `photo_poses()`).
        depths: N tensors (H, W), z-depth in each camera.
        points: N tensors (H, W, 3) in the world frame.
        confidences: N tensors (H, W), >= 1.
        masks: N bool tensors (H, W): points kept (confident and seen consistently).
        colors: N tensors (H, W, 3) float in [0, 1], or None when the images are unknown.
        views: the N Views the scene was made from (paths and the map to original pixels), or None.
    """

    poses: torch.Tensor
    intrinsics: torch.Tensor
    depths: list[torch.Tensor]
    points: list[torch.Tensor]
    confidences: list[torch.Tensor]
    masks: list[torch.Tensor]
    colors: list[torch.Tensor] | None = None
    views: list[View] | None = None

    def __len__(self) -> int:
        return len(self.poses)

    def original_intrinsics(self) -> torch.Tensor:
        """(N, 3, 3) float64 K in pixels of the photos as stored, `view.to_original @ K` (K itself without views),
        turned back for photos turned before processing (`geometry.turns.unturn_intrinsics`): the cameras of
        `photo_poses`.

        Known intrinsics come back as given, up to float32 rounding (1e-4 px at f = 500); with unknown
        ones, fx = fy (square photo pixels) and the principal point is the photo's centre
        ((W - 1) / 2, (H - 1) / 2) unless it was optimised.
        """
        from pointmap.geometry.turns import unturn_intrinsics

        intrinsics = self.intrinsics.detach().double().cpu()
        if self.views is None:
            return intrinsics
        original = [
            unturn_intrinsics(np.asarray(view.to_original) @ K.numpy(), *view.original_shape[::-1], view.quarter_turns)
            for view, K in zip(self.views, intrinsics, strict=True)
        ]
        return torch.from_numpy(np.stack(original))

    def photo_poses(self) -> torch.Tensor:
        """(N, 4, 4) float64 cam2world of the photos as stored: `poses`, rolled back about the optical axis for
        views whose photo was turned before processing (`View.quarter_turns`), as the exports write them."""
        from pointmap.geometry.turns import photo_roll

        poses = self.poses.detach().double().cpu()
        if self.views is None:
            return poses
        rolls = torch.from_numpy(np.stack([photo_roll(view.quarter_turns) for view in self.views]))
        return poses @ rolls

    def save(self, out_dir: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write every export (PLY, GLB, COLMAP, transforms.json, depth and confidence maps, cameras.json)."""
        from pointmap.export import save_scene  # exports import Scene: a module-level import would cycle

        return save_scene(self, out_dir, overwrite=overwrite)

    def to_colmap(self, folder: str | os.PathLike, max_points: int = 100_000) -> Path:
        """Write a COLMAP model, `folder`/sparse/0, in original-photo pixels."""
        from pointmap.export.colmap import write_colmap

        return write_colmap(self, folder, max_points=max_points)

    def show(self, port: int = 8080, block: bool = True):
        """Open the scene in a viser web viewer (needs `pip install pointmap[viewer]`)."""
        from pointmap.viewer import show_scene

        return show_scene(self, port=port, block=block)

    def clean(self, pairs: list[tuple[int, int]] | None = None, tolerance: float = 0.02) -> Scene:
        """A copy whose masks drop the points that another camera sees in front of its own surface.

        A point of view j that projects into camera i at a pixel whose kept depth is larger by more than
        the relative `tolerance`, where view i is more confident, would hide what camera i saw: it is a
        floater or a misplaced point of view j, and its mask is cleared (confidences are kept).

        Args:
            pairs: the (i, j) to test (either order tests both ways); None tests every pair of images.
            tolerance: relative depth margin.
        """
        num_images = len(self)
        neighbours: list[set[int]] = [set() for _ in range(num_images)]
        for i, j in pairs if pairs is not None else ((i, j) for i in range(num_images) for j in range(num_images)):
            if i != j:
                neighbours[i].add(j)
                neighbours[j].add(i)
        world2cam = invert_pose(self.poses)
        masks = [mask.clone() for mask in self.masks]
        for i in range(num_images):
            height, width = self.depths[i].shape
            trusted_depth = torch.where(self.masks[i], self.depths[i], torch.inf).reshape(-1)
            conf_i = self.confidences[i].reshape(-1)
            for j in sorted(neighbours[i]):
                cam_pts = self.points[j].reshape(-1, 3) @ world2cam[i, :3, :3].T + world2cam[i, :3, 3]
                z = cam_pts[:, 2]
                in_front = z > 0
                uv = (cam_pts @ self.intrinsics[i].T)[:, :2] / torch.where(in_front, z, 1)[:, None]
                col, row = uv.round().long().unbind(-1)
                inside = in_front & (col >= 0) & (col < width) & (row >= 0) & (row < height)
                pixel = torch.where(inside, row * width + col, 0)
                occludes = inside & (z < (1 - tolerance) * trusted_depth[pixel])
                occludes &= conf_i[pixel] > self.confidences[j].reshape(-1)
                masks[j] &= ~occludes.reshape(masks[j].shape)
        return replace(self, masks=masks)
