"""Training pairs: ground-truth pointmaps in view 1's frame, and batches of them at one resolution."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pointmap.data.sample import ViewBatch, ViewSample
from pointmap.geometry.cameras import depth_to_points, invert_pose, transform_points


def pair_pointmaps(view1: ViewSample, view2: ViewSample) -> tuple[Tensor, Tensor]:
    """Ground-truth pointmaps of both views in view 1's camera frame (the network's targets).

    Returns:
        (pts1_in_1 (H1, W1, 3), pts2_in_1 (H2, W2, 3)); pixels without depth carry meaningless
        points, so read both with the views' `valid` masks.
    """
    pts1_in_1 = depth_to_points(view1.depth[None], view1.intrinsics[None])[0]
    pts2_in_2 = depth_to_points(view2.depth[None], view2.intrinsics[None])
    cam2_to_cam1 = invert_pose(view1.cam2world[None]) @ view2.cam2world[None]
    pts2_in_1 = transform_points(cam2_to_cam1, pts2_in_2)[0]
    return pts1_in_1, pts2_in_1


@dataclass
class PairBatch:
    """A batch of B training pairs at one resolution (H, W); all tensors on one device."""

    img1: Tensor  # (B, 3, H, W) in [-1, 1]
    img2: Tensor  # (B, 3, H, W)
    pts1: Tensor  # (B, H, W, 3) view 1 in view 1's frame
    pts2: Tensor  # (B, H, W, 3) view 2 in view 1's frame
    valid1: Tensor  # (B, H, W) bool
    valid2: Tensor  # (B, H, W) bool
    intrinsics1: Tensor  # (B, 3, 3)
    intrinsics2: Tensor  # (B, 3, 3)
    cam2world1: Tensor  # (B, 4, 4)
    cam2world2: Tensor  # (B, 4, 4)
    overlap: Tensor  # (B,) co-visible share from the dataset, NaN where unknown

    def __len__(self) -> int:
        return self.img1.shape[0]

    @staticmethod
    def from_views(views: ViewBatch, overlap: Tensor) -> PairBatch:
        """B pairs from their 2B views at one size (the B first views, then the B second views) and
        their (B,) overlaps, with the ground-truth pointmaps in each first view's camera frame."""
        count = len(views) // 2
        pts_in_own = depth_to_points(views.depth, views.intrinsics)  # (2B, H, W, 3)
        cam2_to_cam1 = invert_pose(views.cam2world[:count]) @ views.cam2world[count:]
        return PairBatch(
            img1=views.image[:count], img2=views.image[count:],
            pts1=pts_in_own[:count], pts2=transform_points(cam2_to_cam1, pts_in_own[count:]),
            valid1=views.valid[:count], valid2=views.valid[count:],
            intrinsics1=views.intrinsics[:count], intrinsics2=views.intrinsics[count:],
            cam2world1=views.cam2world[:count], cam2world2=views.cam2world[count:],
            overlap=overlap,
        )


def stack_pairs(pairs: list[tuple[ViewSample, ViewSample, float]]) -> PairBatch:
    """Stack pairs that already share one resolution into a PairBatch with their GT pointmaps."""
    if not pairs:
        raise ValueError("stack_pairs got no pairs; pass at least one (view1, view2, overlap)")
    shapes = {tuple(view.image.shape) for v1, v2, _ in pairs for view in (v1, v2)}
    if len(shapes) != 1:
        raise ValueError(f"stack_pairs got images of shapes {sorted(shapes)}; crop them to one size first")
    views = ViewBatch.stack([v1 for v1, _, _ in pairs] + [v2 for _, v2, _ in pairs])
    return PairBatch.from_views(views, torch.tensor([float("nan") if o is None else float(o) for _, _, o in pairs]))
