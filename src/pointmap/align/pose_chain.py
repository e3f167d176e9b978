"""Cameras from feature matches alone: each matched pair's essential-matrix pose, chained along the pairs with the
most inliers, a start for the bundle adjustment (`bundle.refine_cameras`) that owes nothing to the network.

The adjustment's epipolar cost has more than one basin where the views are near-affine (narrow fields of view
around an object): started from the network's aligned cameras, where the network is far off (a smooth skull whose
back the bundled network places 90 deg wrong, benchmarks/real_pictures.py's skull set), it settles in a wrong one
although every neighbouring pair is matched. Each pair's essential matrix is already resolved by its points in
front of both cameras, so chaining the best-matched pairs starts the adjustment in the right basin.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree
from torch import Tensor

from pointmap.align.match_poses import MatchPoseConfig, essential_pose, normalised


def pair_poses(
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]], intrinsics: Tensor, config: MatchPoseConfig | None = None
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]]:
    """Each matched pair's essential-matrix pose: {(i, j): (R, t, inliers)} with x_j = R x_i + t, |t| = 1, for the
    pairs with `min_inliers` or more.

    Args:
        matches: {(i, j): (xy_i, xy_j)}, (M, 2) processed pixels of verified matches (`pipeline.repose`).
        intrinsics: (N, 3, 3) K in processed pixels, the ones the adjustment starts from.
    """
    config = config or MatchPoseConfig()
    K = intrinsics.double().cpu().numpy()
    relative = {}
    for (i, j), (xy_i, xy_j) in matches.items():
        found = essential_pose(
            normalised(xy_i.numpy(), K[i]), normalised(xy_j.numpy(), K[j]), config.threshold_px / K[i, 0, 0]
        )
        if found is not None and int(found[2].sum()) >= config.min_inliers:
            relative[(i, j)] = found[0], found[1], int(found[2].sum())
    return relative


def chained_poses(
    relative: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]],
    lengths: dict[tuple[int, int], float],
    poses: Tensor,
) -> Tensor | None:
    """(N, 4, 4) cam2world poses from the pairs' relative poses along the spanning tree of the most inliers, from
    the first camera of `poses`; each tree pair's baseline as long as `lengths` says (epipolar geometry has no
    lengths). None where the pairs do not link every camera.

    Args:
        relative: {(i, j): (R, t, inliers)}, x_j = R x_i + t with |t| = 1 (`pair_poses`).
        lengths: {(i, j): baseline length} of every pair of `relative`.
        poses: (N, 4, 4) cam2world cameras whose first pose is kept.
    """
    num = len(poses)
    if not relative:
        return None
    rows, cols = zip(*relative, strict=True)
    most = max(count for _, _, count in relative.values())
    weights = [most + 1 - count for _, _, count in relative.values()]  # fewer inliers, heavier edge
    tree = minimum_spanning_tree(coo_matrix((weights, (rows, cols)), shape=(num, num)))
    order, parent = breadth_first_order(tree, 0, directed=False)
    if len(order) != num:
        return None
    chained = poses.double().cpu().clone()
    for child in order[1:]:
        above = int(parent[child])
        if (above, child) in relative:
            R, t, _ = relative[(above, child)]
            length = lengths[(above, child)]
        else:  # x_above = R x_child + t, so x_child = R^T x_above - R^T t
            R, t, _ = relative[(child, above)]
            R, t = R.T, -R.T @ t
            length = lengths[(child, above)]
        rotation = chained[above, :3, :3].numpy() @ R.T  # the child's camera-to-world rotation
        centre = chained[above, :3, 3].numpy() + rotation @ (-t) * length  # -R^T t: its centre in `above`'s frame
        chained[child, :3, :3] = torch.from_numpy(rotation)
        chained[child, :3, 3] = torch.from_numpy(centre)
    return chained.to(poses.dtype)
