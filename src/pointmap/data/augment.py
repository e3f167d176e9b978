"""Training augmentations of whole batches of pairs, on the batch's device (the GPU while training).

Every random parameter of a pair (view swap, crop window, white balance and colour factors,
vignetting, blur, noise and JPEG choices) comes from one `torch.Generator` seeded by the pair's seed,
so an augmented pair is a pure function of its seed, its views and the target size, whatever batch it
is in. Sensor noise is a counter-based hash of (seed, pixel), identical on every device. Geometric
changes update the intrinsics exactly; photometric ones touch only the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from pointmap.data.sample import ViewBatch

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
    """Chance of JPEG-like compression artefacts (see `jpeg_artefacts`)."""
    jpeg_quality: tuple[int, int] = (30, 95)
    """JPEG quality range, inclusive."""
    swap_prob: float = 0.5
    """Chance of swapping the two views of a pair (the network is not symmetric)."""
    vignette_prob: float = 0.0
    """Chance of lens vignetting (see `vignette`); 0 leaves it out."""
    vignette_strength: float = 0.4
    """Largest darkening of the image corners: intensities are scaled by 1 - s (r / r_corner)^2, s drawn
    in [0, vignette_strength], r the distance to the image centre (at most 1)."""
    shot_noise_prob: float = 0.0
    """Chance of signal-dependent sensor noise (shot and read noise, see `shot_noise`); 0 leaves it out."""
    shot_noise_gain: float = 0.004
    """Largest shot-noise gain g, drawn in [0, g]: the noise variance grows by g per unit of intensity,
    intensities in [0, 1]."""
    read_noise_std: float = 0.01
    """Largest read-noise standard deviation, drawn in [0, read_noise_std], in [0, 1] intensity units."""
    white_balance_prob: float = 0.0
    """Chance of a white balance error (a colour cast, before the colour jitter); 0 leaves it out."""
    white_balance: float = 0.1
    """Red, green and blue gains each drawn in [1 - wb, 1 + wb]."""
    quarter_turn_prob: float = 0.0
    """Chance of turning both views of a pair by the same 1, 2 or 3 quarter turns (a camera held in portrait
    or upside down: photos without an EXIF orientation arrive like that); with non-square outputs, views turned an
    odd number of quarters are cropped at the transposed shape first. 0 leaves it out."""


# Uniform draws of one pair: the swap, then VIEW_DRAWS per view (slots named below).
VIEW_DRAWS = 13
ZOOM, CROP_X, CROP_Y, BRIGHT, CONTRAST, SATURATION, HUE, BLUR, BLUR_SIGMA, NOISE, NOISE_STD, JPEG, QUALITY = range(13)
# Then, from the same generator, LATE_DRAWS per view for the effects added later: drawn after all of
# the above, so that adding them changed none of the earlier parameters of a seed.
LATE_DRAWS = 9
VIGNETTE, VIGNETTE_STRENGTH, SHOT, SHOT_GAIN, READ_STD, BALANCE, GAIN_R, GAIN_G, GAIN_B = range(9)
# Shot noise hashes its field from the view's noise seed xor this 62-bit key, so that it is not the
# Gaussian noise field of the same view (seeds stay non-negative int64).
SHOT_NOISE_KEY = 0x1D8E4E27C47D124F
# Last, TURN_DRAWS per pair: whether its views turn, and by how many quarter turns.
TURN_DRAWS = 2


@dataclass
class ViewAugment:
    """Augmentation parameters of N views (CPU tensors: they decide which kernels run).

    Attributes:
        windows: (N, 4) int64 crop windows (x0, y0, width, height) in input pixels, of the output's aspect, or of
            its transpose for views that turn an odd number of quarters (they come out at the output's shape).
        colour: (N, 4) float64 brightness, contrast and saturation factors and hue rotation (turns).
        blur_sigma: (N,) float64 blur standard deviation in output pixels; 0: no blur.
        noise_std: (N,) float64 noise standard deviation; 0: no noise.
        noise_seed: (N,) int64 seed of each view's noise field.
        jpeg_quality: (N,) int64 JPEG quality in [1, 100]; 0: no JPEG artefacts.
        vignette: (N,) float64 vignetting strength (corner darkening) in [0, 1]; 0: no vignetting.
        shot_noise: (N, 2) float64 read-noise standard deviation and shot-noise gain, in [0, 1] intensity
            units; zeros: no signal-dependent noise.
        white_balance: (N, 3) float64 red, green and blue gains; ones: no colour cast.
        quarter_turns: (N,) int64 counter-clockwise quarter turns of the output view in [0, 3]; 0: none.
    """

    windows: Tensor
    colour: Tensor
    blur_sigma: Tensor
    noise_std: Tensor
    noise_seed: Tensor
    jpeg_quality: Tensor
    vignette: Tensor
    shot_noise: Tensor
    white_balance: Tensor
    quarter_turns: Tensor


def centre_windows(sizes: Tensor, out_size: tuple[int, int]) -> Tensor:
    """(N, 4) largest centred windows (x0, y0, w, h) of the aspect of `out_size` in views of `sizes` (N, 2)."""
    return crop_windows(sizes, out_size, torch.zeros(len(sizes), 3, dtype=torch.float64), max_zoom=0.0, centred=True)


def crop_windows(sizes: Tensor, out_size: tuple[int, int], draws: Tensor, max_zoom: float,
                 centred: bool = False) -> Tensor:
    """Crop windows of the aspect of `out_size`, zoomed in by 1 + max_zoom * draws[:, 0].

    Args:
        sizes: (N, 2) input (H, W).
        draws: (N, 3) uniforms in [0, 1): zoom, x placement, y placement.
    Returns:
        (N, 4) int64 (x0, y0, w, h): the largest window of the target aspect, shrunk by the zoom, placed
        uniformly among the integer positions (or centred, rounding down).
    """
    out_h, out_w = out_size
    in_h, in_w = sizes[:, 0].double(), sizes[:, 1].double()
    scale = torch.maximum(out_h / in_h, out_w / in_w) * (1 + max_zoom * draws[:, 0])
    crop_w = torch.minimum(in_w, (out_w / scale).round().clamp_min(1))
    crop_h = torch.minimum(in_h, (out_h / scale).round().clamp_min(1))
    if centred:
        x0, y0 = ((in_w - crop_w) / 2).floor(), ((in_h - crop_h) / 2).floor()
    else:
        x0 = (draws[:, 1] * (in_w - crop_w + 1)).floor()
        y0 = (draws[:, 2] * (in_h - crop_h + 1)).floor()
    return torch.stack([x0, y0, crop_w, crop_h], 1).long()


def draw_augments(seeds: Sequence[int], sizes: Tensor, out_size: tuple[int, int],
                  config: AugmentConfig) -> tuple[Tensor, ViewAugment]:
    """Per-pair random parameters of B pairs from their seeds.

    Args:
        seeds: B pair seeds.
        sizes: (2B, 2) input (H, W): the B first views, then the B second views.
    Returns:
        (order, params): `order` (2B,) reorders the views so that swapped pairs exchange theirs, and
        `params` describes the 2B views in that new order.
    """
    count = len(seeds)
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    draws = torch.stack([torch.rand(1 + 2 * VIEW_DRAWS, generator=gen, dtype=torch.float64) for gen in generators])
    late = torch.stack([torch.rand(2 * LATE_DRAWS, generator=gen, dtype=torch.float64) for gen in generators])
    turn = torch.stack([torch.rand(TURN_DRAWS, generator=gen, dtype=torch.float64) for gen in generators])
    swap = draws[:, 0] < config.swap_prob
    rows = torch.arange(count)
    order = torch.cat([torch.where(swap, rows + count, rows), torch.where(swap, rows, rows + count)])
    view = torch.cat([draws[:, 1 : 1 + VIEW_DRAWS], draws[:, 1 + VIEW_DRAWS :]])  # (2B, VIEW_DRAWS)
    late = torch.cat([late[:, :LATE_DRAWS], late[:, LATE_DRAWS:]])  # (2B, LATE_DRAWS)

    def spread(slot: int, low: float, high: float, table: Tensor = view) -> Tensor:
        return low + (high - low) * table[:, slot]

    turns = torch.where(turn[:, 0] < config.quarter_turn_prob, 1 + (3 * turn[:, 1]).long().clamp(max=2), 0)
    turns = torch.cat([turns, turns])  # both views of a pair alike
    crop_draws = view[:, [ZOOM, CROP_X, CROP_Y]]
    windows = crop_windows(sizes[order], out_size, crop_draws, config.max_zoom)
    sideways = turns % 2 == 1
    if out_size[0] != out_size[1] and bool(sideways.any()):  # cropped W x H, so that they come out H x W once turned
        turned_windows = crop_windows(sizes[order], out_size[::-1], crop_draws, config.max_zoom)
        windows = torch.where(sideways[:, None], turned_windows, windows)
    colour = torch.stack([
        spread(BRIGHT, 1 - config.brightness, 1 + config.brightness),
        spread(CONTRAST, 1 - config.contrast, 1 + config.contrast),
        spread(SATURATION, 1 - config.saturation, 1 + config.saturation),
        spread(HUE, -config.hue, config.hue),
    ], 1)
    blur = torch.where(view[:, BLUR] < config.blur_prob, spread(BLUR_SIGMA, 0.3, max(0.3, config.blur_sigma)), 0.0)
    noise = torch.where(view[:, NOISE] < config.noise_prob, spread(NOISE_STD, 0.0, config.noise_std), 0.0)
    low, high = config.jpeg_quality
    quality = (low + (view[:, QUALITY] * (high - low + 1)).floor()).long().clamp(max=high)
    quality = torch.where(view[:, JPEG] < config.jpeg_prob, quality, 0)
    # The two views of a pair get different noise: seed * 2 for the first, seed * 2 + 1 for the second.
    pair_seeds = torch.tensor([int(seed) & (2**62 - 1) for seed in seeds], dtype=torch.int64)
    noise_seed = torch.cat([pair_seeds * 2, pair_seeds * 2 + 1])
    strength = spread(VIGNETTE_STRENGTH, 0.0, config.vignette_strength, late)
    strength = torch.where(late[:, VIGNETTE] < config.vignette_prob, strength, 0.0)
    read_std = spread(READ_STD, 0.0, config.read_noise_std, late)
    shot = torch.stack([read_std, spread(SHOT_GAIN, 0.0, config.shot_noise_gain, late)], 1)
    shot = torch.where((late[:, SHOT] < config.shot_noise_prob)[:, None], shot, 0.0)
    wb = config.white_balance
    gains = torch.stack([spread(slot, 1 - wb, 1 + wb, late) for slot in (GAIN_R, GAIN_G, GAIN_B)], 1)
    gains = torch.where((late[:, BALANCE] < config.white_balance_prob)[:, None], gains, 1.0)
    return order, ViewAugment(windows, colour, blur, noise, noise_seed, quality, strength, shot, gains, turns)


def resample_views(views: ViewBatch, windows: Tensor, out_size: tuple[int, int]) -> ViewBatch:
    """Crop each view to its window and resize it to `out_size`, updating the intrinsics exactly.

    The image is resampled bilinearly after a Gaussian prefilter against aliasing where the window
    shrinks (sigma = (s - 1) / 2 input pixels for a shrink factor s, scikit-image's rule); depth and
    valid by nearest neighbour (never blended across depth edges).

    Args:
        views: N views (padded to a common size).
        windows: (N, 4) int64 (x0, y0, w, h) inside each view's true size.
        out_size: (H, W) output size.
    Returns:
        N views of (H, W) on the device of `views`.
    """
    out_h, out_w = out_size
    image = views.image
    device, dtype = image.device, image.dtype
    shrink = torch.maximum(windows[:, 2] / out_w, windows[:, 3] / out_h).double()
    prefilter = ((shrink - 1) / 2).clamp_min(0)
    if bool((prefilter > 0.25).any()):
        image = gaussian_blur(image, torch.where(prefilter > 0.25, prefilter, 0.0))
    # Pixel centres sit at integer coordinates (geometry/cameras.py): output pixel u samples the input
    # at x0 + (u + 0.5) * w / W_out - 0.5.
    win = windows.to(device, torch.float64)
    scale_x, scale_y = out_w / win[:, 2], out_h / win[:, 3]  # output pixels per input pixel
    pad_h, pad_w = image.shape[-2:]
    us = torch.arange(out_w, device=device, dtype=torch.float64)
    vs = torch.arange(out_h, device=device, dtype=torch.float64)
    src_x = win[:, :1] + (us + 0.5) / scale_x[:, None] - 0.5  # (N, W)
    src_y = win[:, 1:2] + (vs + 0.5) / scale_y[:, None] - 0.5  # (N, H)
    # grid_sample (align_corners=False) reads pixel x at the normalised coordinate (2x + 1) / W - 1.
    grid_x = ((2 * src_x + 1) / pad_w - 1).to(dtype)[:, None, :].expand(-1, out_h, -1)
    grid_y = ((2 * src_y + 1) / pad_h - 1).to(dtype)[:, :, None].expand(-1, -1, out_w)
    grid = torch.stack([grid_x, grid_y], -1)  # (N, H, W, 2)
    image = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    geometry = torch.stack([views.depth.to(dtype), views.valid.to(dtype)], 1)
    geometry = F.grid_sample(geometry, grid, mode="nearest", padding_mode="border", align_corners=False)
    depth = geometry[:, 0].to(views.depth.dtype)
    K = views.intrinsics.clone()
    sx, sy = scale_x.to(K.dtype)[:, None], scale_y.to(K.dtype)[:, None]
    K[:, 0, :2] *= sx
    K[:, 1, 1:2] *= sy
    K[:, 0, 2] = (K[:, 0, 2] - win[:, 0].to(K.dtype) + 0.5) * sx[:, 0] - 0.5
    K[:, 1, 2] = (K[:, 1, 2] - win[:, 1].to(K.dtype) + 0.5) * sy[:, 0] - 0.5
    sizes = torch.tensor([out_h, out_w]).expand(len(views), 2).clone()
    return ViewBatch(image=image.clamp(-1, 1), depth=depth, valid=(geometry[:, 1] > 0.5) & (depth > 0),
                     intrinsics=K, cam2world=views.cam2world, sizes=sizes)


def quarter_turn(views: ViewBatch) -> ViewBatch:
    """Views turned a quarter counter-clockwise (torch.rot90), intrinsics and poses updated exactly: H x W views
    come out W x H.

    New pixel (u', v') shows old pixel (W - 1 - v', u'). The camera turns with the image: a point at (x, y, z)
    in the old camera's frame is at (y, -x, z) in the new one, so fx and fy exchange, the principal point
    moves to (cy, W - 1 - cx), and cam2world gains that rotation's inverse on the right.
    """
    width = views.image.shape[-1]
    K = views.intrinsics
    turned_k = torch.zeros_like(K)
    turned_k[:, 0, 0], turned_k[:, 1, 1], turned_k[:, 2, 2] = K[:, 1, 1], K[:, 0, 0], 1
    turned_k[:, 0, 2], turned_k[:, 1, 2] = K[:, 1, 2], width - 1 - K[:, 0, 2]
    new_from_old = torch.eye(4, dtype=views.cam2world.dtype, device=views.cam2world.device)
    new_from_old[:2, :2] = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    return ViewBatch(
        image=torch.rot90(views.image, 1, (-2, -1)),
        depth=torch.rot90(views.depth, 1, (-2, -1)),
        valid=torch.rot90(views.valid, 1, (-2, -1)),
        intrinsics=turned_k,
        cam2world=views.cam2world @ new_from_old.T,
        sizes=views.sizes.flip(-1),
    )


def _luma(rgb: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma (ITU-R BT.601 weights)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=rgb.device, dtype=rgb.dtype)
    return torch.einsum("c,nchw->nhw", weights, rgb)[:, None]


def _hue_rotations(turns: Tensor) -> Tensor:
    """(N, 3, 3) RGB matrices rotating chroma about the grey axis by `turns` (N,) (a rotation in YIQ space)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                          dtype=torch.float64)
    angle = 2 * math.pi * turns.double()
    rotation = torch.zeros(len(turns), 3, 3, dtype=torch.float64)
    rotation[:, 0, 0] = 1
    rotation[:, 1, 1], rotation[:, 1, 2] = angle.cos(), -angle.sin()
    rotation[:, 2, 1], rotation[:, 2, 2] = angle.sin(), angle.cos()
    return torch.linalg.inv(to_yiq) @ rotation @ to_yiq


def color_jitter(images: Tensor, colour: Tensor) -> Tensor:
    """Brightness, contrast, saturation and hue of N images in [-1, 1], per image.

    Args:
        images: (N, 3, H, W).
        colour: (N, 4) brightness, contrast and saturation factors and hue rotation in turns.
    Returns:
        (N, 3, H, W) in [-1, 1].
    """
    factors = colour.to(images.device, images.dtype)[:, :3, None, None, None]
    rgb = (images + 1) / 2 * factors[:, 0]
    mean = _luma(rgb).mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * factors[:, 1] + mean
    grey = _luma(rgb)
    rgb = (rgb - grey) * factors[:, 2] + grey
    matrices = _hue_rotations(colour[:, 3].cpu()).to(images.device, images.dtype)
    rgb = torch.einsum("nij,njhw->nihw", matrices, rgb)
    return rgb.clamp(0, 1) * 2 - 1


def white_balance(images: Tensor, gains: Tensor) -> Tensor:
    """A colour cast: N images in [-1, 1] with their red, green and blue intensities scaled per image.

    Args:
        images: (N, 3, H, W).
        gains: (N, 3) factors on the [0, 1] intensities.
    Returns:
        (N, 3, H, W) in [-1, 1]: intensities pushed beyond 1 saturate, as a sensor channel does.
    """
    factors = gains.to(images.device, images.dtype)[:, :, None, None]
    return (((images + 1) / 2 * factors).clamp(0, 1) * 2 - 1).to(images.dtype)


def vignette(images: Tensor, strength: Tensor) -> Tensor:
    """Lens vignetting of N images in [-1, 1]: intensities scaled by 1 - s (r / r_corner)^2.

    r is the distance of a pixel centre from the image centre and r_corner that of the corner pixels,
    so the centre keeps its value and the corners lose the fraction s. The quadratic is the leading
    term of the cos^4 law of natural vignetting near the axis (strength fitted to the lens).

    Args:
        images: (N, C, H, W).
        strength: (N,) corner darkening s in [0, 1].
    Returns:
        (N, C, H, W) in [-1, 1].
    """
    height, width = images.shape[-2:]
    device, dtype = images.device, images.dtype
    dx = torch.arange(width, device=device, dtype=torch.float64) - (width - 1) / 2
    dy = torch.arange(height, device=device, dtype=torch.float64) - (height - 1) / 2
    corner2 = max(((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2, 1e-12)  # a 1x1 image has r = 0 only
    r2 = (dy[:, None] ** 2 + dx[None] ** 2) / corner2  # (H, W) in [0, 1]
    falloff = (1 - strength.to(device, torch.float64)[:, None, None] * r2).clamp_min(0)  # (N, H, W)
    return ((images + 1) * falloff[:, None].to(dtype) - 1).to(dtype)


def shot_noise(images: Tensor, shot: Tensor, seeds: Tensor) -> Tensor:
    """Signal-dependent sensor noise of N images in [-1, 1]: Poisson-Gaussian, in its Gaussian limit.

    Each channel of each pixel with intensity v in [0, 1] gets noise of standard deviation
    sqrt(read^2 + gain * v) (photon shot noise grows with the signal, read noise does not). The images
    are gamma-encoded, so v is only roughly the sensor's linear signal: the noise still grows with
    brightness, and read and gain are drawn from ranges anyway, not fitted to one sensor.

    Args:
        images: (N, C, H, W).
        shot: (N, 2) read-noise standard deviation and shot-noise gain, in [0, 1] intensity units.
        seeds: (N,) int64 seeds of the noise fields (`hashed_normal`).
    Returns:
        (N, C, H, W) in [-1, 1].
    """
    params = shot.to(images.device, torch.float64)[:, :, None, None, None]
    signal = ((images.double() + 1) / 2).clamp(0, 1)
    std = torch.sqrt(params[:, 0] ** 2 + params[:, 1] * signal)
    noise = hashed_normal(seeds, tuple(images.shape[1:]), images.device, torch.float64)
    return ((signal + std * noise).clamp(0, 1) * 2 - 1).to(images.dtype)


def gaussian_blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur of N images, each with its own sigma (pixels; 0 leaves it unchanged).

    Args:
        images: (N, C, H, W).
        sigma: (N,) standard deviations.
    Returns:
        (N, C, H, W), reflecting at the borders.
    """
    count, channels, height, width = images.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    if radius >= min(height, width):
        raise ValueError(f"blur sigma {float(sigma.max()):.2f} is too wide for {height}x{width} images; lower it")
    taps = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float64)
    widths = sigma.to(images.device, torch.float64).clamp_min(1e-6)[:, None]
    kernel = torch.exp(-0.5 * (taps / widths) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).to(images.dtype)  # (N, 2r+1)
    kernel = kernel.repeat_interleave(channels, 0)[:, None, None]  # (N*C, 1, 1, 2r+1)
    flat = F.pad(images.reshape(1, count * channels, height, width), (radius,) * 4, mode="reflect")
    flat = F.conv2d(flat, kernel, groups=count * channels)
    flat = F.conv2d(flat, kernel.transpose(-1, -2), groups=count * channels)
    return flat.reshape(count, channels, height, width)


MASK32 = 0xFFFFFFFF


def _hash32(x: Tensor) -> Tensor:
    """A 32-bit integer mixing function (xor-shift-multiply rounds) on int64 tensors holding uint32 values."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & MASK32
    x = ((x >> 16) ^ x) * 0x45D9F3B & MASK32
    return (x >> 16) ^ x


def hashed_normal(seeds: Tensor, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Standard normal fields, one per seed, as a pure function of (seed, element index) on any device.

    Args:
        seeds: (N,) int64.
        shape: the field shape per seed.
    Returns:
        (N, *shape): Box-Muller transforms of hashed uniform pairs (16-bit uniforms, so no value lies
        beyond 4.7 standard deviations: enough for sensor noise).
    """
    seeds = seeds.to(device)
    key1 = _hash32(seeds & MASK32)[:, None]
    key2 = _hash32((seeds >> 32) & MASK32 ^ 0x5BD1E995)[:, None]
    counter = torch.arange(math.prod(shape), device=device, dtype=torch.int64)[None]
    bits = _hash32(_hash32(counter ^ key1) ^ key2)  # 32 hashed bits per element: two 16-bit uniforms
    u1 = ((bits >> 16).double() + 0.5) / 2**16
    u2 = ((bits & 0xFFFF).double() + 0.5) / 2**16
    normal = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return normal.to(dtype).reshape(len(seeds), *shape)


# The example quantisation tables of the JPEG standard (ITU-T T.81, Annex K, tables K.1 and K.2).
LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61), (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56), (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77), (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101), (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99), (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99), (47, 66, 99, 99, 99, 99, 99, 99),
    (99,) * 8, (99,) * 8, (99,) * 8, (99,) * 8,
)
# Full-range YCbCr of JFIF (ITU-T T.871), on 0..255 values.
RGB_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def quantisation_tables(quality: Tensor) -> Tensor:
    """(N, 2, 8, 8) luma and chroma quantisation steps at each JPEG quality (N,) in [1, 100] (IJG scaling)."""
    quality = quality.double().clamp(1, 100)
    percent = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)[:, None, None, None]
    tables = torch.tensor([LUMA_TABLE, CHROMA_TABLE], dtype=torch.float64)[None]
    return ((tables * percent + 50) / 100).floor().clamp(1, 255)


def _dct_matrix(device: torch.device) -> Tensor:
    """(8, 8) orthonormal DCT-II: row k holds c_k cos((2n + 1) k pi / 16)."""
    k = torch.arange(8, dtype=torch.float64)[:, None]
    n = torch.arange(8, dtype=torch.float64)[None]
    matrix = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    matrix[0] /= math.sqrt(2)
    return matrix.to(device)


def _quantise_blocks(planes: Tensor, steps: Tensor) -> Tensor:
    """Block DCT, quantisation and inverse of (N, H, W) planes (H, W multiples of 8); steps (N, 8, 8)."""
    count, height, width = planes.shape
    dct = _dct_matrix(planes.device).to(planes.dtype)
    blocks = planes.reshape(count, height // 8, 8, width // 8, 8).transpose(2, 3)  # (N, H/8, W/8, 8, 8)
    coefficients = dct @ blocks @ dct.T
    step = steps.to(planes.device, planes.dtype)[:, None, None]
    blocks = dct.T @ (torch.round(coefficients / step) * step) @ dct
    return blocks.transpose(2, 3).reshape(count, height, width)


def jpeg_artefacts(images: Tensor, quality: Tensor) -> Tensor:
    """An approximation of a JPEG round trip of N images in [-1, 1], each at its own quality.

    What it keeps of baseline JPEG: full-range YCbCr, 4:2:0 chroma (2x2 means, bilinear upsampling),
    8x8 block DCT quantised by the standard tables scaled to the quality as libjpeg does, and 8-bit
    output. What it leaves out: entropy coding (lossless), libjpeg's integer DCT and its exact chroma
    filters; so values differ from a real codec by a level or two, while the block and ringing
    artefacts that training should be robust to are the same.

    Args:
        images: (N, 3, H, W) in [-1, 1].
        quality: (N,) int JPEG qualities in [1, 100].
    Returns:
        (N, 3, H, W) in [-1, 1], multiples of 1 / 127.5 away from -1.
    """
    count, _, height, width = images.shape
    work = images.float() if images.dtype in (torch.float16, torch.bfloat16) else images
    pad_h, pad_w = -height % 16, -width % 16  # whole 8x8 chroma blocks after 2x2 subsampling
    rgb = F.pad((work + 1) * 127.5, (0, pad_w, 0, pad_h), mode="replicate")
    to_ycc = torch.tensor(RGB_TO_YCBCR, dtype=torch.float64)
    level = torch.tensor([128.0, 0.0, 0.0], device=work.device, dtype=work.dtype)[None, :, None, None]
    # Level-shifted YCbCr: every plane centred on 0, as the DCT of baseline JPEG takes it.
    ycc = torch.einsum("ij,njhw->nihw", to_ycc.to(work.device, work.dtype), rgb) - level
    tables = quantisation_tables(quality.cpu())
    luma = _quantise_blocks(ycc[:, 0], tables[:, 0])
    chroma = F.avg_pool2d(ycc[:, 1:], 2)  # (N, 2, H/2, W/2)
    half_h, half_w = chroma.shape[-2:]
    chroma = _quantise_blocks(chroma.reshape(2 * count, half_h, half_w), tables[:, 1].repeat_interleave(2, 0))
    chroma = F.interpolate(chroma.reshape(count, 2, half_h, half_w), scale_factor=2, mode="bilinear",
                           align_corners=False)
    ycc = torch.cat([luma[:, None], chroma], 1) + level
    to_rgb = torch.linalg.inv(to_ycc).to(work.device, work.dtype)
    rgb = torch.einsum("ij,njhw->nihw", to_rgb, ycc)[..., :height, :width].round().clamp(0, 255)
    return (rgb / 127.5 - 1).to(images.dtype)


def _where(images: Tensor, chosen: Tensor, effect: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """`images` (N, 3, H, W) with `effect(images[rows], rows)` in the rows where `chosen` (N,) CPU bool is set."""
    if not bool(chosen.any()):
        return images
    rows = chosen.nonzero()[:, 0]
    on = rows.to(images.device)
    return images.index_copy(0, on, effect(images[on], rows))


def camera_artefacts(images: Tensor, params: ViewAugment) -> Tensor:
    """Vignetting, blur, Gaussian then signal-dependent sensor noise and JPEG artefacts of N images, in that
    order (lens, sensor, codec), each where its parameters ask for it."""

    def noisy(part: Tensor, rows: Tensor) -> Tensor:
        noise = hashed_normal(params.noise_seed[rows], tuple(part.shape[1:]), part.device, part.dtype)
        return (part + params.noise_std[rows].to(part.device, part.dtype)[:, None, None, None] * noise).clamp(-1, 1)

    def shot(part: Tensor, rows: Tensor) -> Tensor:
        return shot_noise(part, params.shot_noise[rows], params.noise_seed[rows] ^ SHOT_NOISE_KEY)

    images = _where(images, params.vignette > 0, lambda part, rows: vignette(part, params.vignette[rows]))
    images = _where(images, params.blur_sigma > 0, lambda part, rows: gaussian_blur(part, params.blur_sigma[rows]))
    images = _where(images, params.noise_std > 0, noisy)
    images = _where(images, (params.shot_noise > 0).any(1), shot)
    return _where(images, params.jpeg_quality > 0, lambda part, rows: jpeg_artefacts(part, params.jpeg_quality[rows]))


def augment_pairs(views: ViewBatch, seeds: Sequence[int], out_size: tuple[int, int],
                  config: AugmentConfig | None) -> ViewBatch:
    """Augment B pairs in one pass on their device; with `config=None`, only centre-crop them.

    Args:
        views: 2B views: the B first views, then the B second views (any sizes, padded).
        seeds: B pair seeds (ignored without a config).
        out_size: (H, W) of every output view.
    Returns:
        2B views at `out_size`, first views then second views (exchanged where a pair was swapped).
    """
    if config is None:
        return resample_views(views, centre_windows(views.sizes, out_size), out_size)
    if len(views) != 2 * len(seeds):
        raise ValueError(f"augment_pairs got {len(views)} views for {len(seeds)} seeds; pass two views per seed")
    order, params = draw_augments(seeds, views.sizes, out_size, config)
    sideways = params.quarter_turns % 2 == 1
    if out_size[0] == out_size[1] or not bool(sideways.any()):
        return _augment_views(views.index(order), params, out_size)
    # Views turned sideways have W x H windows (a 512 x 384 batch's turned views are 384 x 512 crops, portrait
    # photos held sideways): they are resampled apart and join the rest once turned.
    parts, rows = [], []
    for chosen, size in ((~sideways, out_size), (sideways, out_size[::-1])):
        chosen_rows = chosen.nonzero()[:, 0]
        if len(chosen_rows):
            parts.append(_augment_views(views.index(order[chosen_rows]), _rows_of(params, chosen_rows), size))
            rows.append(chosen_rows)
    return _joined(parts, rows)


def _augment_views(views: ViewBatch, params: ViewAugment, out_size: tuple[int, int]) -> ViewBatch:
    """N views cropped to out_size and augmented by their N params, each turned last."""
    out = resample_views(views, params.windows, out_size)
    cast = (params.white_balance != 1).any(1)
    image = _where(out.image, cast, lambda part, rows: white_balance(part, params.white_balance[rows]))
    image = camera_artefacts(color_jitter(image, params.colour), params)
    return quarter_turns(replace(out, image=image), params.quarter_turns)


def _rows_of(params: ViewAugment, rows: Tensor) -> ViewAugment:
    return ViewAugment(**{field.name: getattr(params, field.name)[rows] for field in fields(ViewAugment)})


def quarter_turns(views: ViewBatch, turns: Tensor) -> ViewBatch:
    """Each view turned counter-clockwise by its number of quarter turns (see `quarter_turn`).

    Args:
        views: N views of one shape, square unless every view turns an odd number of quarters or none does
            (the turned views keep one shape).
        turns: (N,) int64 in [0, 3].
    """
    groups, rows = [], []
    for count in range(4):
        chosen = (turns == count).nonzero()[:, 0]
        if len(chosen):
            group = views.index(chosen)
            for _ in range(count):
                group = quarter_turn(group)
            groups.append(group)
            rows.append(chosen)
    shapes = {tuple(group.image.shape[-2:]) for group in groups}
    if len(shapes) > 1:
        raise ValueError(f"quarter_turns: turning these {tuple(views.image.shape[-2:])} views gives shapes {shapes}; "
                         "non-square views must all turn an odd number of quarters or all an even one")
    return _joined(groups, rows)


def _joined(parts: list[ViewBatch], rows: list[Tensor]) -> ViewBatch:
    """The views of `parts` in one batch, each part's views put back at its `rows` (together 0..N-1)."""
    joined = ViewBatch(**{field.name: torch.cat([getattr(part, field.name) for part in parts])
                          for field in fields(ViewBatch)})
    return joined.index(torch.argsort(torch.cat(rows)))
