"""Relative poses from feature matches in place of the network's, pair by pair, before the global alignment.

Where the network cannot match two photos it places the second view's pointmap at too small a turn (the
bundled model's real pairs: MODEL_CARD.md), though learned keypoint matches (`pointmap.features`) still find
the pair's epipolar geometry. For every pair whose matches give an essential matrix with at least
`min_inliers` inliers (cameras from each view's own pointmap: focal by Weiszfeld, centre (W / 2, H / 2)),
both directed edges are rebuilt from the two views' own-frame pointmaps (each from the edge where it is the
first view) posed by the essential matrix's rotation and translation direction. The translation's length
and the second pointmap's scale come from the matches triangulated with that pose, compared with each
pointmap's depths at the matched pixels (median ratios). Pairs with fewer inliers keep the network's edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from pointmap.eval.metrics import rotation_angle_deg
from pointmap.geometry.cameras import intrinsics_from_focal
from pointmap.geometry.focal import estimate_focal
from pointmap.inference import PairPredictions


@dataclass(frozen=True)
class MatchPoseConfig:
    """When matches replace the network's relative pose."""

    min_inliers: int = 50
    """Least essential-matrix inliers (in front of both cameras) for a pair to take the matched pose."""
    threshold_px: float = 1.0
    """RANSAC inlier threshold, in processed-image pixels of the first view."""
    min_depth_samples: int = 8
    """Least inliers inside both pointmaps, with positive depths, to set the pair's scale."""
    max_turn_change_deg: float = 75.0
    """A matched relative rotation further than this from the network's is taken for a false match (module
    docstring). Where the matches of the real sets are right, the bundled network's own pairs are up to 63 deg
    off them (under-rotated); on synthetic rooms at 640 x 480 the matched pairs 75 deg or more from the
    network's were all wrong (session 20, README "How the cameras are found")."""
    max_disagreement: float = 0.7
    """Largest median distance, over the inliers, between the network's 3D points of the two matched pixels
    (both in camera i's frame), relative to their distance from camera i: above it the network puts the
    matched pixels on different surfaces and the pair is taken for a false match. Right pairs of the real sets
    stay under 0.66."""


@dataclass
class MatchedPair:
    """What matching did to one unordered pair (i, j), i < j."""

    pair: tuple[int, int]
    matches: int
    used: bool
    turn_change_deg: float
    """Angle between the matched relative rotation and the network's (NaN without an essential matrix of
    `min_inliers`)."""
    inliers_mask: np.ndarray | None = None
    """(matches,) bool: the essential matrix's inliers in front of both cameras, when one was found."""
    disagreement: float = float("nan")
    """Median relative distance of the network's 3D points of the matched inliers (`max_disagreement`)."""
    contradicted: bool = False
    """The matched pose was found but the network's contradicts it (turn or disagreement over the limits)."""

    @property
    def inliers(self) -> int:
        return 0 if self.inliers_mask is None else int(self.inliers_mask.sum())


