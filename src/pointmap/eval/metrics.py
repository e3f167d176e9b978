"""Benchmark metrics: relative pose errors and accuracies, depth errors, point-cloud distances.

Every function takes numpy arrays or torch tensors (moved to float64 numpy) and returns Python floats or
float64 arrays. A failed estimate is NaN or inf; it counts as wrong in every accuracy and AUC (failures
are counted, never dropped).

Protocols (facts from the papers and their public evaluation code):
- Multi-view pose (DUSt3R Tab. 2, after PoseDiffusion): over every pair i < j of a sequence, the angle of
  the relative rotation error (RRA) and the angle between relative translation directions (RTA, up to
  sign); RRA@t / RTA@t are the fractions under t degrees; mAA(30) is the mean over t = 1..30 of the
  fraction whose max(RRA, RTA) error is under t (1-degree histogram, last bin closed at 30).
- Two-view pose (SuperGlue / LoFTR on ScanNet-1500, MegaDepth-1500): error = max(rotation angle,
  translation direction angle up to sign); AUC@t is the area under the recall-vs-error curve up to t,
  divided by t.
- Depth (DUSt3R Tab. 3 / 4): AbsRel = mean |d - d*| / d*, delta<1.25 = fraction with
  max(d / d*, d* / d) < 1.25, after per-image median scaling (or least-squares scale and shift); the
  multi-view inlier ratio tau (RobustMVD) is the same fraction with threshold 1.03.
- Point clouds (DTU): accuracy = mean distance of predicted points to the ground truth, completeness =
  mean distance of ground-truth points to the prediction, Chamfer = their average; distances above
  `max_dist` are left out of the means (DTU uses 20 mm).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

DEPTH_ALIGNMENTS = ("median", "scale_shift", "none")


def as_numpy(x) -> np.ndarray:
    """float64 numpy copy of a tensor or array-like (on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def rotation_angle_deg(R_est, R_gt) -> np.ndarray:
    """Angle in degrees of the rotation taking R_gt to R_est.

    Computed as 2 asin(||R_est - R_gt||_F / sqrt(8)), equal to acos((trace(R_est R_gt^T) - 1) / 2) for
    rotations but exact near 0 (where acos loses half the digits) and blind to float32 rounding of
    nearly orthonormal inputs.

    Args:
        R_est, R_gt: (..., 3, 3) rotations.
    Returns:
        (...) angles in [0, 180]; NaN where R_est is NaN.
    """
    difference = np.linalg.norm(as_numpy(R_est) - as_numpy(R_gt), axis=(-2, -1))
    return np.degrees(2 * np.arcsin(np.clip(difference / np.sqrt(8), 0.0, 1.0)))


def turn_ratios(R_est, R_gt, min_turn_deg: float = 15.0) -> np.ndarray:
    """Estimated over true rotation angle of relative rotations: how much of the turning a method recovers.

    1 when it gets the amount right, under 1 when it under-rotates (a network that cannot match a pair falls
    back towards the identity). The rotation error says how wrong a pose is; this says in which direction.

    Args:
        R_est, R_gt: (..., 3, 3) relative rotations (estimated, true).
        min_turn_deg: pairs that truly turn less get NaN (a ratio of small angles is noise).
    Returns:
        (...) ratios; NaN where the true turn is under `min_turn_deg` or R_est is NaN.
    """
    identity = np.eye(3)
    true_turn = rotation_angle_deg(R_gt, identity)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(true_turn >= min_turn_deg, rotation_angle_deg(R_est, identity) / true_turn, np.nan)


def translation_angle_deg(t_est, t_gt, sign_ambiguous: bool = True, eps: float = 1e-12) -> np.ndarray:
    """Angle in degrees between translation directions.

    Args:
        t_est, t_gt: (..., 3) translations; their lengths do not matter.
        sign_ambiguous: fold the angle to [0, 90] (min(a, 180 - a)), as the essential-matrix and
            PoseDiffusion protocols do, since a direction recovered from E has no sign.
    Returns:
        (...) angles; NaN where t_est is NaN or zero (a failure), 0 where t_gt is zero (no baseline to get
        wrong, as LoFTR's evaluation treats it).
    """
    t_est, t_gt = as_numpy(t_est), as_numpy(t_gt)
    norm_est, norm_gt = np.linalg.norm(t_est, axis=-1), np.linalg.norm(t_gt, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.einsum("...i,...i->...", t_est, t_gt) / (norm_est * norm_gt)
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    if sign_ambiguous:
        angle = np.minimum(angle, 180 - angle)
    angle = np.where(norm_est > eps, angle, np.nan)
    return np.where(norm_gt > eps, angle, 0.0)


def relative_pose_errors(rel_est, rel_gt, sign_ambiguous: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction errors of relative poses.

    Args:
        rel_est, rel_gt: (..., 4, 4) relative poses in the same convention (e.g. cam_j -> cam_i);
            NaN entries in rel_est mark failures.
    Returns:
        rotation error (...) and translation angle (...), degrees.
    """
    rel_est, rel_gt = as_numpy(rel_est), as_numpy(rel_gt)
    return (
        rotation_angle_deg(rel_est[..., :3, :3], rel_gt[..., :3, :3]),
        translation_angle_deg(rel_est[..., :3, 3], rel_gt[..., :3, 3], sign_ambiguous),
    )


def all_pairs(num_images: int) -> list[tuple[int, int]]:
    """Every (i, j) with i < j."""
    return [(i, j) for i in range(num_images) for j in range(i + 1, num_images)]


def pairwise_pose_errors(
    cam2world_est, cam2world_gt, sign_ambiguous: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Relative rotation and translation-direction errors over every image pair i < j of one sequence.

    The relative pose of (i, j) is cam j -> cam i, inv(cam2world_i) @ cam2world_j, so the errors do not
    depend on the world frame or scale of either reconstruction.

    Args:
        cam2world_est: (N, 4, 4) estimated poses (OpenCV axes); NaN rows for cameras a method lost.
        cam2world_gt: (N, 4, 4) ground-truth poses.
    Returns:
        RRA and RTA errors, each (N (N - 1) / 2,) in degrees, in the order of `all_pairs(N)`.
    """
    est, gt = as_numpy(cam2world_est), as_numpy(cam2world_gt)
    if est.shape != gt.shape or est.shape[-2:] != (4, 4):
        raise ValueError(
            f"poses of shapes {est.shape} and {gt.shape}: pass (N, 4, 4) cam2world for the same N images"
        )
    pairs = np.array(all_pairs(len(gt)), dtype=np.int64).reshape(-1, 2)

    def relative(poses: np.ndarray) -> np.ndarray:
        return np.linalg.inv(poses[pairs[:, 0]]) @ poses[pairs[:, 1]]

    with np.errstate(invalid="ignore"):
        return relative_pose_errors(relative(est), relative(gt), sign_ambiguous)


def _as_errors(errors) -> np.ndarray:
    """Errors with failures (NaN) as +inf, flattened."""
    values = as_numpy(errors).reshape(-1)
    return np.where(np.isnan(values), np.inf, values)


def accuracy_at(errors, threshold: float) -> float:
    """Fraction of errors strictly below `threshold` (failures count as wrong); NaN for no error."""
    values = _as_errors(errors)
    return float(np.mean(values < threshold)) if len(values) else float("nan")


def mean_average_accuracy(rotation_errors, translation_errors, max_threshold: int = 30) -> float:
    """mAA(max_threshold): mean over t = 1..max_threshold of the fraction with max(rot, trans) < t.

    The thresholds are the edges of a 1-degree histogram whose last bin is closed, so an error of exactly
    `max_threshold` counts at the last threshold, as in PoseDiffusion's evaluation.
    """
    errors = np.maximum(_as_errors(rotation_errors), _as_errors(translation_errors))
    if not len(errors):
        return float("nan")
    counts, _ = np.histogram(errors[np.isfinite(errors)], bins=np.arange(max_threshold + 1))
    return float(np.mean(np.cumsum(counts) / len(errors)))


def pose_auc(errors, thresholds: Sequence[float] = (5, 10, 20)) -> list[float]:
    """Area under the recall-vs-error curve up to each threshold, divided by the threshold (in [0, 1]).

    Recall at error e is the fraction of pairs with error <= e, over all pairs (failures included); the
    curve is piecewise linear between sorted errors, starting at (0, 0), as in SuperGlue's evaluation.
    """
    values = np.sort(_as_errors(errors))
    if not len(values):
        return [float("nan")] * len(thresholds)
    recall = np.arange(1, len(values) + 1) / len(values)
    values, recall = np.concatenate([[0.0], values]), np.concatenate([[0.0], recall])
    aucs = []
    for threshold in thresholds:
        end = int(np.searchsorted(values, threshold))
        x = np.concatenate([values[:end], [threshold]])
        y = np.concatenate([recall[:end], [recall[end - 1]]])
        aucs.append(float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / threshold))
    return aucs


def align_depth(pred, gt, valid=None, mode: str = "median") -> np.ndarray:
    """Prediction rescaled to the ground truth on the valid pixels.

    Args:
        pred, gt: (H, W) depth maps (any shape, the same); gt <= 0 or non-finite is invalid.
        valid: (H, W) bool, pixels to use beyond gt > 0; None for all.
        mode: "median" (d * median(d*) / median(d)), "scale_shift" (least squares a d + b) or "none".
    Returns:
        (H, W) aligned prediction, float64.
    """
    if mode not in DEPTH_ALIGNMENTS:
        raise ValueError(f"depth alignment {mode!r} unknown; pick one of {DEPTH_ALIGNMENTS}")
    pred, gt = as_numpy(pred), as_numpy(gt)
    mask = _depth_mask(pred, gt, valid)
    if mode == "none" or not mask.any():
        return pred
    if mode == "median":
        return pred * (np.median(gt[mask]) / np.median(pred[mask]))
    design = np.stack([pred[mask], np.ones(int(mask.sum()))], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, gt[mask], rcond=None)
    return scale * pred + shift


def _depth_mask(pred: np.ndarray, gt: np.ndarray, valid) -> np.ndarray:
    if pred.shape != gt.shape:
        raise ValueError(f"depth maps of shapes {pred.shape} and {gt.shape}: resize the prediction to the ground truth")
    mask = np.isfinite(gt) & (gt > 0) & np.isfinite(pred)
    if valid is not None:
        mask &= as_numpy(valid).astype(bool)
    return mask


def depth_metrics(pred, gt, valid=None, align: str = "median", max_depth: float | None = None) -> dict[str, float]:
    """AbsRel, delta < 1.25 and the inlier ratio tau (1.03) of one depth map.

    Args:
        pred: (H, W) predicted depth, NaN outside the region a method predicts (e.g. beyond its crop);
            None for a failure, which scores the worst value of every metric.
        gt: (H, W) ground-truth depth, <= 0 where unknown.
        valid: (H, W) bool, extra pixels to ignore (False), e.g. a crop of the protocol.
        align: see `align_depth`.
        max_depth: ignore ground truth beyond this (e.g. 10 m on NYUv2, 80 m on KITTI).
    Returns:
        {"abs_rel", "delta_1.25", "tau_1.03"} over the valid pixels; NaN when none is valid.
    """
    gt = as_numpy(gt)
    if pred is None:
        return {"abs_rel": float("inf"), "delta_1.25": 0.0, "tau_1.03": 0.0}
    pred = as_numpy(pred)
    mask = _depth_mask(pred, gt, valid)
    if max_depth is not None:
        mask &= gt <= max_depth
    if not mask.any():
        return {"abs_rel": float("nan"), "delta_1.25": float("nan"), "tau_1.03": float("nan")}
    aligned = align_depth(pred, gt, mask, align)[mask]
    target = gt[mask]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(aligned / target, target / aligned)
    ratio = np.where(aligned > 0, ratio, np.inf)  # a non-positive depth is wrong by any ratio
    return {
        "abs_rel": float(np.mean(np.abs(aligned - target) / target)),
        "delta_1.25": float(np.mean(ratio < 1.25)),
        "tau_1.03": float(np.mean(ratio < 1.03)),
    }


def point_cloud_metrics(pred_pts, gt_pts, max_dist: float | None = None, gt_complete=None) -> dict[str, float]:
    """Accuracy, completeness and Chamfer distance between two point clouds (DTU protocol).

    Args:
        pred_pts: (P, 3) predicted points, in the ground truth's frame and units.
        gt_pts: (Q, 3) ground-truth points.
        max_dist: nearest-neighbour distances above this are left out of the means and medians (DTU's
            20 mm outlier bound); None keeps all.
        gt_complete: (R, 3) the ground-truth points completeness is measured on, default gt_pts (DTU: those
            above the ground plane, while accuracy looks at every ground-truth point).
    Returns:
        {"accuracy", "completeness", "chamfer", "accuracy_median", "completeness_median"}: accuracy is
        pred -> gt, completeness gt -> pred; Chamfer is their mean. inf when a cloud is empty.
    """
    pred, gt = as_numpy(pred_pts).reshape(-1, 3), as_numpy(gt_pts).reshape(-1, 3)
    complete = gt if gt_complete is None else as_numpy(gt_complete).reshape(-1, 3)
    pred, gt = pred[np.isfinite(pred).all(1)], gt[np.isfinite(gt).all(1)]
    complete = complete[np.isfinite(complete).all(1)]
    if not len(pred) or not len(gt) or not len(complete):
        inf = float("inf")
        return {"accuracy": inf, "completeness": inf, "chamfer": inf, "accuracy_median": inf,
                "completeness_median": inf}
    to_gt, _ = cKDTree(gt).query(pred)
    to_pred, _ = cKDTree(pred).query(complete)
    if max_dist is not None:
        to_gt, to_pred = to_gt[to_gt < max_dist], to_pred[to_pred < max_dist]

    def mean(d: np.ndarray) -> float:
        return float(np.mean(d)) if len(d) else float("inf")

    def median(d: np.ndarray) -> float:
        return float(np.median(d)) if len(d) else float("inf")

    accuracy, completeness = mean(to_gt), mean(to_pred)
    return {
        "accuracy": accuracy,
        "completeness": completeness,
        "chamfer": (accuracy + completeness) / 2,
        "accuracy_median": median(to_gt),
        "completeness_median": median(to_pred),
    }


def f_score(pred_pts, gt_pts, tolerance: float) -> dict[str, float]:
    """Precision, recall and F1 of a point cloud at a distance tolerance (ETH3D / Tanks and Temples).

    Precision is the fraction of predicted points within `tolerance` of the ground truth, recall the fraction
    of ground-truth points within `tolerance` of the prediction; F1 their harmonic mean (0 when both are 0).
    """
    pred, gt = as_numpy(pred_pts).reshape(-1, 3), as_numpy(gt_pts).reshape(-1, 3)
    pred, gt = pred[np.isfinite(pred).all(1)], gt[np.isfinite(gt).all(1)]
    if not len(pred) or not len(gt):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = float(np.mean(cKDTree(gt).query(pred)[0] <= tolerance))
    recall = float(np.mean(cKDTree(pred).query(gt)[0] <= tolerance))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
