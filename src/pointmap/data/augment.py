"""Training augmentations of a view: crops and resizes to a training resolution, colour and camera artefacts.

Every random draw comes from a `torch.Generator`, so a sample is a pure function of its seed.
Geometric changes update the intrinsics; photometric ones touch only the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pointmap.data.sample import ViewSample

# (H, W) of the 512 models' training crops (DUSt3R, Sec. 4: 512x384 ... 512x160, landscape).
LANDSCAPE_512 = ((384, 512), (336, 512), (288, 512), (256, 512), (160, 512))


def training_resolutions(size: int, portrait: bool = True) -> list[tuple[int, int]]:
    """The (H, W) crops a model of `size` trains on: square for 224, the paper's aspect ratios for 512.

    Args:
        size: 224 or 512.
        portrait: also return the transposed (portrait) versions of the 512 crops.
    """
    if size == 224:
        return [(224, 224)]
    if size == 512:
        landscape = list(LANDSCAPE_512)
        return landscape + [(w, h) for h, w in landscape] if portrait else landscape
    raise ValueError(f"size={size}: only 224 and 512 have preset resolutions; list (H, W) pairs instead")


@dataclass(frozen=True)
class AugmentConfig:
    max_zoom: float = 0.3
    """Crops cover between 1 / (1 + max_zoom) and all of the largest window of the target aspect."""
    brightness: float = 0.4
    """Brightness factor drawn in [1 - b, 1 + b]."""
    contrast: float = 0.4
    """Contrast factor drawn in [1 - c, 1 + c] (about the image mean)."""
    saturation: float = 0.4
    """Saturation factor drawn in [1 - s, 1 + s] (about the grey value)."""
    hue: float = 0.05
    """Hue rotation drawn in [-h, h] turns."""
    noise_prob: float = 0.3
    """Chance of Gaussian sensor noise."""
    noise_std: float = 0.04
    """Largest noise standard deviation, in [-1, 1] image units."""
    blur_prob: float = 0.2
    """Chance of a Gaussian blur (defocus, small motion)."""
    blur_sigma: float = 1.2
    """Largest blur standard deviation in pixels."""
    jpeg_prob: float = 0.3
    """Chance of a JPEG round trip (block and ringing artefacts)."""
    jpeg_quality: tuple[int, int] = (30, 95)
    """JPEG quality range, inclusive."""
    swap_prob: float = 0.5
    """Chance of swapping the two views of a pair (the network is not symmetric)."""


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def crop_resize(view: ViewSample, size: tuple[int, int], generator: torch.Generator | None = None,
                max_zoom: float = 0.0) -> ViewSample:
    """Crop a window of the target aspect ratio, then resize it to `size`, updating the intrinsics.

    Without a generator the window is the largest centred one (evaluation); with one, it is zoomed in
    by a factor in [1, 1 + max_zoom] and placed uniformly at random.

    Args:
        view: image (3, H0, W0), depth and valid (H0, W0), intrinsics (3, 3).
        size: (H, W) output size.
    Returns:
        A new ViewSample at (H, W); depth and valid are resampled by nearest neighbour (never blended
        across depth edges), the image bilinearly with antialiasing.
    """
    out_h, out_w = size
    in_h, in_w = view.image.shape[-2:]
    scale = max(out_h / in_h, out_w / in_w)
    if generator is not None and max_zoom > 0:
        scale *= 1 + max_zoom * torch.rand((), generator=generator).item()
    crop_w = min(in_w, max(1, round(out_w / scale)))
    crop_h = min(in_h, max(1, round(out_h / scale)))
    if generator is None:
        x0, y0 = (in_w - crop_w) // 2, (in_h - crop_h) // 2
    else:
        x0 = int(torch.randint(in_w - crop_w + 1, (), generator=generator))
        y0 = int(torch.randint(in_h - crop_h + 1, (), generator=generator))
    image = view.image[:, y0 : y0 + crop_h, x0 : x0 + crop_w]
    depth = view.depth[y0 : y0 + crop_h, x0 : x0 + crop_w]
    valid = view.valid[y0 : y0 + crop_h, x0 : x0 + crop_w]
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    depth = F.interpolate(depth[None, None], size=size, mode="nearest-exact")[0, 0]
    valid = F.interpolate(valid[None, None].float(), size=size, mode="nearest-exact")[0, 0] > 0.5
    # Pixel centres sit at integer coordinates (geometry/cameras.py), so a resize by s maps
    # x to (x + 0.5) * s - 0.5.
    scale_x, scale_y = out_w / crop_w, out_h / crop_h
    K = view.intrinsics.clone()
    K[0, 0] *= scale_x
    K[1, 1] *= scale_y
    K[0, 1] *= scale_x
    K[0, 2] = (K[0, 2] - x0 + 0.5) * scale_x - 0.5
    K[1, 2] = (K[1, 2] - y0 + 0.5) * scale_y - 0.5
    return replace(view, image=image.clamp(-1, 1), depth=depth, valid=valid & (depth > 0), intrinsics=K)


def _rgb_to_grey(image: Tensor) -> Tensor:
    """(3, H, W) -> (1, H, W) luma (ITU-R BT.601 weights)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=image.device, dtype=image.dtype)
    return (image * weights[:, None, None]).sum(0, keepdim=True)


