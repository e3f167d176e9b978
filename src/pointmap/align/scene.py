"""The result of global alignment: cameras, depth maps and world points of every image."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pointmap.images import View


@dataclass
class Scene:
    """A reconstructed scene of N images (OpenCV camera axes, camera-to-world poses).

    Attributes:
        poses: (N, 4, 4) cam2world.
        intrinsics: (N, 3, 3) K in processed-image pixels.
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
