"""The global objective minimised by alternating block solves on the grid samples.

Objective (the paper's): sum over edges e = (i, j), views v in {i, j}, samples p of
    w[v,e][p] * || X_world[v][p] - sigma_e (R_e X[v,e][p]) - t_e ||,
with X_world[v] = c_v + depth_v[p] R_v K_v^-1 (x_p, y_p, 1). Each sweep
  1. solves every edge similarity (sigma_e, R_e, t_e) given the world points: weighted Procrustes;
  2. fits every camera given the edge similarities: the weighted mean of its aligned predictions per
     sample (the minimiser over a free world point), then a Gauss-Newton step of the camera's pose, focal
     (and principal point) on those targets (a weighted PnP), and the depths along the new rays.
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
from pointmap.geometry.procrustes import nearest_rotation


def fit_edges(samples: EdgeSamples, world: Tensor, weights: Tensor, unit_mean_log_scale: bool) -> EdgeSimilarities:
    """Edge similarities taking each edge's predictions onto the world points of its two images (Umeyama).

    The moments are reduced with batched matrix products in the working dtype (the 2 M points per edge
    are the bulk of each sweep); only the 3x3 SVD runs in float64.

    Args:
        world: (N, M, 3) world points of every image's samples.
        weights: (E, 2, M) per-sample weights.
        unit_mean_log_scale: minimise under the constraint mean(log scale) = 0, the gauge that keeps the
            world from shrinking (it is what fixes the scale when no two fixed poses do).
    """
    num_edges = len(samples.edges)
    src = samples.pts.reshape(num_edges, -1, 3)
    dst = world[samples.edges].reshape(num_edges, -1, 3)
    total = weights.reshape(num_edges, 1, -1).sum(-1, keepdim=True)  # (E, 1, 1)
    share = weights.reshape(num_edges, 1, -1) / total.clamp_min(1e-30)  # (E, 1, 2M)
    mean_src, mean_dst = (share @ src)[:, 0], (share @ dst)[:, 0]
    src_c = src - mean_src[:, None]
    cov = ((dst - mean_dst[:, None]) * share.transpose(1, 2)).transpose(1, 2) @ src_c  # (E, 3, 3)
    spread = (share[:, 0] * (src_c * src_c).sum(-1)).sum(-1).clamp_min(1e-30)  # (E,)
    rotation = nearest_rotation(cov)
    scale = (rotation * cov).sum((-2, -1)) / spread
    if unit_mean_log_scale:
        # Per edge, the loss at the best translation is A s^2 - 2 B s + const, minimised at s = B / A.
        area = total[:, 0, 0].double() * spread.double()
        scale = scale_product_one(area, area * scale.double()).to(scale.dtype)
    translation = mean_dst - scale[:, None] * (rotation @ mean_src[..., None])[..., 0]
    return EdgeSimilarities(scale, rotation, translation)


def scale_product_one(quadratic: Tensor, linear: Tensor, steps: int = 8) -> Tensor:
    """(E,) scales minimising sum A s^2 - 2 B s subject to sum log s = 0 (float64 in, float64 out).

    Stationarity gives 2 A s^2 - 2 B s = mu for all edges, so s(mu) = (B + sqrt(B^2 + 2 A mu)) / (2 A),
    increasing in mu; Newton's method on sum log s(mu) = 0 from mu = 0, kept inside the real domain (the
    unconstrained scales already have a geometric mean near 1 after the first sweep: a few steps suffice).
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


