"""Multi-view consistency of depth maps: forward-backward reprojection between two posed views.

A pixel of view i with depth d is carried into view j, j's depth is read at the pixel it lands on,
and that point is carried back into i: the depth is consistent with j when it comes back to within
`reprojection_px` of where it started, at a depth within `depth_tolerance` of d. MegaDepth keeps only
the depths consistent with enough neighbours; the pair overlap is the share consistent with the other view.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pointmap.geometry.cameras import depth_to_points, invert_pose, pixel_grid, project_points, transform_points


def relative_pose(cam2world_i: Tensor, cam2world_j: Tensor) -> Tensor:
    """(4, 4) rigid transform from camera i's frame to camera j's frame (float64)."""
    return invert_pose(cam2world_j.double()) @ cam2world_i.double()


def _sample_nearest(depth: Tensor, uv: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Depth at the nearest pixel of each (..., 2) uv: (values, pixel centres (..., 2), inside mask)."""
    height, width = depth.shape
    pixel = uv.round()
    inside = (pixel[..., 0] >= 0) & (pixel[..., 0] < width) & (pixel[..., 1] >= 0) & (pixel[..., 1] < height)
    col = pixel[..., 0].clamp(0, width - 1).long()
    row = pixel[..., 1].clamp(0, height - 1).long()
    values = torch.where(inside, depth[row, col], torch.zeros_like(uv[..., 0]))
    return values, pixel, inside


def consistent_with(
    depth_i: Tensor, K_i: Tensor, depth_j: Tensor, K_j: Tensor, j_from_i: Tensor,
    reprojection_px: float, depth_tolerance: float,
) -> Tensor:
    """(H_i, W_i) bool: pixels of view i whose depth view j confirms by forward-backward reprojection.

    Args:
        depth_i: (H_i, W_i) z-depth of view i, 0 where unknown; depth_j likewise for view j.
        K_i, K_j: (3, 3) intrinsics.
        j_from_i: (4, 4) rigid transform from camera i to camera j (relative_pose).
        reprojection_px: largest distance, in pixels of i, between a pixel and its round trip.
        depth_tolerance: largest relative difference between d_i and the round trip's depth.
    """
    dtype = depth_i.dtype
    j_from_i = j_from_i.to(depth_i.device, dtype)
    K_i, K_j = K_i.to(depth_i.device, dtype), K_j.to(depth_i.device, dtype)
    pts_in_j = transform_points(j_from_i[None], depth_to_points(depth_i[None], K_i[None]))[0]  # (H, W, 3)
    uv_j = project_points(pts_in_j[None], K_j[None])[0]
    depth_at_j, pixel_j, inside = _sample_nearest(depth_j, uv_j)
    # Back from the pixel centre of j with j's depth there, into camera i.
    back_xy = (pixel_j - K_j[:2, 2]) / K_j.diagonal()[:2] * depth_at_j[..., None]
    back_in_j = torch.cat([back_xy, depth_at_j[..., None]], -1)
    i_from_j = invert_pose(j_from_i.double()).to(dtype)
    back_in_i = transform_points(i_from_j[None], back_in_j[None])[0]
    uv_back = project_points(back_in_i[None], K_i[None])[0]
    xy_i = pixel_grid(*depth_i.shape, device=depth_i.device, dtype=dtype)
    error_px = (uv_back - xy_i).norm(dim=-1)
    error_depth = (back_in_i[..., 2] - depth_i).abs() / depth_i.clamp_min(1e-12)
    return (
        (depth_i > 0) & (pts_in_j[..., 2] > 0) & inside & (depth_at_j > 0) & (back_in_i[..., 2] > 0)
        & (error_px <= reprojection_px) & (error_depth <= depth_tolerance)
    )


def consistency_counts(
    depths: list[Tensor], intrinsics: Tensor, cam2world: Tensor, neighbours: list[list[int]],
    reprojection_px: float, depth_tolerance: float,
) -> list[Tensor]:
    """Per view, (H, W) number of its neighbours that confirm each pixel's depth.

    Args:
        depths: N (H_i, W_i) z-depth maps, 0 where unknown.
        intrinsics: (N, 3, 3); cam2world: (N, 4, 4).
        neighbours: N lists of neighbour indices (select_neighbours).
    """
    counts = []
    for i, depth_i in enumerate(depths):
        count = torch.zeros(depth_i.shape, dtype=torch.int32, device=depth_i.device)
        for j in neighbours[i]:
            count += consistent_with(
                depth_i, intrinsics[i], depths[j], intrinsics[j], relative_pose(cam2world[i], cam2world[j]),
                reprojection_px, depth_tolerance,
            ).int()
        counts.append(count)
    return counts


def pair_overlap(
    depth_i: Tensor, K_i: Tensor, cam2world_i: Tensor, depth_j: Tensor, K_j: Tensor, cam2world_j: Tensor,
    reprojection_px: float, depth_tolerance: float,
) -> float:
    """Share of view i's valid pixels whose depth view j confirms (docs/dataset-format.md's overlap)."""
    valid = int((depth_i > 0).sum())
    if valid == 0:
        return 0.0
    seen = consistent_with(
        depth_i, K_i, depth_j, K_j, relative_pose(cam2world_i, cam2world_j), reprojection_px, depth_tolerance
    )
    return int(seen.sum()) / valid
