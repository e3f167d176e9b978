"""Dense depth from posed images: plane-sweep stereo scored by ZNCC against the best neighbour views.

Each reference pixel is tried at fronto-parallel planes uniform in inverse depth; at each plane every
neighbour image is warped onto the reference and compared over a small window with zero-mean
normalised cross-correlation (insensitive to exposure changes between photos). A plane's score is the
mean of the best `best_of` neighbours, so that a neighbour that cannot see the point (occlusion) does
not veto it; the best plane wins and a parabola through its neighbours' scores refines it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pointmap.data.real.config import StereoConfig
from pointmap.geometry.cameras import depth_to_points


def to_grey(image: np.ndarray, device=None) -> Tensor:
    """(H, W) float32 luma in [0, 1] of an (H, W, 3) uint8 RGB image."""
    rgb = torch.from_numpy(np.array(image, dtype=np.float32)).to(device) / 255
    return rgb @ torch.tensor([0.299, 0.587, 0.114], device=rgb.device)


def select_neighbours(
    covisibility: Tensor, cam2world: Tensor, median_depth: Tensor, count: int, min_angle_deg: float
) -> list[list[int]]:
    """The best source views of every image: most shared SfM points, down-weighted for short baselines.

    Args:
        covisibility: (N, N) shared SfM points per image pair.
        cam2world: (N, 4, 4) poses.
        median_depth: (N,) median sparse depth of each image, to turn baselines into angles.
        count: neighbours per image (fewer when fewer images share points with it).
        min_angle_deg: a pair whose baseline subtends angle a < min_angle at the median depth scores
            shared * a / min_angle: near-duplicate video frames give no depth resolution.
    Returns:
        N lists of neighbour indices, best first.
    """
    centres = cam2world[:, :3, 3].double()
    baseline = torch.cdist(centres, centres)  # (N, N)
    angle = torch.rad2deg(2 * torch.atan(baseline / (2 * median_depth.double()[:, None].clamp_min(1e-12))))
    score = covisibility.double() * (angle / min_angle_deg).clamp(max=1)
    score.fill_diagonal_(0)
    neighbours = []
    for row in score:
        order = torch.argsort(row, descending=True)[:count]
        neighbours.append([int(j) for j in order if row[j] > 0])
    return neighbours


def depth_range(sparse_depth: Tensor, margin: float) -> tuple[float, float]:
    """(near, far) plane depths: the 2nd and 98th percentiles of an image's sparse depths, widened."""
    positive = sparse_depth[sparse_depth > 0].double()
    if positive.numel() == 0:
        raise ValueError("depth_range: the image observes no SfM point in front of it; it cannot be swept")
    near = float(torch.quantile(positive, 0.02)) / (1 + margin)
    far = float(torch.quantile(positive, 0.98)) * (1 + margin)
    return near, far


def _box(x: Tensor, window: int) -> Tensor:
    """Mean over window x window neighbourhoods of (B, C, H, W), zero outside the image.

    Separable running sums (cumsum, then differences): O(1) per pixel whatever the window, and each
    cumsum runs along one axis only so float32 keeps ~1e-6 precision on 1000-pixel rows.
    """
    half = window // 2
    rows = F.pad(x, (half + 1, half)).cumsum(-1)
    rows = rows[..., window:] - rows[..., :-window]
    cols = F.pad(rows, (0, 0, half + 1, half)).cumsum(-2)
    return (cols[..., window:, :] - cols[..., :-window, :]) / (window * window)


