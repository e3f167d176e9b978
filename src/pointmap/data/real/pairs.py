"""Training pairs of a reconstructed scene with their overlap (docs/dataset-format.md)."""

from __future__ import annotations

from torch import Tensor

from pointmap.data.real.consistency import pair_overlap


def list_pairs(
    depths: list[Tensor], intrinsics: Tensor, cam2world: Tensor, covisibility: Tensor,
    min_overlap: float, reprojection_px: float, depth_tolerance: float,
) -> list[tuple[int, int, float]]:
    """Pairs (i, j), i < j, that see each other: both overlaps i -> j and j -> i are >= min_overlap.

    Only pairs sharing SfM points are tried (the rest cannot overlap much), so large scenes stay cheap.

    Args:
        depths: N (H_i, W_i) z-depth maps, 0 where unknown.
        intrinsics: (N, 3, 3); cam2world: (N, 4, 4); covisibility: (N, N) shared SfM points.
    Returns:
        (i, j, overlap i -> j): the share of i's valid pixels whose depth j confirms.
    """
    pairs = []
    count = len(depths)
    for i in range(count):
        for j in range(i + 1, count):
            if covisibility[i, j] <= 0:
                continue
            forward = pair_overlap(
                depths[i], intrinsics[i], cam2world[i], depths[j], intrinsics[j], cam2world[j],
                reprojection_px, depth_tolerance,
            )
            if forward < min_overlap:
                continue
            backward = pair_overlap(
                depths[j], intrinsics[j], cam2world[j], depths[i], intrinsics[i], cam2world[i],
                reprojection_px, depth_tolerance,
            )
            if backward >= min_overlap:
                pairs.append((i, j, forward))
    return pairs
