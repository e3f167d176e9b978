"""The methods under evaluation as pair functions: pointmap (the network) and a ground-truth oracle.

A pair method takes two ViewSamples (image, and the ground truth a protocol lets it see: only the
intrinsics, for calibrated baselines) and returns a PairEstimate. Classical baselines live in
`eval.baselines`.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import PIL.Image
import torch

from pointmap.data.sample import ViewSample
from pointmap.eval.pairs import PairEstimate, pair_truth
from pointmap.images import View, preprocess
from pointmap.model.network import DUSt3R
from pointmap.two_view import analyze_pair


def sample_to_rgb8(sample: ViewSample) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sample's [-1, 1] image."""
    rgb = (sample.image.detach().float().cpu().permute(1, 2, 0) + 1) * 127.5
    return rgb.round().clamp(0, 255).to(torch.uint8).numpy()


def sample_to_view(sample: ViewSample, size: int | None) -> View:
    """The network input of a sample: as it is when `size` is None (sides must be multiples of 16), else
    resized and cropped by the official rule of `size` (224 or 512), with `to_original` recording how."""
    height, width = sample.image.shape[-2:]
    if size is None:
        if height % 16 or width % 16:
            raise ValueError(
                f"{sample.source}: {width}x{height} image is not a multiple of 16 pixels; pass a size (224 or 512)"
            )
        return View(
            img=sample.image.detach().float().cpu(),
            true_shape=(height, width),
            path=sample.source,
            to_original=np.eye(3),
            original_shape=(height, width),
        )
    return preprocess(PIL.Image.fromarray(sample_to_rgb8(sample)), size, sample.source)


def depth_to_original(depth, view: View) -> np.ndarray:
    """(H0, W0) float32 depth in the original image's pixels from a (H, W) depth of the processed view.

    Nearest-neighbour resampling through `view.to_original`, so depth edges stay sharp; pixels outside
    the processed crop are NaN (no prediction there).
    """
    processed = depth.detach().float().cpu().numpy() if isinstance(depth, torch.Tensor) else np.float32(depth)
    height, width = view.original_shape
    if np.allclose(view.to_original, np.eye(3)) and processed.shape == (height, width):
        return processed
    return cv2.warpAffine(
        processed,
        np.asarray(view.to_original, dtype=np.float64)[:2],
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )


class PointmapPairs:
    """pointmap on a pair: `analyze_pair` (network on both orders, Weiszfeld focals, PnP-RANSAC poses of both;
    with `matcher="xfeat"`, `analyze_pair`'s default, the pose and focals from feature matches where the pair has
    enough).

    Uncalibrated: the method sees the two images only, never the ground-truth intrinsics.
    """

    def __init__(
        self,
        model: DUSt3R,
        size: int | None = None,
        device: str | torch.device = "cpu",
        pose_method: str = "pnp-both",
        amp_dtype: str | None = None,
        matcher: str | None = None,
    ):
        self.model, self.size, self.device = model, size, device
        self.pose_method, self.amp_dtype, self.matcher = pose_method, amp_dtype, matcher

    def __call__(self, view1: ViewSample, view2: ViewSample) -> PairEstimate:
        start = time.perf_counter()
        inputs = [sample_to_view(view1, self.size), sample_to_view(view2, self.size)]
        result = analyze_pair(
            self.model, *inputs, pose_method=self.pose_method, amp_dtype=self.amp_dtype, device=self.device,
            matcher=self.matcher,
        )
        return PairEstimate(
            cam2_to_cam1=result.cam2_to_cam1.double().cpu().numpy(),
            depth1=depth_to_original(result.depth1, inputs[0]),
            depth2=depth_to_original(result.depth2, inputs[1]),
            seconds=time.perf_counter() - start,
        )


def oracle_pairs(view1: ViewSample, view2: ViewSample) -> PairEstimate:
    """The ground truth itself: scores perfectly on every metric, which checks the harness end to end."""
    truth = pair_truth(view1, view2)
    return PairEstimate(cam2_to_cam1=truth.cam2_to_cam1, depth1=truth.depth1, depth2=truth.depth2)
