"""Relative camera pose from a pointmap: PnP-RANSAC against pixels, or robust Procrustes against a second pointmap."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from pointmap.geometry.procrustes import weighted_procrustes


def pnp_ransac(
    pts3d: Tensor,
    pixels: Tensor,
    K: Tensor,
    reprojection_error: float = 5.0,
    max_iterations: int = 1000,
    confidence: float = 0.9999,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Pose of a camera that sees world points at given pixels (OpenCV USAC PnP-RANSAC, then LM refinement).

    Args:
        pts3d: (N, 3) points in the world frame (e.g. view j's pointmap in view i's frame), N >= 4.
        pixels: (N, 2) their pixels (x, y) in the camera.
        K: (3, 3) the camera's intrinsics.
        reprojection_error: inlier threshold in pixels (5, as the official pair viewer).
        max_iterations: RANSAC iterations at most.
        confidence: RANSAC stops when it is this sure of having sampled an all-inlier set.
        seed: seeds OpenCV's RANSAC sampler through its parameters (no global state).
    Returns:
        cam2world (4, 4) float64 camera-to-world pose, and inliers (N,) bool, on pts3d's device.
    Raises:
        ValueError: fewer than 4 points, or RANSAC finds no pose.
    """
    if pts3d.shape[0] != pixels.shape[0] or pts3d.shape[-1] != 3 or pixels.shape[-1] != 2:
        raise ValueError(f"pts3d {tuple(pts3d.shape)} and pixels {tuple(pixels.shape)}: pass (N, 3) and (N, 2)")
    if pts3d.shape[0] < 4:
        raise ValueError(f"PnP needs at least 4 points, got {pts3d.shape[0]}; lower the confidence threshold")
    object_points = np.ascontiguousarray(pts3d.detach().cpu().double().numpy())
    image_points = np.ascontiguousarray(pixels.detach().cpu().double().numpy())
    camera = K.detach().cpu().double().numpy()
    params = cv2.UsacParams()
    params.threshold = reprojection_error
    params.maxIterations = max_iterations
    params.confidence = confidence
    params.randomGeneratorState = seed
    params.loMethod = cv2.LOCAL_OPTIM_INNER_LO
    params.final_polisher = cv2.LSQ_POLISHER
    ok, _, rvec, tvec, inlier_index = cv2.solvePnPRansac(object_points, image_points, camera, None, params=params)
    if not ok or inlier_index is None or len(inlier_index) < 4:
        raise ValueError(f"PnP-RANSAC found no pose from {len(object_points)} points; the pointmap may be degenerate")
    inlier_index = inlier_index.reshape(-1)
    # Polish on all inliers with Levenberg-Marquardt: RANSAC's estimate comes from small samples.
    rvec, tvec = cv2.solvePnPRefineLM(object_points[inlier_index], image_points[inlier_index], camera, None, rvec, tvec)
    world2cam = np.eye(4)
    world2cam[:3, :3] = cv2.Rodrigues(rvec)[0]
    world2cam[:3, 3] = tvec.reshape(3)
    inliers = torch.zeros(len(object_points), dtype=torch.bool)
    inliers[torch.from_numpy(inlier_index.astype(np.int64))] = True
    cam2world = torch.from_numpy(np.linalg.inv(world2cam))
    return cam2world.to(pts3d.device), inliers.to(pts3d.device)


