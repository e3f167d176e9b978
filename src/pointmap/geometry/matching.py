"""Pixel correspondences between two pointmaps in one frame, as reciprocal nearest neighbours in 3D."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from scipy.spatial import cKDTree
from torch import Tensor


def nearest_neighbour_search(
    points: Tensor, method: Literal["auto", "kdtree", "brute"] = "auto", chunk_size: int = 4096
) -> Callable[[Tensor], Tensor]:
    """A function mapping (Q, 3) queries to the (Q,) index of their nearest point among `points` (N, 3).

    "kdtree": a scipy kd-tree, built once (on the CPU). "brute": exact search by chunks of `chunk_size`
    queries with torch.cdist on the points' device, a chunk holding chunk_size x N distances. "auto"
    picks the kd-tree for CPU tensors and brute force on accelerators.
    """
    if method not in ("auto", "kdtree", "brute"):
        raise ValueError(f"method={method!r}: pick 'auto', 'kdtree' or 'brute'")
    if method == "kdtree" or (method == "auto" and points.device.type == "cpu"):
        tree = cKDTree(points.detach().double().cpu().numpy())

        def query_tree(queries: Tensor) -> Tensor:
            _, index = tree.query(queries.detach().double().cpu().numpy(), k=1)
            return torch.from_numpy(index).long().to(points.device)

        return query_tree

    def query_brute_force(queries: Tensor) -> Tensor:
        # The matmul form of cdist loses digits to cancellation in float32 and picks wrong neighbours.
        found = [
            torch.cdist(part, points, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=-1)
            for part in queries.split(chunk_size)
        ]
        return torch.cat(found) if found else torch.zeros(0, dtype=torch.long, device=points.device)

    return query_brute_force


def reciprocal_matches(
    pts1: Tensor,
    pts2: Tensor,
    conf1: Tensor | None = None,
    conf2: Tensor | None = None,
    min_conf: float = 0.0,
    subsample: int = 8,
    max_iterations: int = 10,
) -> tuple[Tensor, Tensor]:
    """Pixels of two pointmaps whose 3D points are each other's nearest neighbour.

    Starting from every `subsample`-th pixel (both axes) of image 1, each start point hops to its nearest
    neighbour in image 2 and back until it returns to itself (a reciprocal pair) or `max_iterations` pass.
    Every point of both images is searched, so matches are at full resolution; only the starts are sparse.

    Args:
        pts1: (H1, W1, 3) image 1's points.
        pts2: (H2, W2, 3) image 2's points in the same frame (e.g. both from pair (1, 2)).
        conf1, conf2: (H1, W1), (H2, W2) confidences; pixels with conf <= min_conf are left out.
        min_conf: confidence threshold (DUSt3R confidences are >= 1; 3 is the official demo's default).
        subsample: stride of the start grid in image 1.
        max_iterations: hops at most per start point.
    Returns:
        matches1 (M, 2), matches2 (M, 2): pixel (x, y) long tensors in images 1 and 2, on pts1's device,
        ordered by matches1's raster index.
    """
    if pts1.ndim != 3 or pts2.ndim != 3 or pts1.shape[-1] != 3 or pts2.shape[-1] != 3:
        raise ValueError(f"pts1 {tuple(pts1.shape)}, pts2 {tuple(pts2.shape)}: pass two (H, W, 3) pointmaps")
    if subsample < 1:
        raise ValueError(f"subsample={subsample}: pass a stride >= 1")
    device = pts1.device
    valid1 = _valid(pts1, conf1, min_conf).reshape(-1).nonzero()[:, 0]
    valid2 = _valid(pts2, conf2, min_conf).reshape(-1).nonzero()[:, 0]
    empty = torch.zeros(0, 2, dtype=torch.long, device=device)
    if len(valid1) == 0 or len(valid2) == 0:
        return empty, empty
    points1 = pts1.reshape(-1, 3)[valid1].float()
    points2 = pts2.reshape(-1, 3)[valid2].float()
    nearest_in_1 = nearest_neighbour_search(points1)
    nearest_in_2 = nearest_neighbour_search(points2)

    height1, width1 = pts1.shape[:2]
    position1 = torch.full((height1 * width1,), -1, dtype=torch.long, device=device)
    position1[valid1] = torch.arange(len(valid1), device=device)
    rows = torch.arange(0, height1, subsample, device=device)
    cols = torch.arange(0, width1, subsample, device=device)
    starts = position1[(rows[:, None] * width1 + cols[None, :]).reshape(-1)]
    current = starts[starts >= 0]

    found1, found2 = [], []
    for _ in range(max_iterations):
        if len(current) == 0:
            break
        hop2 = nearest_in_2(points1[current]).to(device)
        back1 = nearest_in_1(points2[hop2]).to(device)
        settled = back1 == current
        found1.append(current[settled])
        found2.append(hop2[settled])
        current = torch.unique(back1[~settled])
    if not found1:
        return empty, empty
    # A point may settle twice (reached again from another start); its partner is the same each time.
    index1, first = _unique_first(torch.cat(found1))
    index2 = torch.cat(found2)[first]
    return _to_xy(valid1[index1], pts1.shape[1]), _to_xy(valid2[index2], pts2.shape[1])


def _valid(pts: Tensor, conf: Tensor | None, min_conf: float) -> Tensor:
    """(H, W) finite points above the confidence threshold."""
    valid = torch.isfinite(pts).all(-1)
    if conf is not None:
        valid &= conf > min_conf
    return valid


def _unique_first(values: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted unique values and the position of the first occurrence of each."""
    unique, inverse = torch.unique(values, return_inverse=True)
    positions = torch.arange(len(values), device=values.device)
    first = torch.full((len(unique),), len(values), dtype=torch.long, device=values.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first


def _to_xy(flat_index: Tensor, width: int) -> Tensor:
    """(M,) raster indices -> (M, 2) pixel (x, y)."""
    return torch.stack([flat_index % width, flat_index // width], dim=-1)
