"""What DUSt3R derives from one image pair (matches, relative pose, focals, depth) or from one image (depth, focal)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from pointmap.geometry.cameras import intrinsics_from_focal, invert_pose, pixel_grid, transform_points
from pointmap.geometry.focal import estimate_focal
from pointmap.geometry.matching import reciprocal_matches
from pointmap.geometry.pnp import pnp_ransac, relative_pose_procrustes
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
        depth1, depth2: (H1, W1), (H2, W2) z-depth of each view in its own camera, consistent with pts1, pts2.
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


def analyze_pair(
    model: DUSt3R,
    view1: View,
    view2: View,
    pose_method: Literal["pnp", "procrustes"] = "pnp",
    min_conf: float | None = None,
    subsample: int = 8,
    amp_dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> PairAnalysis:
    """Matches, relative pose, focals and depth maps of two images from the network's two predictions.

    Both directions (1, 2) and (2, 1) are predicted. Focals come from each view's pointmap in its own
    frame (Weiszfeld). The pose of camera 2 comes either from PnP-RANSAC of view 2's points in camera 1's
    frame against view 2's pixels and focal ("pnp", as the official pair viewer), or from the similarity
    between view 2's points predicted in both frames ("procrustes"). Matches are reciprocal nearest
    neighbours of the (1, 2) prediction's two pointmaps.

    Args:
        model: a DUSt3R network.
        view1, view2: images from `load_images`.
        pose_method: "pnp" or "procrustes"; "pnp" falls back to "procrustes" with a warning when RANSAC
            finds no pose (e.g. on the flat output of an untrained model).
        min_conf: confidence threshold for matches and for the points the pose is fitted on; default the
            model's `config.min_conf`.
        subsample: stride of the start grid of the matching.
        amp_dtype: None for float32, or "bf16" / "fp16" autocast.
        device: where the network runs; default the model's.
        seed: seed of the PnP RANSAC sampler.
    """
    if pose_method not in ("pnp", "procrustes"):
        raise ValueError(f"pose_method={pose_method!r}: pick 'pnp' or 'procrustes'")
    if min_conf is None:
        min_conf = model.config.min_conf
    preds = infer_pairs(model, [view1, view2], [(0, 1), (1, 0)], amp_dtype=amp_dtype, device=device, verbose=False)
    pts1, pts2, conf1, conf2 = preds.edge(0, 1)
    pts2_in_2, _, conf2_in_2, _ = preds.edge(1, 0)
    focal1 = float(estimate_focal(pts1[None], conf1[None])[0])
    focal2 = float(estimate_focal(pts2_in_2[None], conf2_in_2[None])[0])

    mask2 = conf2 > min_conf
    if int(mask2.sum()) < 4:
        # Too few confident points for a pose: fall back to all of them rather than fail.
        mask2 = torch.ones_like(mask2)
    if pose_method == "pnp":
        height2, width2 = pts2.shape[:2]
        K2 = intrinsics_from_focal(torch.tensor([focal2], dtype=torch.float64), height2, width2)[0]
        pixels2 = pixel_grid(height2, width2, dtype=torch.float64)
        try:
            cam2_to_cam1, _ = pnp_ransac(pts2[mask2], pixels2[mask2], K2, seed=seed)
        except ValueError as err:
            warnings.warn(f"{view2.path}: {err}; using pose_method='procrustes' instead", stacklevel=2)
            pose_method = "procrustes"
    if pose_method == "procrustes":
        weights = torch.where(mask2, conf2 * conf2_in_2, torch.zeros_like(conf2))
        cam2_to_cam1 = relative_pose_procrustes(pts2[None].double(), pts2_in_2[None].double(), weights[None])[0][0]
    cam2_to_cam1 = cam2_to_cam1.float()

    depth2 = transform_points(invert_pose(cam2_to_cam1[None]), pts2[None])[0, ..., 2]
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
