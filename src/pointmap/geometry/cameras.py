"""Pinhole cameras: intrinsics, depth maps <-> pointmaps, rigid transforms and projection.

Conventions, shared by the aligner, the Scene and every export:
- OpenCV axes (x right, y down, z forward).
- Pixel (x, y) = (column, row) index: the centre of pixel column u is at x = u, so a W-pixel-wide image
  spans x in [-0.5, W - 0.5] and its centre is ((W - 1) / 2, (H - 1) / 2) (`image_centre`). COLMAP and
  nerfstudio put pixel centres at u + 0.5 instead, where the same centre reads (W / 2, H / 2); the
  exporters add the half pixel.
- An unknown principal point is the centre of the original photo, carried into processed pixels by the
  view's resize-and-crop (`original_centre_in_processed`), so exported intrinsics put it at
  ((W - 1) / 2, (H - 1) / 2) of the photo exactly. DUSt3R's (W / 2, H / 2) with integer pixel centres is
  half a pixel right and down of that: at size 224 a 480-pixel-tall photo got cy = 240.57 instead of
  239.5. Because the official crops are off-centre by up to half a resized pixel, the photo's centre
  lands within half a processed pixel of the processed image's centre, inside what the network can tell.
  `intrinsics_from_focal` and `geometry.focal.estimate_focal` keep DUSt3R's (W / 2, H / 2) as their
  default for renders and single pointmaps; pass the principal point to them to use another.
- Processed pixels need not be square: the 224 rule resizes 640 x 480 to 299 x 224, scaling x by
  640 / 299 and y by 480 / 224. A square-pixel photo then has fy / fx = `focal_aspect(to_original)` in
  processed pixels, and K = to_original @ K_processed maps intrinsics back exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """(H, W, 2) pixel coordinates (x, y) of every pixel."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1)


def image_centre(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """(2,) centre (x, y) = ((W - 1) / 2, (H - 1) / 2) of an image whose pixel centres are at integers."""
    return torch.tensor([(width - 1) / 2, (height - 1) / 2], device=device, dtype=dtype)


def original_centre_in_processed(to_original: Tensor, original_shape: Tensor) -> Tensor:
    """Centre of each original photo in its processed image's pixels.

    Args:
        to_original: (N, 3, 3) processed pixel (x, y, 1) -> original pixel, as `View.to_original`.
        original_shape: (N, 2) (H, W) of the original photos.
    Returns:
        (N, 2) (x, y), dtype and device of `to_original`.
    """
    height, width = original_shape.to(to_original).unbind(-1)
    centre = torch.stack([(width - 1) / 2, (height - 1) / 2, torch.ones_like(width)], -1)  # (N, 3)
    return torch.linalg.solve(to_original, centre[..., None])[..., :2, 0]


def focal_aspect(to_original: Tensor) -> Tensor:
    """(N,) fy / fx in processed pixels of cameras whose original photos have square pixels.

    A processed pixel covers sx x sy original pixels (the diagonal of `to_original`), so a focal f of
    the photo is f / sx and f / sy processed pixels along x and y.
    """
    return to_original[..., 0, 0] / to_original[..., 1, 1]


def intrinsics_from_focal(focal: Tensor, height: int, width: int, principal_point: Tensor | None = None) -> Tensor:
    """Pinhole K from focal lengths.

    Args:
        focal: (B,) focal length in pixels (square pixels).
        principal_point: (B, 2) (cx, cy); default DUSt3R's (W / 2, H / 2), half a pixel right and down of
            `image_centre` (see the module docstring).
    Returns:
        (B, 3, 3) intrinsics, dtype and device of `focal`.
    """
    K = torch.zeros(*focal.shape, 3, 3, device=focal.device, dtype=focal.dtype)
    K[..., 0, 0] = focal
    K[..., 1, 1] = focal
    if principal_point is None:
        K[..., 0, 2] = width / 2
        K[..., 1, 2] = height / 2
    else:
        K[..., :2, 2] = principal_point
    K[..., 2, 2] = 1
    return K


def depth_to_points(depth: Tensor, K: Tensor) -> Tensor:
    """Unproject z-depth maps to pointmaps in the camera frame.

    Args:
        depth: (B, H, W) z-depth.
        K: (B, 3, 3) intrinsics.
    Returns:
        (B, H, W, 3) points in each camera's frame.
    """
    height, width = depth.shape[-2:]
    xy = pixel_grid(height, width, device=depth.device, dtype=depth.dtype)  # (H, W, 2)
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    x = (xy[..., 0] - cx) / fx * depth
    y = (xy[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


def transform_points(transform: Tensor, pts3d: Tensor) -> Tensor:
    """Apply rigid or similarity 4x4 transforms to point sets.

    Args:
        transform: (B, 4, 4), e.g. cam2world.
        pts3d: (B, ..., 3) points in the source frame.
    Returns:
        (B, ..., 3) points in the target frame.
    """
    batch = pts3d.shape[0]
    flat = pts3d.reshape(batch, -1, 3)
    out = flat @ transform[:, :3, :3].transpose(1, 2) + transform[:, None, :3, 3]
    return out.reshape(pts3d.shape)


def project_points(pts3d: Tensor, K: Tensor) -> Tensor:
    """Project camera-frame points to pixels.

    Args:
        pts3d: (B, ..., 3) points in the camera frame (z > 0 for points in front).
        K: (B, 3, 3) intrinsics.
    Returns:
        (B, ..., 2) pixel coordinates (x, y).
    """
    batch = pts3d.shape[0]
    flat = pts3d.reshape(batch, -1, 3)
    uvw = flat @ K.transpose(1, 2)
    uv = uvw[..., :2] / uvw[..., 2:].clamp_min(1e-12)
    return uv.reshape(*pts3d.shape[:-1], 2)


def invert_pose(pose: Tensor) -> Tensor:
    """(B, 4, 4) inverse of rigid poses (e.g. cam2world -> world2cam)."""
    rot_t = pose[..., :3, :3].transpose(-1, -2)
    inv = torch.zeros_like(pose)
    inv[..., :3, :3] = rot_t
    inv[..., :3, 3] = -(rot_t @ pose[..., :3, 3:])[..., 0]
    inv[..., 3, 3] = 1
    return inv
