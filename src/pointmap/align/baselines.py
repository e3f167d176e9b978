"""Baseline lengths of matched pairs, from their triangulated matches and the views' depth maps.

Epipolar geometry gives each matched pair's baseline direction, not its length, and the bundle adjustment
(`bundle.refine_cameras`) holds each pair's length near a start by a weak prior. Where a stretch of cameras is
linked by a chain of neighbouring pairs only, those lengths decide where the cameras stand. Taken from the aligned
scene's cameras they are only as right as the network's poses: on the skull set of benchmarks/real_pictures.py,
whose back the network places 90 deg wrong, every camera's rotation came out within 5 deg of COLMAP's, yet a fifth of
the pairs' translation directions were 16-64 deg off (all right with COLMAP's lengths).

A pair's matches triangulated on its essential-matrix pose with a unit baseline have depths z in each view in
proportion to the true length L. A view's depth map D_v (the network's, aligned) has the right shape but a scale of
its own: true depth = exp(s_v) D_v. So each pair (i, j) gives
    log L = s_i + median log(D_i / z_i) = s_j + median log(D_j / z_j),
a measure of s_i - s_j. The view scales s follow by least squares over the pairs (Cauchy-reweighted, with a weak
prior s_v ~ 0 that sets the gauge and keeps the depth maps' own scale), and each length from both of its views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor

from pointmap.align.match_depths import inside_image, sample_bilinear, triangulated_depths


@dataclass(frozen=True)
class BaselineConfig:
    """How baseline lengths are measured."""

    min_angle_deg: float = 2.0
    """Matches whose rays meet at a smaller angle are left out (their depth is ill-defined)."""
    max_reprojection_px: float = 2.0
    """Matches that triangulate with a larger reprojection error in either view are left out (as
    `match_depths.DepthFitConfig` does)."""
    min_points: int = 20
    """Pairs with fewer usable matches get no length."""
    robust_scale: float = 0.1
    """Cauchy scale of the pairs' residuals in log length: disagreements of about 10 % count in full."""
    scale_prior: float = 0.01
    """Weight of the prior s_v ~ 0 on each view's log depth scale (weak: it sets the gauge, and the scale of views
    that no measured pair links)."""
    iterations: int = 5
    """Reweighted least-squares rounds."""


def _log_ratios(
    xy_i: np.ndarray, xy_j: np.ndarray, K_i: np.ndarray, K_j: np.ndarray, R: np.ndarray, t: np.ndarray,
    depth_i: Tensor, depth_j: Tensor, config: BaselineConfig,
) -> tuple[float, float] | None:
    """Median log(D / z) in view i and in view j over one pair's matches (M, 2) triangulated on x_j = R x_i + t
    with |t| = 1; None with fewer than `min_points` usable matches."""
    usable, z_i, z_j = triangulated_depths(xy_i, xy_j, K_i, K_j, R, t, config.min_angle_deg, config.max_reprojection_px)
    usable &= inside_image(xy_i, *depth_i.shape) & inside_image(xy_j, *depth_j.shape)
    if usable.sum() < config.min_points:
        return None
    network_i = sample_bilinear(depth_i, xy_i[usable])  # (U,)
    network_j = sample_bilinear(depth_j, xy_j[usable])
    positive = (network_i > 0) & (network_j > 0)
    if positive.sum() < config.min_points:
        return None
    return (
        float(np.median(np.log(network_i[positive] / z_i[usable][positive]))),
        float(np.median(np.log(network_j[positive] / z_j[usable][positive]))),
    )


def measured_baselines(
    relative: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]],
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]],
    intrinsics: Tensor,
    depths: list[Tensor],
    config: BaselineConfig | None = None,
) -> dict[tuple[int, int], float]:
    """Baseline length of each pair of `relative` with enough usable matches (module docstring), in the units of
    `depths`.

    Args:
        relative: {(i, j): (R, t, inliers)}, x_j = R x_i + t with |t| = 1 (`pose_chain.pair_poses`).
        matches: {(i, j): (xy_i, xy_j)}, (M, 2) processed pixels.
        intrinsics: (N, 3, 3) K in processed pixels.
        depths: N depth maps (H, W) in processed pixels.
    """
    config = config or BaselineConfig()
    K = intrinsics.double().cpu().numpy()
    depths = [depth.detach().cpu() for depth in depths]
    measured = {}  # (i, j) -> (log ratio in view i, in view j)
    for (i, j), (R, t, _) in relative.items():
        xy_i, xy_j = (np.asarray(xy, dtype=np.float64) for xy in matches[(i, j)])
        ratios = _log_ratios(xy_i, xy_j, K[i], K[j], R, t, depths[i], depths[j], config)
        if ratios is not None:
            measured[(i, j)] = ratios
    if not measured:
        return {}
    num = len(depths)
    pairs = list(measured)
    # Rows: s_i - s_j = beta - alpha for each pair, then the prior s_v = 0 for each view.
    design = np.zeros((len(pairs) + num, num))
    target = np.zeros(len(pairs) + num)
    for row, (i, j) in enumerate(pairs):
        design[row, i], design[row, j] = 1.0, -1.0
        target[row] = measured[(i, j)][1] - measured[(i, j)][0]
    design[len(pairs):] = config.scale_prior * np.eye(num)
    weights = np.ones(len(pairs) + num)
    for _ in range(config.iterations):
        scales = np.linalg.lstsq(design * weights[:, None], target * weights, rcond=None)[0]  # (N,)
        residuals = design[: len(pairs)] @ scales - target[: len(pairs)]
        weights[: len(pairs)] = 1 / np.sqrt(1 + (residuals / config.robust_scale) ** 2)  # Cauchy IRLS (square root)
    return {
        (i, j): float(np.exp(0.5 * (scales[i] + measured[(i, j)][0] + scales[j] + measured[(i, j)][1])))
        for i, j in pairs
    }
