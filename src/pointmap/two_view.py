"""What DUSt3R derives from one image pair (matches, relative pose, focals, depth) or from one image (depth, focal)."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from pointmap.geometry.cameras import intrinsics_from_focal, invert_pose, pixel_grid, transform_points
from pointmap.geometry.focal import estimate_focal
from pointmap.geometry.matching import reciprocal_matches
from pointmap.geometry.pnp import pnp_ransac, relative_pose_procrustes
from pointmap.geometry.procrustes import nearest_rotation
from pointmap.images import View
from pointmap.inference import infer_pairs
from pointmap.model.network import DUSt3R


@dataclass
class PairAnalysis:
    """Two-view geometry of a pair, in camera 1's frame and the scale of the (1, 2) prediction.

    Attributes:
        matches1, matches2: (M, 2) long pixel (x, y) of corresponding points in processed images 1 and 2.
        cam2_to_cam1: (4, 4) float32 rigid pose of camera 2 in camera 1's frame (OpenCV axes).
        focal1, focal2: focal lengths in processed-image pixels, principal point at the image centre.
        depth1, depth2: (H1, W1), (H2, W2) z-depth of each view in its own camera: each from the prediction
            where that view is the first (the more accurate head), depth2 brought to the (1, 2) prediction's
            scale by its median ratio to pts2's depths in camera 2; depth1 is pts1's z.
        conf1, conf2: (H1, W1), (H2, W2) confidences (>= 1) of the (1, 2) prediction.
        pts1, pts2: (H1, W1, 3), (H2, W2, 3) both views' points in camera 1's frame.
    """

    matches1: Tensor
    matches2: Tensor
    cam2_to_cam1: Tensor
    focal1: float
    focal2: float
    depth1: Tensor
    depth2: Tensor
    conf1: Tensor
    conf2: Tensor
    pts1: Tensor
    pts2: Tensor


@dataclass
class MonocularDepth:
    """Depth and focal length of one image, predicted from the pair (I, I).

    Attributes:
        depth: (H, W) z-depth, up to the network's unknown scale.
        focal: focal length in processed-image pixels, principal point at the image centre.
        conf: (H, W) confidence, >= 1.
        pts3d: (H, W, 3) points in the camera's frame.
    """

    depth: Tensor
    focal: float
    conf: Tensor
    pts3d: Tensor


def monocular_depth(
    model: DUSt3R, view: View, amp_dtype: torch.dtype | str | None = None, device: torch.device | str | None = None
) -> MonocularDepth:
    """Depth map and focal length of one image: the network on the pair (view, view), as the official demo does."""
    preds = infer_pairs(model, [view], [(0, 0)], amp_dtype=amp_dtype, device=device, verbose=False)
    pts3d, _, conf, _ = preds.edge(0, 0)
    focal = estimate_focal(pts3d[None], conf[None])[0]
    return MonocularDepth(depth=pts3d[..., 2], focal=float(focal), conf=conf, pts3d=pts3d)


def _confident(conf: Tensor, min_conf: float) -> Tensor:
    """(H, W) mask of the pixels above `min_conf`; all pixels if fewer than 4 are (rather than fail)."""
    mask = conf > min_conf
    return mask if int(mask.sum()) >= 4 else torch.ones_like(mask)


def _pnp_pose(pts: Tensor, mask: Tensor, focal: float, seed: int) -> Tensor:
    """(4, 4) float64 pose of the camera whose pixels see `pts` (H, W, 3), from PnP-RANSAC on `mask`."""
    height, width = pts.shape[:2]
    K = intrinsics_from_focal(torch.tensor([focal], dtype=torch.float64), height, width)[0]
    pixels = pixel_grid(height, width, dtype=torch.float64)
    return pnp_ransac(pts[mask], pixels[mask], K, seed=seed)[0].double()


def _mean_pose(first: Tensor, second: Tensor) -> Tensor:
    """The mean of two (4, 4) estimates of one rigid pose: the chordal mean of the rotations (their sum
    projected onto SO(3)) and the mean of the unit translation directions, at `first`'s length (the two
    estimates come from predictions of different scales)."""
    pose = first.clone()
    pose[:3, :3] = nearest_rotation(first[:3, :3] + second[:3, :3])
    length = first[:3, 3].norm()
    direction = first[:3, 3] / length.clamp_min(1e-12) + second[:3, 3] / second[:3, 3].norm().clamp_min(1e-12)
    pose[:3, 3] = direction / direction.norm().clamp_min(1e-12) * length
    return pose


def _rescaled(depth: Tensor, reference: Tensor, mask: Tensor) -> Tensor:
    """`depth` (H, W) times its median ratio to `reference` (H, W) over `mask`'s pixels where both are
    positive; `reference` itself where there are none."""
    usable = mask & (depth > 0) & (reference > 0)
    if not bool(usable.any()):
        return reference
    return depth * (reference[usable] / depth[usable]).median()


def _matched_cameras(
    preds, views: list[View], matcher: str, min_conf: float, depth1: Tensor, device
) -> tuple[Tensor, float, float] | None:
    """(4, 4) float32 cam2_to_cam1 and both focals (processed pixels) by `reconstruct`'s path on the pair's
    predictions (matched and re-posed, aligned, bundle-adjusted, aligned again), its translation at the scale of
    `depth1` (H, W), view 1's depth in the (1, 2) prediction; None when the pair's matches do not pose it."""
    from pointmap.features import check_matcher, match_views
    from pointmap.pipeline import align_predictions, repose

    check_matcher(matcher)
    reposed, matches = repose(preds, match_views(views, [(0, 1)], verbose=False), views, None, verbose=False)
    if not matches:
        return None
    scene = align_predictions(
        reposed, views, min_conf, matches, device=device or "cpu", verbose=False, network_preds=preds
    )
    poses = scene.poses.detach().double().cpu()  # (2, 4, 4) cam2world
    cam2_to_cam1 = invert_pose(poses[:1])[0] @ poses[1]
    scene_depth1 = scene.depths[0].detach().double().cpu()
    usable = (scene_depth1 > 0) & (depth1.cpu() > 0)
    if bool(usable.any()):
        cam2_to_cam1[:3, 3] *= (depth1.cpu().double()[usable] / scene_depth1[usable]).median()
    focals = scene.intrinsics[:, 0, 0].detach().cpu()
    return cam2_to_cam1.float(), float(focals[0]), float(focals[1])


def analyze_pair(
    model: DUSt3R,
    view1: View,
    view2: View,
    pose_method: Literal["pnp-both", "pnp", "procrustes"] = "pnp-both",
    min_conf: float | None = None,
    subsample: int = 8,
    amp_dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    matcher: str | None = "xfeat",
) -> PairAnalysis:
    """Matches, relative pose, focals and depth maps of two images from the network's two predictions.

    Both directions (1, 2) and (2, 1) are predicted. Focals come from each view's pointmap in its own
    frame (Weiszfeld). The pose of camera 2 comes from PnP-RANSAC of view 2's points in camera 1's frame
    against view 2's pixels and focal ("pnp", as the official pair viewer); or from that and PnP-RANSAC
    of the (2, 1) prediction, camera 1 in camera 2's frame, averaged ("pnp-both": the chordal mean of the
    two rotations, the mean of the two unit translation directions at the first one's length); or from the
    similarity between view 2's points predicted in both frames ("procrustes"). Matches are reciprocal
    nearest neighbours of the (1, 2) prediction's two pointmaps.

    With `matcher` ("xfeat", the default, as in `reconstruct`), the photos are matched too and, when the pair's
    matches give an essential matrix with enough inliers, the pose and both focals are `reconstruct`'s for the
    two views: re-posed on the matches, aligned, refined by the epipolar bundle adjustment (one focal shared by
    photos of one size; two views fix it unless their optical axes meet), aligned again. The translation is
    brought to the (1, 2) prediction's scale by view 1's depths. Pairs with too few matches keep the network's
    pose (`pose_method`); None uses the network alone, as the paper does.

    Args:
        model: a DUSt3R network.
        view1, view2: images from `load_images`.
        pose_method: "pnp-both", "pnp" or "procrustes". The PnP methods fall back to "procrustes" with a
            warning when RANSAC finds no pose of camera 2 (e.g. on the flat output of an untrained model);
            "pnp-both" keeps the first pose alone when the second direction finds none.
        min_conf: confidence threshold for matches and for the points the pose is fitted on; default the
            model's `config.min_conf`.
        subsample: stride of the start grid of the matching.
        amp_dtype: None for float32, or "bf16" / "fp16" autocast.
        device: where the network runs; default the model's.
        seed: seed of the PnP RANSAC sampler.
        matcher: "xfeat" or None (above).
    """
    if pose_method not in ("pnp-both", "pnp", "procrustes"):
        raise ValueError(f"pose_method={pose_method!r}: pick 'pnp-both', 'pnp' or 'procrustes'")
    if min_conf is None:
        min_conf = model.config.min_conf
    preds = infer_pairs(model, [view1, view2], [(0, 1), (1, 0)], amp_dtype=amp_dtype, device=device, verbose=False)
    pts1, pts2, conf1, conf2 = preds.edge(0, 1)
    pts2_in_2, pts1_in_2, conf2_in_2, conf1_in_2 = preds.edge(1, 0)
    focal1 = float(estimate_focal(pts1[None], conf1[None])[0])
    focal2 = float(estimate_focal(pts2_in_2[None], conf2_in_2[None])[0])

    mask2 = _confident(conf2, min_conf)
    if pose_method in ("pnp", "pnp-both"):
        try:
            cam2_to_cam1 = _pnp_pose(pts2, mask2, focal2, seed)
        except ValueError as err:
            warnings.warn(f"{view2.path}: {err}; using pose_method='procrustes' instead", stacklevel=2)
            pose_method = "procrustes"
    if pose_method == "pnp-both":
        with contextlib.suppress(ValueError):  # no pose this way: keep the first direction's
            cam1_to_cam2 = _pnp_pose(pts1_in_2, _confident(conf1_in_2, min_conf), focal1, seed)
            cam2_to_cam1 = _mean_pose(cam2_to_cam1, invert_pose(cam1_to_cam2[None])[0])
    if pose_method == "procrustes":
        weights = torch.where(mask2, conf2 * conf2_in_2, torch.zeros_like(conf2))
        cam2_to_cam1 = relative_pose_procrustes(pts2[None].double(), pts2_in_2[None].double(), weights[None])[0][0]
    cam2_to_cam1 = cam2_to_cam1.float()
    if matcher is not None:
        matched = _matched_cameras(preds, [view1, view2], matcher, min_conf, pts1[..., 2], device)
        if matched is not None:
            cam2_to_cam1, focal1, focal2 = matched

    depth2_cross = transform_points(invert_pose(cam2_to_cam1[None]), pts2[None])[0, ..., 2]
    depth2 = _rescaled(pts2_in_2[..., 2], depth2_cross, mask2)
    matches1, matches2 = reciprocal_matches(pts1, pts2, conf1, conf2, min_conf=min_conf, subsample=subsample)
    return PairAnalysis(
        matches1=matches1,
        matches2=matches2,
        cam2_to_cam1=cam2_to_cam1,
        focal1=focal1,
        focal2=focal2,
        depth1=pts1[..., 2],
        depth2=depth2,
        conf1=conf1,
        conf2=conf2,
        pts1=pts1,
        pts2=pts2,
    )
