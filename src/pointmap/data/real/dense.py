"""Depth maps of an SfM scene: plane-sweep stereo per image, the multi-view consistency filter, and the
sparse SfM depths where stereo keeps nothing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from pointmap.data.real.config import StereoConfig
from pointmap.data.real.consistency import consistency_counts, relative_pose
from pointmap.data.real.sfm_state import SfmScene
from pointmap.data.real.stereo import (
    depth_range,
    median_depths,
    plane_sweep,
    select_neighbours,
    sparse_depth_map,
    to_grey,
)


@dataclass
class SceneDepths:
    """Per-image depth maps of an SfM scene, on the stereo device.

    Attributes:
        depth: N (H_i, W_i) float32 z-depth, 0 where unknown.
        dense: N (H_i, W_i) bool, True where the depth is a multi-view consistent stereo depth
            (elsewhere a nonzero depth is an SfM point's).
        neighbours: N lists of the source views used for each image.
    """

    depth: list[Tensor]
    dense: list[Tensor]
    neighbours: list[list[int]]


def scene_depths(sfm: SfmScene, config: StereoConfig, device=None, verbose: bool = True) -> SceneDepths:
    """Stereo depth for every registered image, kept where consistent with >= config.min_consistent
    neighbours, completed by the sparse SfM depths (config.sparse_fallback).

    Args:
        sfm: the undistorted SfM scene.
        config: stereo options.
        device: where the sweep runs (a CUDA device for real photo sets).
        verbose: show a progress bar.
    """
    neighbours = select_neighbours(
        sfm.covisibility, sfm.cam2world, median_depths(sfm.sparse_depth), config.num_neighbours, config.min_angle_deg
    )
    greys = [to_grey(image, device) for image in sfm.images]
    raw = []
    for i in tqdm(range(sfm.num_registered), desc="plane sweep", unit="image", disable=not verbose):
        if not neighbours[i] or not (sfm.sparse_depth[i] > 0).any():
            raw.append(torch.zeros_like(greys[i]))
            continue
        near, far = depth_range(sfm.sparse_depth[i], config.depth_margin)
        source_from_ref = torch.stack([relative_pose(sfm.cam2world[i], sfm.cam2world[j]) for j in neighbours[i]])
        depth, _ = plane_sweep(
            greys[i], sfm.intrinsics[i], [greys[j] for j in neighbours[i]], sfm.intrinsics[neighbours[i]],
            source_from_ref, near, far, config,
        )
        raw.append(depth)
    counts = consistency_counts(
        raw, sfm.intrinsics, sfm.cam2world, neighbours, config.reprojection_px, config.depth_tolerance
    )
    depths, dense = [], []
    for i, (depth, count) in enumerate(zip(raw, counts, strict=True)):
        keep = (count >= config.min_consistent) & (depth > 0)
        depth = torch.where(keep, depth, torch.zeros_like(depth))
        if config.sparse_fallback:
            height, width = depth.shape
            sparse = sparse_depth_map(sfm.sparse_xy[i].to(device), sfm.sparse_depth[i].to(device), height, width)
            depth = torch.where(keep, depth, sparse)
        depths.append(depth)
        dense.append(keep)
    return SceneDepths(depth=depths, dense=dense, neighbours=neighbours)