def skew(v: Tensor) -> Tensor:
    """(..., 3, 3) cross-product matrices [v]x of (..., 3) vectors."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v.unbind(-1)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape, 3)


def fit_cameras(
    state: CameraState,
    pixels: Tensor,
    targets: Tensor,
    weights: Tensor,
    free_pose: Tensor,
    free_focal: Tensor,
    free_pp: Tensor,
    focal_limits: Tensor,
    steps: int = 1,
) -> CameraState:
    """Fit every camera's rays to its fused target points (a weighted PnP), then set the depths along them.

    Gauss-Newton on the lateral offset at equal depth, e = Z_xy - Z_z (x - c) / (fx, fy) with
    Z = R^T (Y - c_cam), over rotation, centre, log fx (fy / fx stays fixed) and principal point (9 unknowns
    per camera, the fixed ones held by identity rows). The depth is then the closest point of each ray to
    its target. Unlike alternating depths and poses (orthogonal iteration), this does not crawl along the
    dolly-zoom direction (camera along its axis + focal), which the depth spread of a scene resolves only
    weakly.

    Args:
        pixels: (N, M, 2).
        targets: (N, M, 3) world points the rays should pass through.
        weights: (N, M).
        free_pose, free_focal, free_pp: (N,) bool, which unknowns may move.
        focal_limits: (N, 2) least and most fx a free focal may take (`focal_limits`).
    """
    dtype = state.focal.dtype
    rotation, centre = state.rotation.double(), state.centre.double()
    focal, pp, aspect = state.focal.double(), state.pp.double(), state.aspect.double()
    w = (weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)).double()
    targets64, pixels64, limits = targets.double(), pixels.double(), focal_limits.double()
    free = torch.cat([free_pose[:, None].expand(-1, 6), free_focal[:, None], free_pp[:, None].expand(-1, 2)], -1)
    free &= (w.sum(-1) > 0)[:, None]
    hold = torch.diag_embed((~free).double())
    eye2 = torch.eye(2, dtype=torch.float64, device=w.device)
    for _ in range(steps):
        cam_pts = (targets64 - centre[:, None]) @ rotation  # (N, M, 3) R^T (Y - c)
        focal_xy = torch.stack([focal, focal * aspect], -1)[:, None]  # (N, 1, 2) fx, fy
        ray_xy = (pixels64 - pp[:, None]) / focal_xy  # (N, M, 2)
        z = cam_pts[..., 2:]
        residual = cam_pts[..., :2] - z * ray_xy
        cross = skew(cam_pts)  # d(cam_pts) / d(omega) for R <- R exp([omega]x)
        jac_rot = cross[..., :2, :] - ray_xy[..., None] * cross[..., 2:, :]
        jac_centre = torch.cat([-eye2.expand_as(jac_rot[..., :2]), ray_xy[..., None]], -1)
        jac_focal = (z * ray_xy)[..., None]
        jac_pp = (z / focal_xy)[..., None] * eye2
        jac = torch.cat([jac_rot, jac_centre, jac_focal, jac_pp], -1) * free[:, None, None, :]  # (N, M, 2, 9)
        normal = torch.einsum("nm,nmki,nmkj->nij", w, jac, jac)
        # A whisper of Levenberg damping keeps near-degenerate cameras (e.g. all targets on one ray) finite;
        # the absolute part covers unknowns with no leverage at all (a zero column of the Jacobian).
        diagonal = torch.diagonal(normal, dim1=-2, dim2=-1)
        floor = 1e-12 * diagonal.mean(-1, keepdim=True).clamp_min(1e-30)
        normal = normal + torch.diag_embed(1e-9 * diagonal + floor) + hold
        gradient = torch.einsum("nm,nmki,nmk->ni", w, jac, residual)
        step = -torch.linalg.solve(normal, gradient)
        rotation = rotation @ torch.linalg.matrix_exp(skew(step[:, :3]))
        centre = centre + (rotation @ step[:, 3:6, None])[..., 0]
        # Garbage pointmaps (an untrained network's) drive the focal towards 0 or infinity (a dolly zoom
        # without end); the limits keep the camera finite, hence writable.
        limited = torch.minimum(torch.maximum(focal * torch.exp(step[:, 6]), limits[:, 0]), limits[:, 1])
        focal = torch.where(free[:, 6], limited, focal)
        pp = pp + step[:, 7:]
    new = CameraState(rotation.to(dtype), centre.to(dtype), focal.to(dtype), pp.to(dtype), state.depth, state.aspect)
    cam_pts = (targets - new.centre[:, None]) @ new.rotation
    new.depth = depth_along_rays(new.rays(pixels), cam_pts)
    return new


def focal_limits(shapes: list[tuple[int, int]], device: torch.device, min_fov_deg: float = 1.0,
                 max_fov_deg: float = 170.0) -> Tensor:
    """(N, 2) least and most focal of each image: the fields of view max_fov_deg and min_fov_deg along its
    longer side (1 and 170 degrees: 12833 and 10 px at 224)."""
    half_longer = torch.tensor([max(h, w) / 2 for h, w in shapes], dtype=torch.float64, device=device)
    tangents = torch.tan(torch.deg2rad(torch.tensor([max_fov_deg, min_fov_deg], dtype=torch.float64) / 2))
    return half_longer[:, None] / tangents.to(device)


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
    free_pose = ~(known.has_pose & fix_poses)
    free_focal = ~(known.has_focal & fix_focals)
    free_pp = ~(known.has_pp & fix_focals) & optimize_pp
    free_scale = scale_is_free(state, ~free_pose)
    limits = focal_limits(samples.shapes, state.focal.device)
    used_depth = state.depth[samples.valid]
    delta = 1e-3 * used_depth.abs().median().clamp_min(1e-30)
    weights = samples.weights
    if free_scale:
        # Start in the gauge the constrained edge step keeps: geometric mean of the edge scales 1.
        # Scale about a fixed camera, if there is one, which must not move.
        factor = torch.exp(-fit_edges(samples, state.world_points(samples.pixels), weights, False).scale.log().mean())
        fixed_centres = state.centre[~free_pose]
        anchor = fixed_centres[0] if len(fixed_centres) else torch.zeros_like(state.centre[0])
        state.centre = anchor + factor * (state.centre - anchor)
        state.depth, delta = factor * state.depth, factor * delta
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
        state = fit_cameras(state, samples.pixels, fused, fused_weights, free_pose, free_focal, free_pp, limits)
        world = state.world_points(samples.pixels)
        if tolerance is not None and len(history) > 1 and history[-2] - history[-1] <= tolerance * history[-2]:
            break
    return state, fit_edges(samples, world, weights, free_scale), history