def relative_pose_procrustes(
    pts_j_in_i: Tensor,
    pts_j_in_j: Tensor,
    weights: Tensor | None = None,
    iterations: int = 5,
) -> tuple[Tensor, Tensor]:
    """Pose of camera j in camera i's frame from view j's pointmap predicted in both frames.

    DUSt3R predicts view j's points in i's frame (pair (i, j)) and in j's own frame (pair (j, i)), each
    up to its own scale: pts_j_in_i = s R pts_j_in_j + t. R is the weighted Umeyama rotation; s is Horn's
    symmetric scale sqrt(sum w |dst - mean|^2 / sum w |src - mean|^2), which stays unbiased when both
    pointmaps are noisy (Umeyama's scale shrinks with the noise of the source, and the error moves t).
    The fit is repeated `iterations` times with Cauchy weights 1 / (1 + (r / c)^2), c = 2.4 x the
    weighted median residual r, so that wrong points stop pulling on the pose.

    Args:
        pts_j_in_i: (B, N, 3) or (B, H, W, 3) view j's points in i's frame.
        pts_j_in_j: the same points in j's frame, same shape.
        weights: (B, N) or (B, H, W) non-negative, e.g. the product of the two confidences; default 1.
        iterations: robust reweighting rounds (0: plain weighted Umeyama).
    Returns:
        cam_j_to_cam_i (B, 4, 4) rigid pose (rotation R, camera j's centre t) in the scale of pts_j_in_i,
        and scale (B,) s, the ratio of the two predictions' scales; dtype of pts_j_in_i.
    """
    if pts_j_in_i.shape != pts_j_in_j.shape or pts_j_in_i.shape[-1] != 3:
        raise ValueError(
            f"pts_j_in_i {tuple(pts_j_in_i.shape)} and pts_j_in_j {tuple(pts_j_in_j.shape)}: pass equal (B, N, 3)"
        )
    batch = pts_j_in_i.shape[0]
    src = pts_j_in_j.reshape(batch, -1, 3).double()
    dst = pts_j_in_i.reshape(batch, -1, 3).double()
    base = torch.ones(src.shape[:2], dtype=torch.float64, device=src.device)
    if weights is not None:
        base = weights.reshape(batch, -1).double()
    valid = torch.isfinite(src).all(-1) & torch.isfinite(dst).all(-1)
    base = torch.where(valid, base, torch.zeros_like(base))
    src, dst = torch.nan_to_num(src), torch.nan_to_num(dst)
    weights_now = base
    for round_index in range(iterations + 1):
        scale, rotation, translation = _symmetric_similarity(src, dst, weights_now)
        if round_index == iterations:
            break
        fitted = scale[:, None, None] * src @ rotation.transpose(1, 2) + translation[:, None]
        residual = (fitted - dst).norm(dim=-1)
        width = 2.4 * _weighted_median(residual, base).clamp_min(1e-12)
        weights_now = base / (1 + (residual / width[:, None]) ** 2)
    pose = torch.eye(4, dtype=torch.float64, device=src.device).repeat(batch, 1, 1)
    pose[:, :3, :3] = rotation
    pose[:, :3, 3] = translation
    return pose.to(pts_j_in_i.dtype), scale.to(pts_j_in_i.dtype)


def _symmetric_similarity(src: Tensor, dst: Tensor, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(scale (B,), rotation (B, 3, 3), translation (B, 3)): Umeyama's rotation with Horn's symmetric scale."""
    _, rotation, _ = weighted_procrustes(src, dst, weights, with_scale=False)
    w = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)
    mean_src = (w[..., None] * src).sum(1)
    mean_dst = (w[..., None] * dst).sum(1)
    spread_src = (w * (src - mean_src[:, None]).square().sum(-1)).sum(-1)
    spread_dst = (w * (dst - mean_dst[:, None]).square().sum(-1)).sum(-1)
    scale = (spread_dst / spread_src.clamp_min(1e-300)).sqrt()
    translation = mean_dst - scale[:, None] * (rotation @ mean_src[..., None])[..., 0]
    return scale, rotation, translation


def _weighted_median(values: Tensor, weights: Tensor) -> Tensor:
    """(B,) weighted median of (B, N) values."""
    order = values.argsort(dim=-1)
    sorted_values = values.gather(-1, order)
    cumulative = weights.gather(-1, order).cumsum(-1)
    half = cumulative[:, -1:] / 2
    index = (cumulative < half).sum(-1, keepdim=True).clamp(max=values.shape[-1] - 1)
    return sorted_values.gather(-1, index)[:, 0]
