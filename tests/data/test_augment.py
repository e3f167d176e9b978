"""Augmentations: intrinsics follow crops and resizes exactly, photometric changes keep their invariants."""

from __future__ import annotations

import pytest
import torch

from pointmap.data.augment import (
    AugmentConfig,
    augment_pair,
    color_jitter,
    crop_resize,
    gaussian_blur,
    jpeg_round_trip,
    training_resolutions,
)
from pointmap.data.sample import ViewSample


def _ramp_view(height: int = 48, width: int = 64) -> ViewSample:
    """Channel 0 = x / W, channel 1 = y / H (linear in the pixel coordinates), constant depth 2."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    image = torch.stack([xs / width, ys / height, torch.zeros_like(xs)])
    K = torch.tensor([[50.0, 0, 31.0], [0, 52.0, 23.5], [0, 0, 1]])
    return ViewSample(image=image, depth=torch.full((height, width), 2.0), valid=torch.ones(height, width, dtype=bool),
                      intrinsics=K, cam2world=torch.eye(4), source="ramp")


@pytest.mark.parametrize("size", [(48, 64), (24, 32), (32, 32), (40, 24), (96, 128)])
@pytest.mark.parametrize("seed", [None, 3])
def test_intrinsics_follow_the_pixels(size, seed):
    view = _ramp_view()
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    out = crop_resize(view, size, generator, max_zoom=0.5)
    assert out.image.shape == (3, *size) and out.depth.shape == size
    # Map each output pixel back to source pixel coordinates through the two K: the ramp must agree.
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    K_in, K_out = view.intrinsics, out.intrinsics
    src_x = (xs - K_out[0, 2]) / K_out[0, 0] * K_in[0, 0] + K_in[0, 2]
    src_y = (ys - K_out[1, 2]) / K_out[1, 1] * K_in[1, 1] + K_in[1, 2]
    inner = (slice(3, -3), slice(3, -3))  # antialiasing filters reach past the border there
    # A discretised triangle filter at a fractional scale shifts a ramp by up to ~0.08 px; a wrong
    # principal point (the half-pixel convention) would be off by 0.25 px or more.
    tolerance_px = 0.1
    torch.testing.assert_close(out.image[0][inner] * 64, src_x[inner], atol=tolerance_px, rtol=0)
    torch.testing.assert_close(out.image[1][inner] * 48, src_y[inner], atol=tolerance_px, rtol=0)
    assert torch.all(out.depth == 2.0) and out.valid.all()


def test_centre_crop_of_the_same_size_is_the_identity():
    view = _ramp_view()
    out = crop_resize(view, (48, 64))
    torch.testing.assert_close(out.image, view.image)
    torch.testing.assert_close(out.intrinsics, view.intrinsics)


def test_training_resolutions():
    assert training_resolutions(224) == [(224, 224)]
    sizes = training_resolutions(512)
    assert len(sizes) == 10 and (384, 512) in sizes and (512, 160) in sizes
    assert all(h % 16 == 0 and w % 16 == 0 and max(h, w) == 512 for h, w in sizes)
    with pytest.raises(ValueError, match="224 and 512"):
        training_resolutions(300)


def test_augment_pair_is_a_function_of_its_seed():
    view1, view2 = _ramp_view(), _ramp_view()
    view2.image = view2.image.flip(-1)
    config = AugmentConfig(noise_prob=1.0, blur_prob=1.0, jpeg_prob=1.0)
    a1, a2 = augment_pair(view1, view2, (32, 32), config, seed=7)
    b1, b2 = augment_pair(view1, view2, (32, 32), config, seed=7)
    c1, _ = augment_pair(view1, view2, (32, 32), config, seed=8)
    assert torch.equal(a1.image, b1.image) and torch.equal(a2.image, b2.image)
    assert torch.equal(a1.intrinsics, b1.intrinsics)
    assert not torch.equal(a1.image, c1.image)
    assert a1.image.min() >= -1 and a1.image.max() <= 1


def test_swap_exchanges_the_views():
    view1, view2 = _ramp_view(), _ramp_view()
    view2.source = "second"
    off = AugmentConfig(max_zoom=0, brightness=0, contrast=0, saturation=0, hue=0, noise_prob=0, blur_prob=0,
                        jpeg_prob=0, swap_prob=1.0)
    out1, out2 = augment_pair(view1, view2, (48, 64), off, seed=0)
    assert out1.source == "second" and out2.source == "ramp"
    torch.testing.assert_close(out1.image, view2.image, atol=1e-6, rtol=0)


def test_color_jitter_keeps_grey_grey_and_a_full_hue_turn_changes_nothing():
    grey = torch.full((3, 8, 8), 0.2)
    config = AugmentConfig(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.5)
    out = color_jitter(grey, config, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[0], out[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], out[2], atol=1e-5, rtol=0)
    colourful = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.8 - 0.4
    identity = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0)
    torch.testing.assert_close(color_jitter(colourful, identity, torch.Generator()), colourful, atol=1e-5, rtol=0)


def test_blur_keeps_constants_and_smooths_an_impulse():
    constant = torch.full((3, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(constant, 1.0), constant)
    impulse = torch.zeros(3, 15, 15)
    impulse[:, 7, 7] = 1
    blurred = gaussian_blur(impulse, 1.0)
    assert blurred.sum(dim=(1, 2)).allclose(torch.ones(3), atol=1e-5)
    assert blurred[0, 7, 7] == pytest.approx(1 / (2 * torch.pi), rel=0.05)  # peak of a unit 2D Gaussian


def test_jpeg_round_trip_is_close_at_high_quality_and_worse_at_low():
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    image = torch.stack([xs, ys, xs * ys]) * 0.8
    error_high = (jpeg_round_trip(image, 95) - image).abs().mean()
    error_low = (jpeg_round_trip(image, 10) - image).abs().mean()
    assert error_high < 0.03 < error_low
