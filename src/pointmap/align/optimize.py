"""The global objective minimised by alternating closed-form solves on the grid samples.

Objective (the paper's): sum over edges e = (i, j), views v in {i, j}, samples p of
    w[v,e][p] * || X_world[v][p] - sigma_e (R_e X[v,e][p]) - t_e ||,
with X_world[v] = c_v + depth_v[p] R_v K_v^-1 (x_p, y_p, 1). Each sweep solves exactly
  1. every edge similarity (sigma_e, R_e, t_e) given the world points: weighted Procrustes;
  2. every camera given the edge similarities: the weighted mean of its aligned predictions per sample
     (the minimiser over a free world point), then one block-coordinate step fitting the camera's rays to
     it (as in orthogonal iteration for PnP): depths along the rays, the pose by rigid Procrustes, focal
     (and principal point) by linear least squares, depths again; each block exact in 3D.
The unsquared norm is minimised by reweighting (IRLS, weights w / (distance + delta)). Gauge: the
edge step holds the geometric mean of the edge scales at 1 (a constrained exact solve: rescaling the
world after an unconstrained step instead lets it drift along soft modes such as focal length), unless
two known fixed poses set the scale.
"""

from __future__ import annotations

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pointmap.align.samples import EdgeSamples
from pointmap.align.state import CameraState, EdgeSimilarities, KnownCameras
from pointmap.geometry.procrustes import weighted_procrustes


def fit_edges(samples: EdgeSamples, world: Tensor, weights: Tensor, unit_mean_log_scale: bool) -> EdgeSimilarities:
    """Edge similarities taking each edge's predictions onto the world points of its two images.

    Args:
        world: (N, M, 3) world points of every image's samples.
        weights: (E, 2, M) per-sample weights.
        unit_mean_log_scale: minimise under the constraint mean(log scale) = 0, the gauge that keeps the
            world from shrinking (it is what fixes the scale when no two fixed poses do).
    """
    num_edges = len(samples.edges)
    src = samples.pts.reshape(num_edges, -1, 3)
    dst = world[samples.edges].reshape(num_edges, -1, 3)
    flat_weights = weights.reshape(num_edges, -1)
    scale, rotation, translation = weighted_procrustes(src, dst, flat_weights)
    if unit_mean_log_scale:
        # Per edge, the loss at the best translation is A s^2 - 2 B s + const, minimised at s = B / A.
        total = flat_weights.sum(-1, keepdim=True).clamp_min(1e-30)
        mean_src = (flat_weights[..., None] * src).sum(1) / total
        spread = (flat_weights * ((src - mean_src[:, None]) ** 2).sum(-1)).sum(-1).double()
        constrained = scale_product_one(spread, scale.double() * spread).to(scale.dtype)
        translation = translation + (scale - constrained)[:, None] * (rotation @ mean_src[..., None])[..., 0]
        scale = constrained
    return EdgeSimilarities(scale, rotation, translation)


def scale_product_one(quadratic: Tensor, linear: Tensor, steps: int = 30) -> Tensor:
    """(E,) scales minimising sum A s^2 - 2 B s subject to sum log s = 0 (float64 in, float64 out).

    Stationarity gives 2 A s^2 - 2 B s = mu for all edges, so s(mu) = (B + sqrt(B^2 + 2 A mu)) / (2 A),
    increasing in mu; Newton's method on sum log s(mu) = 0 from mu = 0, kept inside the real domain.
    """
    a = quadratic.clamp_min(1e-30)
    b = linear.clamp_min(1e-30 * a)
    floor = (-(b * b) / (2 * a)).max()
    mu = torch.zeros((), dtype=a.dtype, device=a.device)
    for _ in range(steps):
        root = (b * b + 2 * a * mu).clamp_min(0).sqrt()
        scale = (b + root) / (2 * a)
        residual = scale.log().sum()
        slope = (1 / (scale * root.clamp_min(1e-300))).sum() / 2
        mu = torch.maximum(mu - residual / slope, floor + 0.5 * (mu - floor))
    root = (b * b + 2 * a * mu).clamp_min(0).sqrt()
    return (b + root) / (2 * a)