def essential_pose(
    rays_i: np.ndarray, rays_j: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Relative pose of two calibrated views from matched rays (OpenCV MAGSAC essential matrix).

    Args:
        rays_i, rays_j: (M, 2) matched pixels in normalised coordinates, K^-1 (x, y, 1) (`normalised`).
        threshold: RANSAC inlier threshold in normalised units (pixels over the focal).
    Returns:
        R (3, 3) and unit t (3,) with x_j = R x_i + t for points x in each camera's frame, and the (M,) bool
        inliers in front of both cameras; None when no essential matrix is found.
    """
    if len(rays_i) < 5:
        return None
    E, mask = cv2.findEssentialMat(rays_i, rays_j, np.eye(3), method=cv2.USAC_MAGSAC, prob=0.9999, threshold=threshold)
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, front = cv2.recoverPose(E, rays_i, rays_j, np.eye(3), mask=mask.copy())
    return R, t[:, 0], front[:, 0] > 0


def essential_inliers(
    xy_i: np.ndarray, xy_j: np.ndarray, K_i: np.ndarray, K_j: np.ndarray, config: MatchPoseConfig | None = None
) -> int:
    """How many of a pair's matches (M, 2, processed pixels) the essential matrix under the pinholes K_i, K_j
    holds in front of both cameras: the count `repose_with_matches` compares with `min_inliers`."""
    config = config or MatchPoseConfig()
    found = essential_pose(normalised(xy_i, K_i), normalised(xy_j, K_j), config.threshold_px / K_i[0, 0])
    return 0 if found is None else int(found[2].sum())


def normalised(xy: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(M, 2) normalised coordinates of pixels (M, 2) under the pinhole K (3, 3)."""
    return cv2.undistortPoints(xy[:, None].astype(np.float64), K, None)[:, 0]


def _points_at(pts: Tensor, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) points of `pts` (H, W, 3) at the nearest pixels of `xy` (M, 2) (zero outside), and (M,) whether
    xy lies inside."""
    height, width = pts.shape[:2]
    pixel = np.round(xy).astype(np.int64)
    inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < width) & (pixel[:, 1] >= 0) & (pixel[:, 1] < height)
    points = np.zeros((len(xy), 3))
    points[inside] = pts[pixel[inside, 1], pixel[inside, 0]].double().cpu().numpy()
    return points, inside


def _disagreement(points_i: np.ndarray, points_j: np.ndarray) -> float:
    """Median of |X_i - X_j| / (mean of |X_i|, |X_j|) over matched points (M, 3), X_i the network's point of view
    i's pixel and X_j of view j's, both in camera i's frame; NaN with none."""
    gap = np.linalg.norm(points_i - points_j, axis=1)
    reach = 0.5 * (np.linalg.norm(points_i, axis=1) + np.linalg.norm(points_j, axis=1))
    return float(np.median(gap / np.maximum(reach, 1e-12))) if len(gap) else float("nan")


def triangulate(rays_i: np.ndarray, rays_j: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(M, 3) points in camera i's frame from normalised rays (M, 2) and x_j = R x_i + t (linear DLT)."""
    homogeneous = cv2.triangulatePoints(np.eye(3, 4), np.c_[R, t], rays_i.T, rays_j.T)
    return (homogeneous[:3] / homogeneous[3]).T


def _camera(pts: Tensor, conf: Tensor) -> np.ndarray:
    """(3, 3) K of a pointmap in its own frame: Weiszfeld focal, DUSt3R's principal point (W / 2, H / 2)."""
    height, width = pts.shape[:2]
    focal = estimate_focal(pts[None].float(), conf[None].float())
    return intrinsics_from_focal(focal.double(), height, width)[0].cpu().numpy()


def _network_rotation(pts_j: Tensor, own_j: Tensor, conf: Tensor) -> np.ndarray:
    """The network's rotation taking camera i's frame to camera j's (x_j = R x_i + t): the rotation between
    view j's points in i's frame and in its own (weighted Kabsch)."""
    w = conf.reshape(-1).double()
    src, dst = pts_j.reshape(-1, 3).double(), own_j.reshape(-1, 3).double()
    src = src - (w[:, None] * src).sum(0) / w.sum()
    dst = dst - (w[:, None] * dst).sum(0) / w.sum()
    u, _, vt = np.linalg.svd(((w[:, None] * dst).T @ src).cpu().numpy())
    return u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt


def repose_with_matches(
    preds: PairPredictions,
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]],
    config: MatchPoseConfig | None = None,
    intrinsics: Tensor | None = None,
) -> tuple[PairPredictions, list[MatchedPair]]:
    """The predictions with the edges of well-matched pairs rebuilt on the matched pose (module docstring).

    Args:
        preds: the network's predictions; a pair is rebuilt only when both (i, j) and (j, i) are present.
        matches: {(i, j): (xy_i, xy_j)} with i < j, (M, 2) processed pixels (`features.match_views`).
        intrinsics: (N, 3, 3) K in processed pixels (known, or the photos' likely ones: `photo_focal`), NaN for
            the images whose camera comes from their pointmap. A right focal makes the matched pose far better:
            the network's focal can be 30 % off (tum-office's photos), which turns an essential matrix's rotation
            by several degrees.
    Returns:
        new predictions (the same edges, storage dtype and devices) and one `MatchedPair` per matched pair.
    """
    config = config or MatchPoseConfig()

    def camera_of(view: int, own: Tensor, conf: Tensor) -> np.ndarray:  # (3, 3) K in processed pixels
        given = None if intrinsics is None else intrinsics[view]
        if given is not None and bool(torch.isfinite(given).all()):
            return given.double().cpu().numpy()
        return _camera(own, conf)  # a Weiszfeld focal of the pointmap: 16 ms a view on a CPU, only where needed

    pts_j, conf_j = list(preds.pts_j), list(preds.conf_j)
    report = []
    for (i, j), (xy_i, xy_j) in matches.items():
        if (i, j) not in preds.edges or (j, i) not in preds.edges:
            continue
        forward, backward = preds.index(i, j), preds.index(j, i)
        own_i, own_j = preds.pts_i[forward].float(), preds.pts_i[backward].float()  # each in its own frame
        conf_own_i, conf_own_j = preds.conf_i[forward].float(), preds.conf_i[backward].float()
        K_i, K_j = camera_of(i, own_i, conf_own_i), camera_of(j, own_j, conf_own_j)
        xy_i, xy_j = xy_i.numpy(), xy_j.numpy()
        if not (K_i[0, 0] > 0 and K_j[0, 0] > 0):  # NaN or negative: pointmaps of an untrained network
            report.append(MatchedPair((i, j), len(xy_i), False, float("nan")))
            continue
        rays_i, rays_j = normalised(xy_i, K_i), normalised(xy_j, K_j)
        found = essential_pose(rays_i, rays_j, config.threshold_px / K_i[0, 0])
        entry = MatchedPair((i, j), len(xy_i), False, float("nan"), None if found is None else found[2])
        report.append(entry)
        if found is None or entry.inliers < config.min_inliers:
            continue
        R, t, keep = found
        seen_j = preds.pts_j[forward].float()  # the network's points of view j in camera i's frame
        entry.turn_change_deg = float(rotation_angle_deg(R, _network_rotation(seen_j, own_j, conf_own_j)))
        points_i, inside_i = _points_at(own_i, xy_i[keep])
        points_seen_j, inside_seen_j = _points_at(seen_j, xy_j[keep])
        both = inside_i & inside_seen_j
        entry.disagreement = _disagreement(points_i[both], points_seen_j[both])
        if entry.turn_change_deg > config.max_turn_change_deg or entry.disagreement > config.max_disagreement:
            entry.contradicted = True
            continue
        in_i = triangulate(rays_i[keep], rays_j[keep], R, t)  # (M, 3) unit-baseline points in camera i's frame
        in_j = in_i @ R.T + t
        points_j, inside_j = _points_at(own_j, xy_j[keep])
        z_i, z_j = points_i[:, 2], points_j[:, 2]
        usable = inside_i & inside_j & (z_i > 0) & (z_j > 0) & (in_i[:, 2] > 0) & (in_j[:, 2] > 0)
        if usable.sum() < config.min_depth_samples:
            continue
        baseline = float(np.median(z_i[usable] / in_i[usable, 2]))  # |t| in view i's units
        ratio = float(np.median(in_j[usable, 2] * baseline / z_j[usable]))  # view j's units -> view i's
        if not (np.isfinite(baseline) and np.isfinite(ratio) and baseline > 0 and ratio > 0):
            continue
        device = own_i.device
        rotation = torch.as_tensor(R, dtype=torch.float32, device=device)
        shift = torch.as_tensor(baseline * t, dtype=torch.float32, device=device)
        # Edge (i, j), in view i's units: j's own points scaled, then carried into camera i (x_i = R^T (x_j - t)).
        pts_j[forward] = ((ratio * own_j - shift) @ rotation).to(preds.pts_j[forward].dtype)
        # Edge (j, i), in view j's units (1 / ratio of view i's): i's own points carried into camera j.
        pts_j[backward] = ((own_i @ rotation.T + shift) / ratio).to(preds.pts_j[backward].dtype)
        conf_j[forward], conf_j[backward] = preds.conf_i[backward].clone(), preds.conf_i[forward].clone()
        entry.used = True
    return _with_second_views(preds, pts_j, conf_j), report


def restore_network_edges(
    reposed: PairPredictions, network: PairPredictions, pairs: list[tuple[int, int]]
) -> PairPredictions:
    """`reposed` (`repose_with_matches` of `network`) with both directed edges of each of `pairs` as the network
    predicted them: for matched pairs found false later (`align.bundle` leaves them out)."""
    pts_j, conf_j = list(reposed.pts_j), list(reposed.conf_j)
    for i, j in pairs:
        for edge in (network.index(i, j), network.index(j, i)):
            pts_j[edge], conf_j[edge] = network.pts_j[edge], network.conf_j[edge]
    return _with_second_views(reposed, pts_j, conf_j)


def _with_second_views(preds: PairPredictions, pts_j: list[Tensor], conf_j: list[Tensor]) -> PairPredictions:
    """`preds` with per-edge second views `pts_j`, `conf_j` (stacked again where `preds` stacks them)."""
    stacked = isinstance(preds.pts_j, Tensor)
    return PairPredictions(
        edges=list(preds.edges),
        pts_i=preds.pts_i,
        pts_j=torch.stack(pts_j) if stacked else pts_j,
        conf_i=preds.conf_i,
        conf_j=torch.stack(conf_j) if stacked else conf_j,
    )