def _zncc_to_source(
    ref: Tensor,
    ref_mean: Tensor,
    ref_var: Tensor,
    source: Tensor,
    K_source: Tensor,
    rays_in_source: Tensor,
    origin_in_source: Tensor,
    depths: Tensor,
    config: StereoConfig,
) -> Tensor:
    """(D, H, W) ZNCC of the reference windows with one source image warped by D fronto-parallel planes.

    rays_in_source: (H, W, 3) rotated reference rays; origin_in_source: (3,) reference centre, both in
    the source camera frame, so that a pixel at depth d lands at d * ray + origin.
    """
    height_s, width_s = source.shape[-2:]
    pts = depths[:, None, None, None] * rays_in_source + origin_in_source  # (D, H, W, 3)
    z = pts[..., 2]
    uv = (pts[..., :2] / z.clamp_min(1e-9)[..., None]) * K_source.diagonal()[:2] + K_source[:2, 2]
    size = torch.tensor([width_s - 1, height_s - 1], device=uv.device, dtype=uv.dtype)
    grid = uv / size * 2 - 1
    batch_source = source.expand(len(depths), 1, height_s, width_s)
    # (D, 1, H, W)
    warped = F.grid_sample(batch_source, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    inside = ((grid.abs() <= 1).all(-1) & (z > 0)).to(ref.dtype)[:, None]
    stats = _box(torch.cat([warped, warped * warped, ref * warped, inside], 1), config.window)
    warped_mean, warped_sq, ref_warped, inside_share = stats.split(1, dim=1)
    warped_var = (warped_sq - warped_mean**2).clamp_min(0)
    covariance = ref_warped - ref_mean * warped_mean
    zncc = covariance / (ref_var * warped_var).clamp_min(1e-12).sqrt()
    # A window must land wholly inside the source and on texture there, or the plane scores -1.
    usable = (inside_share > 0.999) & (warped_var > config.min_texture**2)
    return torch.where(usable, zncc, torch.full_like(zncc, -1.0))[:, 0]


def plane_sweep(
    ref: Tensor,
    K_ref: Tensor,
    sources: list[Tensor],
    K_sources: Tensor,
    source_from_ref: Tensor,
    near: float,
    far: float,
    config: StereoConfig,
) -> tuple[Tensor, Tensor]:
    """Depth map of a reference image from neighbour views by a ZNCC plane sweep.

    Args:
        ref: (H, W) grey reference image in [0, 1].
        K_ref: (3, 3) reference intrinsics.
        sources: S (H_s, W_s) grey neighbour images, on ref's device.
        K_sources: (S, 3, 3) their intrinsics.
        source_from_ref: (S, 4, 4) rigid transforms from the reference camera to each source camera.
        near, far: depth range of the planes (scene units, > 0).
        config: stereo options.
    Returns:
        depth (H, W) float32 z-depth, 0 where no plane scored well; score (H, W) its aggregated ZNCC.
    """
    if not sources:
        raise ValueError("plane_sweep: no source image; a reference view needs at least one neighbour")
    if not 0 < near < far:
        raise ValueError(f"plane_sweep: depth range ({near}, {far}) is empty; pass 0 < near < far")
    device, dtype = ref.device, torch.float32
    height, width = ref.shape
    ref4 = ref.to(dtype)[None, None]
    ref_mean = _box(ref4, config.window)
    ref_var = (_box(ref4 * ref4, config.window) - ref_mean**2).clamp_min(0)
    ones = torch.ones(1, height, width, device=device, dtype=dtype)
    rays = depth_to_points(ones, K_ref.to(device, dtype)[None])[0]  # (H, W, 3) in the reference camera, z = 1
    transforms = source_from_ref.to(device, dtype)
    K_sources = K_sources.to(device, dtype)
    inverse_depths = torch.linspace(1 / near, 1 / far, config.num_depths, device=device, dtype=torch.float64)
    depths = (1 / inverse_depths).to(dtype)
    rays_in_sources = [rays @ transforms[s, :3, :3].T for s in range(len(sources))]  # S (H, W, 3)
    best_of = min(config.best_of, len(sources))
    volume = torch.empty(config.num_depths, height, width, device=device, dtype=dtype)
    for start in range(0, config.num_depths, config.depth_batch):
        batch = depths[start : start + config.depth_batch]
        scores = torch.stack(
            [
                _zncc_to_source(
                    ref4,
                    ref_mean,
                    ref_var,
                    source.to(dtype)[None, None],
                    K_sources[s],
                    rays_in_sources[s],
                    transforms[s, :3, 3],
                    batch,
                    config,
                )
                for s, source in enumerate(sources)
            ],
            1,
        )  # (D_batch, S, H, W)
        volume[start : start + len(batch)] = scores.topk(best_of, dim=1).values.mean(1)
    score, index = volume.max(0)
    # Sub-plane refinement: vertex of the parabola through the scores of the best plane and its two
    # neighbours, in inverse depth (where the planes are uniform).
    inner = index.clamp(1, config.num_depths - 2)
    before = volume.gather(0, (inner - 1)[None])[0]
    at = volume.gather(0, inner[None])[0]
    after = volume.gather(0, (inner + 1)[None])[0]
    curvature = before - 2 * at + after
    offset = torch.where(curvature < 0, 0.5 * (before - after) / curvature.clamp(max=-1e-9), torch.zeros_like(at))
    step = (inverse_depths[1] - inverse_depths[0]).to(dtype)
    inverse = inverse_depths.to(dtype)[inner] + offset.clamp(-0.5, 0.5) * step
    # A best plane at either end of the sweep means the surface lies outside the range: no depth.
    # Windows reaching over the image border see zero padding: no depth there either.
    half = config.window // 2
    interior = torch.zeros(height, width, dtype=torch.bool, device=device)
    interior[half : height - half, half : width - half] = True
    keep = (
        interior
        & (score >= config.min_zncc)
        & (ref_var[0, 0] > config.min_texture**2)
        & (index > 0)
        & (index < config.num_depths - 1)
        & (inverse > 0)
    )
    depth = torch.where(keep, 1 / inverse.clamp_min(1e-12), torch.zeros_like(inverse))
    return depth, torch.where(keep, score, torch.zeros_like(score))


def sparse_depth_map(xy: Tensor, depth: Tensor, height: int, width: int) -> Tensor:
    """(H, W) z-depth at the nearest pixel of each sparse observation, 0 elsewhere (nearest point wins).

    Args:
        xy: (M, 2) pixel (x, y); depth: (M,) z-depth.
    """
    out = torch.zeros(height, width, dtype=torch.float32, device=depth.device)
    col = xy[:, 0].round().long()
    row = xy[:, 1].round().long()
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height) & (depth > 0)
    flat = row[inside] * width + col[inside]
    # Where two points share a pixel the nearer one wins (it occludes the other).
    out.view(-1).scatter_reduce_(0, flat, depth[inside].float(), reduce="amin", include_self=False)
    return out


def median_depths(sparse_depth: list[Tensor]) -> Tensor:
    """(N,) median positive sparse depth per image (NaN-free: 1 where an image has none)."""
    return torch.tensor([float(d[d > 0].median()) if (d > 0).any() else 1.0 for d in sparse_depth], dtype=torch.float64)