def fuse_targets(samples: EdgeSamples, targets: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Per image and sample, the weighted mean of the aligned predictions of all its edges.

    Args:
        targets: (E, 2, M, 3) aligned predictions in the world.
        weights: (E, 2, M).
    Returns:
        (N, M, 3) fused points and (N, M) total weights.
    """
    num_images, num_samples = samples.valid.shape
    index = samples.edges.reshape(-1)
    total = torch.zeros(num_images, num_samples, device=targets.device, dtype=targets.dtype)
    total.index_add_(0, index, weights.reshape(-1, num_samples))
    weighted_sum = torch.zeros(num_images, num_samples, 3, device=targets.device, dtype=targets.dtype)
    weighted_sum.index_add_(0, index, (weights[..., None] * targets).reshape(-1, num_samples, 3))
    return weighted_sum / total.clamp_min(1e-30)[..., None], total


def depth_along_rays(rays: Tensor, cam_pts: Tensor) -> Tensor:
    """(N, M) z-depth of the closest ray points to cam_pts (N, M, 3), rays (N, M, 3) with z = 1; >= 0."""
    return ((rays * cam_pts).sum(-1) / (rays * rays).sum(-1)).clamp_min(0)


def fit_intrinsics(
    state: CameraState, pixels: Tensor, cam_pts: Tensor, depth: Tensor, weights: Tensor, free_focal: Tensor,
    free_pp: Tensor,
) -> tuple[Tensor, Tensor]:
    """Focal and principal point minimising sum w || cam_pts - depth K^-1 (x, y, 1) || ^ 2 at fixed depths.

    Exact in 3D: the residual X - depth (x - cx) / f is linear in (1 / f, cx / f), so all three cases
    (both free, focal only, principal point only) are linear least squares.

    Args:
        cam_pts: (N, M, 3) target points in each camera's frame.
        depth: (N, M) z-depths along the rays.
        weights: (N, M).
        free_focal, free_pp: (N,) bool.
    Returns:
        focal (N,), pp (N, 2).
    """
    w = (weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)).double()
    d, target, xy = depth.double(), cam_pts[..., :2].double(), pixels.double()
    wdd = w * d * d
    # Both free: unknowns (1 / f, cx / f, cy / f); residual X - d x / f + d cx / f.
    normal = torch.zeros(len(w), 3, 3, device=w.device, dtype=torch.float64)
    normal[:, 0, 0] = (wdd * (xy * xy).sum(-1)).sum(-1)
    normal[:, 0, 1:] = normal[:, 1:, 0] = -(wdd[..., None] * xy).sum(1)
    normal[:, 1, 1] = normal[:, 2, 2] = wdd.sum(-1)
    rhs = torch.cat([(w * d * (xy * target).sum(-1)).sum(-1, keepdim=True), -((w * d)[..., None] * target).sum(1)], -1)
    usable = wdd.sum(-1) > 0
    eye = torch.eye(3, device=w.device, dtype=torch.float64)
    solution = torch.linalg.solve(torch.where(usable[:, None, None], normal, eye), rhs)
    inv_focal = solution[:, 0].clamp_min(1e-30)
    focal_both, pp_both = 1 / inv_focal, solution[:, 1:] / inv_focal[:, None]
    # Focal only (known principal point): unknown 1 / f.
    offsets = xy - state.pp.double()[:, None]
    inv_focal = (w * d * (offsets * target).sum(-1)).sum(-1)
    inv_focal = inv_focal / (wdd * (offsets * offsets).sum(-1)).sum(-1).clamp_min(1e-30)
    focal_only = 1 / inv_focal.clamp_min(1e-30)
    # Principal point only (known focal): c = sum w d (d x - f X) / sum w d^2.
    focal = state.focal.double()[:, None, None]
    pp_only = ((w * d)[..., None] * (d[..., None] * xy - focal * target)).sum(1)
    pp_only = pp_only / wdd.sum(-1, keepdim=True).clamp_min(1e-30)
    both = free_focal & free_pp & usable
    focal_out = torch.where(both, focal_both, torch.where(free_focal & usable, focal_only, state.focal.double()))
    pp_out = torch.where(both[:, None], pp_both, torch.where((free_pp & usable)[:, None], pp_only, state.pp.double()))
    return focal_out.to(state.focal.dtype), pp_out.to(state.pp.dtype)


def fit_cameras(
    state: CameraState, pixels: Tensor, targets: Tensor, weights: Tensor, free_pose: Tensor, free_focal: Tensor,
    free_pp: Tensor,
) -> CameraState:
    """One orthogonal-iteration step fitting every camera's rays to its fused target points.

    Args:
        pixels: (N, M, 2).
        targets: (N, M, 3) world points the rays should pass through.
        weights: (N, M).
        free_pose, free_focal, free_pp: (N,) bool, which unknowns may move.
    """
    rays = state.rays(pixels)
    depth = depth_along_rays(rays, (targets - state.centre[:, None]) @ state.rotation)
    _, rotation, centre = weighted_procrustes(depth[..., None] * rays, targets, weights, with_scale=False)
    rotation = torch.where(free_pose[:, None, None], rotation, state.rotation)
    centre = torch.where(free_pose[:, None], centre, state.centre)
    cam_pts = (targets - centre[:, None]) @ rotation
    focal, pp = fit_intrinsics(state, pixels, cam_pts, depth, weights, free_focal, free_pp)
    new = CameraState(rotation, centre, focal, pp, state.depth)
    new.depth = depth_along_rays(new.rays(pixels), cam_pts)
    return new


def scale_is_free(state: CameraState, fixed_pose: Tensor) -> bool:
    """True unless two fixed poses at different centres set the world scale."""
    centres = state.centre[fixed_pose]
    if len(centres) < 2:
        return True
    spread = (centres - centres.mean(0)).norm(dim=-1).max()
    return bool(spread <= 1e-9 * (1 + centres.norm(dim=-1).max()))


def optimize(
    samples: EdgeSamples,
    state: CameraState,
    known: KnownCameras,
    iterations: int,
    tolerance: float | None,
    robust: bool,
    fix_poses: bool,
    fix_focals: bool,
    optimize_pp: bool,
    verbose: bool,
) -> tuple[CameraState, EdgeSimilarities, list[float]]:
    """Minimise the global objective on the grid samples from an initial state.

    Returns:
        the cameras and grid depths, the edge similarities, and the weighted mean distance after each
        sweep's edge step (the objective's value, in world units).
    """
    device = samples.pts.device
    free_pose = ~(known.has_pose.to(device) & fix_poses)
    free_focal = ~(known.has_focal.to(device) & fix_focals)
    free_pp = ~(known.has_pp.to(device) & fix_focals) & optimize_pp
    free_scale = scale_is_free(state, ~free_pose)
    used_depth = state.depth[samples.valid]
    delta = 1e-3 * used_depth.abs().median().clamp_min(1e-30)
    weights = samples.weights
    if free_scale:
        # Start in the gauge the constrained edge step keeps: geometric mean of the edge scales 1.
        factor = torch.exp(-fit_edges(samples, state.world_points(samples.pixels), weights, False).scale.log().mean())
        state.centre, state.depth, delta = factor * state.centre, factor * state.depth, factor * delta
    world = state.world_points(samples.pixels)
    history: list[float] = []
    for _ in tqdm(range(iterations), desc="global alignment", disable=not verbose):
        edges = fit_edges(samples, world, weights, free_scale)
        targets = edges.apply(samples.pts)
        distance = (world[samples.edges] - targets).norm(dim=-1)
        history.append(((samples.weights * distance).sum() / samples.weights.sum()).item())
        if robust:
            weights = samples.weights / (distance + delta)
        fused, fused_weights = fuse_targets(samples, targets, weights)
        state = fit_cameras(state, samples.pixels, fused, fused_weights, free_pose, free_focal, free_pp)
        world = state.world_points(samples.pixels)
        if tolerance is not None and len(history) > 1 and history[-2] - history[-1] <= tolerance * history[-2]:
            break
    return state, fit_edges(samples, world, weights, free_scale), history
