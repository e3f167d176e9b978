"""Full-resolution depth maps in closed form, streaming the predictions edge chunk by edge chunk."""

from __future__ import annotations

import torch
from torch import Tensor

from pointmap.align.samples import confidence_weights
from pointmap.align.state import CameraState, EdgeSimilarities
from pointmap.geometry.cameras import pixel_grid
from pointmap.inference import PairPredictions


def dense_depths(
    preds: PairPredictions,
    state: CameraState,
    edges: EdgeSimilarities,
    shapes: list[tuple[int, int]],
    conf_transform: str,
    chunk_size: int,
) -> tuple[list[Tensor], list[Tensor]]:
    """Each pixel's depth: the weighted least-squares point on its ray of all aligned predictions of it.

    For image v and an edge e containing it, the aligned prediction Y = sigma_e R_e X[v,e] + t_e, seen
    from camera v as Z = R_v^T (Y - c_v), is closest to the ray r = K_v^-1 (x, y, 1) at depth
    (r . Z) / (r . r); the depth is the weighted mean of these over the edges. Only `chunk_size` edges are
    on the device at a time, so memory grows with the number of images, not with edges x pixels.

    Returns:
        depths: N tensors (H, W) (0 where no prediction is finite), and confidences: N tensors (H, W), the
        highest raw confidence any edge gives the pixel (1 where none).
    """
    device = state.focal.device
    stacked = isinstance(preds.pts_i, Tensor) and len(set(shapes)) == 1
    step = chunk_size if stacked else 1
    weighted_depth = [torch.zeros(h, w, device=device) for h, w in shapes]
    total_weight = [torch.zeros(h, w, device=device) for h, w in shapes]
    confidence = [torch.ones(h, w, device=device) for h, w in shapes]
    # Per image, r / (r . r) for the ray r = K^-1 (x, y, 1): its dot product with a point is the depth.
    depth_readers = []
    focal_xy = state.focal_xy()
    for k, (h, w) in enumerate(shapes):
        xy = (pixel_grid(h, w, device=device) - state.pp[k]) / focal_xy[k]
        ray = torch.cat([xy, torch.ones_like(xy[..., :1])], -1)
        depth_readers.append(ray / (ray * ray).sum(-1, keepdim=True))
    world2cam_rot = state.rotation.transpose(1, 2)
    fields = ((preds.pts_i, preds.conf_i), (preds.pts_j, preds.conf_j))
    for start in range(0, len(preds.edges), step):
        chunk = torch.arange(start, min(start + step, len(preds.edges)), device=device)
        for side, (pts_field, conf_field) in enumerate(fields):
            images = [preds.edges[e][side] for e in chunk.tolist()]
            index = torch.tensor(images, device=device)
            # (C, H, W, 3) edge-frame points and (C, H, W) confidences, only this chunk on the device.
            if stacked:
                pts = pts_field[start : start + step].to(device, non_blocking=True).float()
                conf = conf_field[start : start + step].to(device, non_blocking=True).float()
            else:
                pts = pts_field[start].to(device).float()[None]
                conf = conf_field[start].to(device).float()[None]
            # Edge frame -> camera v: R_v^T (sigma_e R_e X + t_e - c_v).
            linear = world2cam_rot[index] @ (edges.scale[chunk, None, None] * edges.rotation[chunk])
            offset = (world2cam_rot[index] @ (edges.translation[chunk] - state.centre[index])[..., None])[..., 0]
            cam_pts = (pts.flatten(1, 2) @ linear.transpose(1, 2) + offset[:, None]).reshape(pts.shape)
            depth = (torch.stack([depth_readers[k] for k in images]) * cam_pts).sum(-1)
            usable = torch.isfinite(depth) & torch.isfinite(conf)
            weight = torch.where(usable, confidence_weights(conf, conf_transform).clamp_min(1e-6), 0)
            depth = torch.where(usable, depth, 0)
            conf = torch.where(usable, conf, 1)
            for n, k in enumerate(images):
                weighted_depth[k] += weight[n] * depth[n]
                total_weight[k] += weight[n]
                torch.maximum(confidence[k], conf[n], out=confidence[k])
    depths = [torch.where(t > 0, d / t.clamp_min(1e-30), 0) for d, t in zip(weighted_depth, total_weight, strict=True)]
    return depths, confidence
