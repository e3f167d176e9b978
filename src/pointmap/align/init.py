"""First cameras and depths: a maximum spanning tree of the pair graph, each tree edge placed by Procrustes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree, shortest_path
from torch import Tensor

from pointmap.align.samples import EdgeSamples
from pointmap.align.state import CameraState, KnownCameras
from pointmap.geometry.focal import estimate_focal
from pointmap.geometry.procrustes import nearest_rotation, weighted_procrustes


def edge_scores(samples: EdgeSamples) -> Tensor:
    """(E,) mean confidence of view i times that of view j, over the grid samples."""
    used = samples.weights > 0
    mean_conf = (samples.conf * used).sum(-1) / used.sum(-1).clamp_min(1)  # (E, 2)
    return mean_conf[:, 0] * mean_conf[:, 1]


def spanning_tree(samples: EdgeSamples, scores: Tensor) -> tuple[int, list[list[tuple[int, int, int]]]]:
    """Maximum spanning tree over pair scores, rooted at its most central image.

    Returns:
        root image, and the tree edges level by level from the root: (parent, child, edge index), where the
        edge is the better-scored direction of the pair.
    """
    num_images = len(samples.shapes)
    best: dict[tuple[int, int], int] = {}
    scores_list = scores.tolist()
    for e, (i, j) in enumerate(samples.edges.tolist()):
        if i == j:
            continue
        key = (min(i, j), max(i, j))
        if key not in best or scores_list[e] > scores_list[best[key]]:
            best[key] = e
    pairs = list(best)
    if not pairs:
        return 0, []
    # The MST minimises, and scipy drops zero weights: turn the best score into the smallest positive weight.
    top = max(scores_list[e] for e in best.values())
    weight = [top + 1.0 - scores_list[best[p]] for p in pairs]
    rows, cols = zip(*pairs, strict=True)
    graph = coo_matrix((weight, (rows, cols)), shape=(num_images, num_images)).tocsr()
    tree = minimum_spanning_tree(graph)
    hops = shortest_path(tree, directed=False, unweighted=True)
    root = int(np.argmin(hops.max(1)))
    order, parents = breadth_first_order(tree, root, directed=False)
    levels: list[list[tuple[int, int, int]]] = []
    for child in order[1:]:
        parent = int(parents[child])
        level = int(hops[root, child]) - 1
        if level == len(levels):
            levels.append([])
        levels[level].append((parent, int(child), best[(min(parent, child), max(parent, child))]))
    return root, levels


def self_frame_edges(samples: EdgeSamples) -> Tensor:
    """(N,) for each image, the edge (image, *) whose prediction of the image is the most confident."""
    num_images = len(samples.shapes)
    used = samples.weights[:, 0] > 0
    mean_conf = (samples.conf[:, 0] * used).sum(-1) / used.sum(-1).clamp_min(1)
    first = samples.edges[:, 0]
    best_conf = torch.full((num_images,), -1.0, device=first.device).scatter_reduce(0, first, mean_conf, "amax")
    is_best = mean_conf == best_conf[first]
    edge_index = torch.arange(len(first), device=first.device)
    best = torch.full((num_images,), -1, device=first.device).scatter_reduce(
        0, first[is_best], edge_index[is_best], "amax"
    )
    missing = (best < 0).nonzero()[:, 0].tolist()
    if missing:
        raise ValueError(
            f"images {missing} are never the first image of an edge, so no prediction is in their own frame: "
            "pass symmetrised pairs (both (i, j) and (j, i), as make_pairs does)"
        )
    return best


def grid_focals(samples: EdgeSamples, self_pts: Tensor, self_weights: Tensor, pp: Tensor, aspect: Tensor) -> Tensor:
    """(N,) fx of each image's self-frame grid pointmap (Weiszfeld), in full-resolution pixels.

    Args:
        self_pts: (N, M, 3) grid points in each image's own frame; self_weights: (N, M).
        pp: (N, 2) principal points; aspect: (N,) fy / fx.
    """
    focal = torch.empty(len(samples.shapes), device=self_pts.device)
    by_grid: dict[tuple[int, int], list[int]] = {}
    for k in range(len(samples.shapes)):
        by_grid.setdefault(samples.grid_shape(k), []).append(k)
    for (h, w), images in by_grid.items():
        idx = torch.tensor(images, device=self_pts.device)
        # y - cy = fx * aspect * Y / Z: stretching Y by the aspect leaves a square-pixel camera of focal fx.
        stretch = torch.stack([torch.ones_like(aspect[idx]), aspect[idx], torch.ones_like(aspect[idx])], -1)
        pts = (self_pts[idx, : h * w] * stretch[:, None]).reshape(-1, h, w, 3)
        conf = self_weights[idx, : h * w].reshape(-1, h, w)
        # A grid pixel (u, v) sits at offset + stride * (u, v): the grid is the image seen with focal f / stride.
        grid_pp = (pp[idx] - samples.offset) / samples.stride
        focal[idx] = samples.stride * estimate_focal(pts, conf, grid_pp)
    return focal


def fallback_focals(focal: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
    """(N,) `focal` with non-positive or non-finite entries replaced by a 60-degree field of view, with a warning.

    The Weiszfeld estimate is negative or infinite for pointmaps no pinhole camera sees (mirrored, flat,
    behind the camera: an untrained network's); the log-focal steps of the optimisation keep a focal's sign,
    so such a start would end in a camera no exporter can write. 60 degrees along the longer side is
    DUSt3R's focal unit, a common photo's field of view.
    """
    bad = ~(torch.isfinite(focal) & (focal > 0))
    if not bad.any():
        return focal
    longer = torch.tensor([max(h, w) for h, w in shapes], device=focal.device, dtype=focal.dtype)
    default = longer / (2 * math.tan(math.radians(30)))
    images = bad.nonzero()[:, 0].tolist()
    warnings.warn(
        f"images {images}: their own pointmaps give no positive focal length ({focal[bad].tolist()} px); starting "
        "them at a 60-degree field of view. Check that the model is trained, or pass known focals or intrinsics",
        stacklevel=3,
    )
    return torch.where(bad, default, focal)


def initialize(samples: EdgeSamples, known: KnownCameras, default_pp: Tensor) -> CameraState:
    """Cameras and grid depths of every image from a spanning tree of pairwise Procrustes alignments.

    Unknown principal points start at `default_pp` (N, 2) (the original photos' centres); unknown focals
    are the Weiszfeld estimate of each image's own pointmap.

    The root camera is the world frame; each tree edge (parent, child) gets the similarity taking its
    prediction of the parent onto the parent's world points, which places its prediction of the child;
    the child's camera is the similarity taking its self-frame prediction onto those points.
    Known poses then fix the gauge (see `align_to_known_poses`).
    """
    device = samples.pts.device
    num_images = len(samples.shapes)
    scores = edge_scores(samples)
    self_edges = self_frame_edges(samples)
    self_pts = samples.pts[self_edges, 0]  # (N, M, 3)
    self_weights = samples.weights[self_edges, 0]  # (N, M)
    pp = torch.where(known.has_pp[:, None], known.pp, default_pp.to(device))
    focal = fallback_focals(grid_focals(samples, self_pts, self_weights, pp, known.aspect), samples.shapes)
    focal = torch.where(known.has_focal, known.focal, focal)

    state = CameraState(
        rotation=torch.eye(3, device=device).repeat(num_images, 1, 1),
        centre=torch.zeros(num_images, 3, device=device),
        focal=focal,
        pp=pp,
        depth=self_pts[..., 2].clone(),
        aspect=known.aspect,
    )
    _, levels = spanning_tree(samples, scores)
    world = state.world_points(samples.pixels)
    for level in levels:
        parent, child, edge = (torch.tensor(x, device=device) for x in zip(*level, strict=True))
        parent_side = (samples.edges[edge, 0] != parent).long()
        parent_pts = samples.pts[edge, parent_side]
        parent_weights = samples.weights[edge, parent_side]
        scale, rotation, translation = weighted_procrustes(parent_pts, world[parent], parent_weights)
        child_pts = samples.pts[edge, 1 - parent_side]
        child_world = scale[:, None, None] * child_pts @ rotation.transpose(1, 2) + translation[:, None]
        child_weights = samples.weights[edge, 1 - parent_side] * self_weights[child]
        scale, rotation, translation = weighted_procrustes(self_pts[child], child_world, child_weights)
        state.rotation[child] = rotation
        state.centre[child] = translation
        state.depth[child] = scale[:, None] * self_pts[child, :, 2]
        world = state.world_points(samples.pixels)
    if known.has_pose.any():
        align_to_known_poses(state, known)
    return state


def similarity_to_known(state: CameraState, known: KnownCameras) -> tuple[Tensor, Tensor, Tensor]:
    """The world similarity (scale, rotation (3, 3), translation (3,)) best matching the known poses.

    The rotation is the chordal mean of known R_k @ R_k^T; scale and translation fit the camera centres
    (scale 1 when fewer than two known centres are apart, e.g. a single known pose).
    """
    has_pose = known.has_pose
    poses = known.poses[has_pose]
    est_rot, est_centre = state.rotation[has_pose], state.centre[has_pose]
    rotation = nearest_rotation((poses[:, :3, :3] @ est_rot.transpose(1, 2)).sum(0)).to(state.rotation.dtype)
    known_centre = poses[:, :3, 3]
    est_offsets = (est_centre - est_centre.mean(0)) @ rotation.T
    known_offsets = known_centre - known_centre.mean(0)
    spread = (est_offsets**2).sum()
    apart = spread > 1e-12 * (1 + (est_centre**2).sum()) and (known_offsets**2).sum() > 0
    scale = (known_offsets * est_offsets).sum() / spread if apart else torch.ones((), device=spread.device)
    return scale, rotation, known_centre.mean(0) - scale * est_centre.mean(0) @ rotation.T


def move_world(state: CameraState, scale: Tensor, rotation: Tensor, translation: Tensor) -> None:
    """Apply x -> scale * rotation @ x + translation to the world (cameras and depths) in place."""
    state.rotation = rotation @ state.rotation
    state.centre = scale * state.centre @ rotation.T + translation
    state.depth = scale * state.depth


def align_to_known_poses(state: CameraState, known: KnownCameras) -> None:
    """Move the whole reconstruction onto the known poses (best similarity), then set them exactly."""
    move_world(state, *similarity_to_known(state, known))
    has_pose = known.has_pose
    state.rotation[has_pose] = known.poses[has_pose, :3, :3]
    state.centre[has_pose] = known.poses[has_pose, :3, 3]
