"""The training sample: one view of a scene with its ground-truth geometry."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ViewSample:
    """One posed view with ground-truth depth (OpenCV camera axes).

    Attributes:
        image: (3, H, W) float32 in [-1, 1].
        depth: (H, W) float32 z-depth in scene units; 0 where unknown.
        valid: (H, W) bool, True where `depth` is ground truth.
        intrinsics: (3, 3) float32 K in pixels of `image`.
        cam2world: (4, 4) float32 camera-to-world pose.
        source: where the view came from, e.g. "synthetic/room/seed=12/cam=3" or a file path.
    """

    image: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor
    intrinsics: torch.Tensor
    cam2world: torch.Tensor
    source: str
