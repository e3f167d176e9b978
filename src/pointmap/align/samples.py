"""Pairwise predictions gathered on a sparse pixel grid, the working set of the optimisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pointmap.inference import PairPredictions


@dataclass
class EdgeSamples:
    """Predictions of every edge at the grid pixels of its two images, padded to M samples per image.

    Attributes:
        edges: (E, 2) long image index of view i and view j of each edge.
        pts: (E, 2, M, 3) float32 points of view i and view j, both in i's frame.
        weights: (E, 2, M) confidence weights (0 at padding and masked pixels).
        conf: (E, 2, M) raw confidences (0 at padding).
        pixels: (N, M, 2) pixel (x, y) of every sample of every image.
        valid: (N, M) bool, False at padding.
        shapes: (H, W) of every image.
        stride: pixel stride of the grid; sample (u, v) sits at pixel (offset + stride * u, offset + stride * v).
    """

    edges: Tensor
    pts: Tensor
    weights: Tensor
    conf: Tensor
    pixels: Tensor
    valid: Tensor
    shapes: list[tuple[int, int]]
    stride: int

    @property
    def offset(self) -> int:
        return self.stride // 2

    def grid_shape(self, image: int) -> tuple[int, int]:
        """(h, w) of the grid of one image (its first h * w samples, row-major)."""
        height, width = self.shapes[image]
        return len(range(self.offset, height, self.stride)), len(range(self.offset, width, self.stride))


def image_shapes(preds: PairPredictions, num_images: int) -> list[tuple[int, int]]:
    """(H, W) of each image, checked to agree across all its edges (every image must be in an edge)."""
    shapes: list[tuple[int, int] | None] = [None] * num_images
    for e, (i, j) in enumerate(preds.edges):
        for image, field in ((i, preds.pts_i), (j, preds.pts_j)):
            shape = tuple(field[e].shape[:2])
            if shapes[image] is None:
                shapes[image] = shape
            elif shapes[image] != shape:
                raise ValueError(
                    f"image {image} has shape {shapes[image]} in one edge and {shape} in edge {e} {(i, j)}: "
                    "predictions of one image must share its resolution"
                )
    return shapes


def confidence_weights(conf: Tensor, transform: str) -> Tensor:
    """Weights of raw confidences (>= 1): log(conf) or conf."""
    return conf.clamp_min(1).log() if transform == "log" else conf


def gather_samples(
    preds: PairPredictions,
    num_images: int,
    stride: int,
    conf_transform: str,
    masks: list[Tensor] | None,
    device: torch.device,
) -> EdgeSamples:
    """Cut the grid samples out of full-resolution predictions (which stay where they are).

    Args:
        masks: per image (H, W) bool, pixels to use; None uses all.
    """
    shapes = image_shapes(preds, num_images)
    offset = stride // 2
    grids = [(len(range(offset, h, stride)), len(range(offset, w, stride))) for h, w in shapes]
    counts = [gh * gw for gh, gw in grids]
    num_samples = max(counts)
    pixels = torch.zeros(num_images, num_samples, 2, device=device)
    valid = torch.zeros(num_images, num_samples, dtype=torch.bool, device=device)
    for k, ((height, width), count) in enumerate(zip(shapes, counts, strict=True)):
        ys, xs = torch.meshgrid(
            torch.arange(offset, height, stride, device=device, dtype=torch.float32),
            torch.arange(offset, width, stride, device=device, dtype=torch.float32),
            indexing="ij",
        )
        pixels[k, :count] = torch.stack([xs, ys], -1).reshape(-1, 2)
        valid[k, :count] = True
    sample_masks = None
    if masks is not None:
        if len(masks) != num_images:
            raise ValueError(f"masks has {len(masks)} entries for {num_images} images: pass one (H, W) mask each")
        sample_masks = torch.zeros(num_images, num_samples, dtype=torch.bool, device=device)
        for k, mask in enumerate(masks):
            if tuple(mask.shape) != shapes[k]:
                raise ValueError(f"masks[{k}] has shape {tuple(mask.shape)}, image {k} is {shapes[k]}")
            sample_masks[k, : counts[k]] = mask[offset::stride, offset::stride].reshape(-1).to(device)

    edges = torch.tensor(preds.edges, dtype=torch.long, device=device).reshape(-1, 2)
    num_edges = len(preds.edges)
    pts = torch.zeros(num_edges, 2, num_samples, 3, device=device)
    conf = torch.zeros(num_edges, 2, num_samples, device=device)
    fields = ((preds.pts_i, preds.conf_i), (preds.pts_j, preds.conf_j))
    stacked = isinstance(preds.pts_i, Tensor) and len(set(counts)) == 1
    for side, (pts_field, conf_field) in enumerate(fields):
        if stacked:
            pts[:, side] = pts_field[:, offset::stride, offset::stride].reshape(num_edges, -1, 3).to(device).float()
            conf[:, side] = conf_field[:, offset::stride, offset::stride].reshape(num_edges, -1).to(device).float()
            continue
        for e in range(num_edges):
            count = counts[preds.edges[e][side]]
            grid_pts = pts_field[e][offset::stride, offset::stride]
            pts[e, side, :count] = grid_pts.reshape(-1, 3).to(device).float()
            conf[e, side, :count] = conf_field[e][offset::stride, offset::stride].reshape(-1).to(device).float()
    finite = torch.isfinite(pts).all(-1) & torch.isfinite(conf)
    pts = torch.where(finite[..., None], pts, torch.zeros_like(pts))
    conf = torch.where(finite, conf, torch.zeros_like(conf))
    use = valid[edges] & finite
    if sample_masks is not None:
        use &= sample_masks[edges]
    weights = torch.where(use, confidence_weights(conf, conf_transform), torch.zeros_like(conf))
    return EdgeSamples(edges, pts, weights, conf, pixels, valid, shapes, stride)
