"""global_align: pairwise predictions to one scene (samples, initialisation, optimisation, dense depths)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from pointmap.align.config import AlignConfig
from pointmap.align.dense import dense_depths
from pointmap.align.init import initialize, move_world, similarity_to_known
from pointmap.align.optimize import optimize
from pointmap.align.samples import gather_samples
from pointmap.align.scene import Scene
from pointmap.align.state import KnownCameras
from pointmap.geometry.cameras import (
    depth_to_points,
    focal_aspect,
    image_centre,
    original_centre_in_processed,
    transform_points,
)
from pointmap.images import View
from pointmap.inference import PairPredictions
from pointmap.pairs import check_connected


def photo_defaults(shapes: list[tuple[int, int]], views: list[View] | None) -> tuple[Tensor, Tensor]:
    """What a square-pixel photo centred on its optical axis implies in processed pixels.

    Returns:
        (N, 2) principal points, the centres of the original photos (`original_centre_in_processed`), and
        (N,) fy / fx (`focal_aspect`); without views the processed images are the photos: their centres
        and 1.
    """
    if views is None:
        centres = torch.stack([image_centre(h, w, dtype=torch.float64) for h, w in shapes])
        return centres.float(), torch.ones(len(shapes))
    to_original = torch.tensor(np.stack([np.asarray(view.to_original) for view in views]), dtype=torch.float64)
    original_shape = torch.tensor([view.original_shape for view in views], dtype=torch.float64)
    centres = original_centre_in_processed(to_original, original_shape)
    return centres.float(), focal_aspect(to_original).float()


def known_cameras(
    num_images: int,
    known_focals: Tensor | None,
    known_intrinsics: Tensor | None,
    known_poses: Tensor | None,
    default_aspect: Tensor,
) -> KnownCameras:
    """Collect what the caller knows, NaN where unknown, after checking shapes.

    Known intrinsics give fx and fy / fx exactly; other cameras get `default_aspect` (N,) as fy / fx.
    """
    focal = torch.full((num_images,), torch.nan)
    aspect = default_aspect.float().cpu().clone()
    pp = torch.full((num_images, 2), torch.nan)
    poses = torch.full((num_images, 4, 4), torch.nan)
    for name, value, shape in (
        ("known_intrinsics", known_intrinsics, (num_images, 3, 3)),
        ("known_focals", known_focals, (num_images,)),
        ("known_poses", known_poses, (num_images, 4, 4)),
    ):
        if value is not None and tuple(torch.as_tensor(value).shape) != shape:
            raise ValueError(
                f"{name} has shape {tuple(torch.as_tensor(value).shape)}, expected {shape} for {num_images} images "
                "(NaN marks an unknown entry)"
            )
    if known_intrinsics is not None:
        intrinsics = torch.as_tensor(known_intrinsics, dtype=torch.float64).cpu()
        # fx and fy / fx, not one mean focal: processed pixels of the 224 rule are not square, so the fx and
        # fy of a square-pixel photo differ by 0.1 % there, and averaging them moved both in the exports.
        focal = intrinsics[:, 0, 0].float()
        ratio = intrinsics[:, 1, 1] / intrinsics[:, 0, 0]
        aspect = torch.where(torch.isfinite(ratio), ratio.float(), aspect)
        pp = intrinsics[:, :2, 2].float()
    if known_focals is not None:
        given = torch.as_tensor(known_focals, dtype=torch.float32).cpu()
        focal = torch.where(torch.isfinite(given), given, focal)
    if known_poses is not None:
        poses = torch.as_tensor(known_poses, dtype=torch.float32).cpu()
    return KnownCameras(focal, pp, poses, aspect)


def image_colors(views: list[View]) -> list[Tensor]:
    """(H, W, 3) colours in [0, 1] of each view."""
    return [((view.img.permute(1, 2, 0) + 1) / 2).clamp(0, 1) for view in views]


def global_align(
    preds: PairPredictions,
    config: AlignConfig | None = None,
    *,
    known_focals: Tensor | None = None,
    known_intrinsics: Tensor | None = None,
    known_poses: Tensor | None = None,
    masks: list[Tensor] | None = None,
    colors: list[Tensor] | None = None,
    views: list[View] | None = None,
    **options,
) -> Scene:
    """Fuse pairwise pointmaps into cameras, depth maps and world points of every image.

    Args:
        preds: predictions of directed edges (i, j), full resolution, on any device (streamed to
            `config.device` chunk by chunk; float16 storage is fine).
        config: the options; `options` override its fields by name (e.g. iterations=50, device="cuda").
        known_focals: (N,) fx in processed pixels, NaN where unknown; fy follows from the views' resize
            (`geometry.cameras.focal_aspect`), so that the original photo's pixels stay square.
        known_intrinsics: (N, 3, 3) K in processed pixels, NaN where unknown; fx, fy and (cx, cy) are kept
            as given (with `fix_focals`), so `to_original @ K` gives back the photo's intrinsics.
        known_poses: (N, 4, 4) cam2world, NaN where unknown.
        masks: N bool (H, W), the pixels to use (all by default).
        colors: N (H, W, 3) colours in [0, 1] for the scene; taken from `views` when omitted.
        views: the N Views of the predictions, kept in the scene. They set the defaults of cameras with
            unknown intrinsics: the principal point at the centre of the original photo and fy / fx of
            square photo pixels (`geometry.cameras`); without views, the image centre and fy = fx.
    Returns:
        the Scene, on `config.device`. Coincident cameras (a pair of identical images, zero baseline) come
        out at the same centre, with finite values. A graph with an image no chain of pairs reaches raises
        a ValueError naming it.
    """
    config = replace(config or AlignConfig(), **options)
    if len(preds.edges) == 0:
        raise ValueError("preds has no edges: pass the predictions of at least one pair (i, j)")
    num_images = preds.num_images if views is None else len(views)
    if preds.num_images > num_images:
        raise ValueError(f"preds mentions image {preds.num_images - 1} but only {num_images} views were given")
    check_connected(num_images, preds.edges)
    device = torch.device(config.device)
    samples = gather_samples(preds, num_images, config.subsample, config.conf_transform, masks, device)
    default_pp, default_aspect = photo_defaults(samples.shapes, views)
    known = known_cameras(num_images, known_focals, known_intrinsics, known_poses, default_aspect).to(device)
    state = initialize(samples, known, default_pp)
    state, edges, _ = optimize(
        samples, state, known, config.iterations, config.tolerance, config.robust, config.fix_poses,
        config.fix_focals, config.optimize_pp, config.verbose,
    )
    if known.has_pose.any() and not config.fix_poses:
        # Known poses used as the initialisation: return the result in their frame and units.
        world = similarity_to_known(state, known)
        move_world(state, *world)
        edges = edges.moved(*world)
    depths, confidences = dense_depths(preds, state, edges, samples.shapes, config.conf_transform, config.chunk_size)
    poses, intrinsics = state.poses(), state.intrinsics()
    points = [
        transform_points(poses[k : k + 1], depth_to_points(depth[None], intrinsics[k : k + 1]))[0]
        for k, depth in enumerate(depths)
    ]
    scene_masks = [(conf > config.min_conf) & (depth > 0) for conf, depth in zip(confidences, depths, strict=True)]
    if masks is not None:
        scene_masks = [keep & mask.to(device) for keep, mask in zip(scene_masks, masks, strict=True)]
    if colors is None and views is not None:
        colors = [color.to(device) for color in image_colors(views)]
    scene = Scene(poses, intrinsics, depths, points, confidences, scene_masks, colors, views)
    if config.clean:
        scene = scene.clean(preds.edges, config.clean_tolerance)
    return scene