def _rotate_hue(image: Tensor, turns: float) -> Tensor:
    """Rotate chroma about the grey axis by `turns` of a full circle (a rotation in YIQ space)."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        device=image.device, dtype=image.dtype,
    )
    angle = 2 * math.pi * turns
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[1, 0, 0], [0, cos, -sin], [0, sin, cos]], device=image.device, dtype=image.dtype)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    return torch.einsum("ij,jhw->ihw", matrix, image)


def color_jitter(image: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Random brightness, contrast, saturation and hue of a (3, H, W) image in [-1, 1]."""
    rgb = (image + 1) / 2
    rgb = rgb * _uniform(generator, 1 - config.brightness, 1 + config.brightness)
    mean = _rgb_to_grey(rgb).mean()
    rgb = (rgb - mean) * _uniform(generator, 1 - config.contrast, 1 + config.contrast) + mean
    grey = _rgb_to_grey(rgb)
    rgb = (rgb - grey) * _uniform(generator, 1 - config.saturation, 1 + config.saturation) + grey
    if config.hue > 0:
        rgb = _rotate_hue(rgb, _uniform(generator, -config.hue, config.hue))
    return (rgb.clamp(0, 1) * 2 - 1).to(image.dtype)


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a (3, H, W) image, `sigma` in pixels, reflecting at the borders."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(image[:, None], (radius, radius, radius, radius), mode="reflect")  # (3, 1, H+2r, W+2r)
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    out = F.conv2d(out, kernel.view(1, 1, -1, 1))
    return out[:, 0]


def jpeg_round_trip(image: Tensor, quality: int) -> Tensor:
    """Encode a (3, H, W) [-1, 1] image as JPEG at `quality` and decode it (OpenCV's libjpeg)."""
    rgb = ((image.detach().float().cpu().permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
    bgr = np.ascontiguousarray(rgb.numpy().astype(np.uint8)[..., ::-1])
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not JPEG-encode an image of shape {tuple(image.shape)}")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].copy()
    out = torch.from_numpy(decoded).permute(2, 0, 1).to(image.device, image.dtype)
    return out / 127.5 - 1


def camera_artefacts(image: Tensor, config: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Blur, sensor noise and JPEG compression, each with its configured chance, in that order."""
    if torch.rand((), generator=generator).item() < config.blur_prob:
        image = gaussian_blur(image, _uniform(generator, 0.3, max(0.3, config.blur_sigma)))
    if torch.rand((), generator=generator).item() < config.noise_prob:
        std = _uniform(generator, 0.0, config.noise_std)
        noise = torch.randn(image.shape, generator=generator, dtype=image.dtype).to(image.device)
        image = (image + std * noise).clamp(-1, 1)
    if torch.rand((), generator=generator).item() < config.jpeg_prob:
        low, high = config.jpeg_quality
        image = jpeg_round_trip(image, int(torch.randint(low, high + 1, (), generator=generator)))
    return image


def augment_view(view: ViewSample, size: tuple[int, int], config: AugmentConfig,
                 generator: torch.Generator) -> ViewSample:
    """Random crop-resize to `size`, colour jitter and camera artefacts of one view."""
    view = crop_resize(view, size, generator, config.max_zoom)
    image = camera_artefacts(color_jitter(view.image, config, generator), config, generator)
    return replace(view, image=image)


def augment_pair(view1: ViewSample, view2: ViewSample, size: tuple[int, int], config: AugmentConfig,
                 seed: int) -> tuple[ViewSample, ViewSample]:
    """Augment both views of a pair (each with its own draws) and maybe swap them; pure in `seed`."""
    generator = torch.Generator().manual_seed(seed)
    if torch.rand((), generator=generator).item() < config.swap_prob:
        view1, view2 = view2, view1
    return augment_view(view1, size, config, generator), augment_view(view2, size, config, generator)
