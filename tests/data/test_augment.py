"""Batched augmentations: intrinsics follow crops exactly, photometric changes match closed forms."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from pointmap.data.augment import (
    AugmentConfig,
    ViewAugment,
    augment_pairs,
    camera_artefacts,
    centre_windows,
    color_jitter,
    crop_windows,
    draw_augments,
    gaussian_blur,
    hashed_normal,
    jpeg_artefacts,
    quantisation_tables,
    quarter_turn,
    quarter_turns,
    resample_views,
    shot_noise,
    training_resolutions,
    vignette,
    white_balance,
)
from pointmap.data.sample import ViewBatch, ViewSample
from pointmap.geometry.cameras import depth_to_points, transform_points

OFF = AugmentConfig(max_zoom=0, brightness=0, contrast=0, saturation=0, hue=0, noise_prob=0, blur_prob=0,
                    jpeg_prob=0, swap_prob=0)


def _ramp_view(height: int = 48, width: int = 64) -> ViewSample:
    """Channel 0 = x / W, channel 1 = y / H (linear in the pixel coordinates), constant depth 2."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    image = torch.stack([xs / width, ys / height, torch.zeros_like(xs)])
    K = torch.tensor([[50.0, 0, 31.0], [0, 52.0, 23.5], [0, 0, 1]])
    return ViewSample(image=image, depth=torch.full((height, width), 2.0), valid=torch.ones(height, width, dtype=bool),
                      intrinsics=K, cam2world=torch.eye(4), source="ramp")


def test_intrinsics_of_a_hand_computed_crop_and_zoom_project_a_point_onto_its_pixel():
    # Window x0=8, y0=4, 32x24 of a 48x64 view, resized to 12x16: half scale.
    view = _ramp_view()
    out = resample_views(ViewBatch.stack([view]), torch.tensor([[8, 4, 32, 24]]), (12, 16))
    # fx' = 50 / 2, cx' = (31 - 8 + 0.5) / 2 - 0.5 = 11.25; fy' = 52 / 2, cy' = (23.5 - 4 + 0.5) / 2 - 0.5 = 9.5.
    expected = torch.tensor([[25.0, 0, 11.25], [0, 26.0, 9.5], [0, 0, 1]])
    torch.testing.assert_close(out.intrinsics[0], expected)
    # The point (0.2, -0.1, 2) in the camera frame: input pixel (36, 20.9), so output pixel (13.75, 8.2).
    point = torch.tensor([0.2, -0.1, 2.0])
    projected = out.intrinsics[0] @ point
    u, v = (projected[:2] / projected[2]).tolist()
    assert (u, v) == pytest.approx((13.75, 8.2))
    # The ramp at the output pixels around it reads the input pixel the point projects to there.
    col, row = math.floor(u), math.floor(v)
    tu, tv = u - col, v - row
    patch = out.image[0, :2, row : row + 2, col : col + 2]
    read = (patch[:, 0, 0] * (1 - tu) * (1 - tv) + patch[:, 0, 1] * tu * (1 - tv) + patch[:, 1, 0] * (1 - tu) * tv
            + patch[:, 1, 1] * tu * tv)
    torch.testing.assert_close(read * torch.tensor([64.0, 48.0]), torch.tensor([36.0, 20.9]), atol=0.05, rtol=0)
    assert out.depth.shape == (1, 12, 16) and torch.all(out.depth == 2.0) and out.valid.all()


@pytest.mark.parametrize("size", [(48, 64), (24, 32), (32, 32), (40, 24), (96, 128)])
@pytest.mark.parametrize("seed", [None, 3])
def test_intrinsics_follow_the_pixels(size, seed):
    view = _ramp_view()
    sizes = torch.tensor([[48, 64]])
    if seed is None:
        windows = centre_windows(sizes, size)
    else:
        draws = torch.rand(1, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        windows = crop_windows(sizes, size, draws, max_zoom=0.5)
    out = resample_views(ViewBatch.stack([view]), windows, size)
    assert out.image.shape == (1, 3, *size) and out.depth.shape == (1, *size)
    # Map each output pixel back to source pixel coordinates through the two K: the ramp must agree.
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    K_in, K_out = view.intrinsics, out.intrinsics[0]
    src_x = (xs - K_out[0, 2]) / K_out[0, 0] * K_in[0, 0] + K_in[0, 2]
    src_y = (ys - K_out[1, 2]) / K_out[1, 1] * K_in[1, 1] + K_in[1, 2]
    inner = (slice(3, -3), slice(3, -3))  # the anti-alias prefilter reflects at the border
    # Bilinear reads of a ramp are exact and a symmetric prefilter keeps it; a wrong principal point
    # (the half-pixel convention) would be off by 0.25 px or more.
    torch.testing.assert_close(out.image[0, 0][inner] * 64, src_x[inner], atol=0.02, rtol=0)
    torch.testing.assert_close(out.image[0, 1][inner] * 48, src_y[inner], atol=0.02, rtol=0)
    assert torch.all(out.depth == 2.0) and out.valid.all()


def test_windows_zoom_and_stay_inside():
    sizes = torch.tensor([[48, 64], [240, 240], [300, 200]])
    draws = torch.tensor([[0.0, 0.0, 0.0], [1.0 - 1e-9, 1.0 - 1e-9, 1.0 - 1e-9], [0.5, 0.5, 0.5]], dtype=torch.float64)
    windows = crop_windows(sizes, (224, 224), draws, max_zoom=0.3)
    # Largest square of 48x64 is 48x48 at the left; 240 at full zoom 1.3: round(224 / (224 / 240 * 1.3)) = 185
    # placed at the far corner 240 - 185 = 55; 200x300 at zoom 1.15: round(200 / 1.15) = 174 wide and high.
    assert windows.tolist() == [[0, 0, 48, 48], [55, 55, 185, 185], [13, 63, 174, 174]]
    assert centre_windows(torch.tensor([[48, 64]]), (24, 24)).tolist() == [[8, 0, 48, 48]]


def test_centre_crop_of_the_same_size_is_the_identity():
    view = _ramp_view()
    out = augment_pairs(ViewBatch.stack([view]), [], (48, 64), None)
    torch.testing.assert_close(out.image[0], view.image)
    torch.testing.assert_close(out.intrinsics[0], view.intrinsics)
    assert torch.equal(out.depth[0], view.depth) and out.valid.all()


def test_padded_views_of_different_sizes_crop_as_they_would_alone():
    small, large = _ramp_view(48, 64), _ramp_view(60, 80)
    batch = ViewBatch.stack([small, large])
    assert batch.image.shape == (2, 3, 60, 80) and batch.sizes.tolist() == [[48, 64], [60, 80]]
    assert not batch.valid[0, 48:].any() and torch.equal(batch.image[0, :, 47, :64], batch.image[0, :, 59, :64])
    together = augment_pairs(batch, [], (32, 32), None)
    alone = augment_pairs(ViewBatch.stack([small]), [], (32, 32), None)
    torch.testing.assert_close(together.image[0], alone.image[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(together.intrinsics[0], alone.intrinsics[0])
    # Back out of the padded batch: each view at its true size, as it went in.
    for row, view in enumerate((small, large)):
        back = batch.sample(row, "again")
        assert back.source == "again"
        for name in ("image", "depth", "valid", "intrinsics", "cam2world"):
            assert torch.equal(getattr(back, name), getattr(view, name)), name


def test_training_resolutions():
    assert training_resolutions(224) == [(224, 224)]
    sizes = training_resolutions(512)
    assert len(sizes) == 10 and (384, 512) in sizes and (512, 160) in sizes
    assert all(h % 16 == 0 and w % 16 == 0 and max(h, w) == 512 for h, w in sizes)
    with pytest.raises(ValueError, match="224 and 512"):
        training_resolutions(300)


def test_colour_ops_on_constant_images():
    grey = torch.full((4, 3, 8, 8), 0.2)  # (0.2 + 1) / 2 = 0.6 in [0, 1]
    colour = torch.tensor([[1.5, 1.0, 1.0, 0.0], [1.0, 0.3, 1.0, 0.0], [1.0, 1.0, 0.2, 0.0], [1.0, 1.0, 1.0, 0.3]],
                          dtype=torch.float64)
    out = color_jitter(grey, colour)
    # Brightness 1.5: 0.6 -> 0.9 -> 0.8 in [-1, 1]; contrast about the mean, saturation about grey and a hue
    # rotation about the grey axis all leave a grey constant unchanged.
    expected = torch.tensor([0.8, 0.2, 0.2, 0.2])[:, None, None, None].expand(4, 3, 8, 8)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    red = torch.tensor([0.6, -0.2, -0.4])[None, :, None, None].expand(3, 3, 2, 2)
    turned = color_jitter(red, torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.5]],
                                            dtype=torch.float64))
    luma = 0.299 * 0.8 + 0.587 * 0.4 + 0.114 * 0.3  # saturation 0: the luma of (0.8, 0.4, 0.3) in [0, 1]
    torch.testing.assert_close(turned[0], torch.full((3, 2, 2), 2 * luma - 1), atol=1e-5, rtol=0)
    torch.testing.assert_close(turned[1], red[1], atol=1e-5, rtol=0)  # a full turn
    assert (turned[2] - red[2]).abs().max() > 0.1  # half a turn changes the colour


def test_blur_keeps_constants_smooths_an_impulse_and_sigma_zero_is_the_identity():
    constant = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(constant, torch.tensor([1.0])), constant)
    impulse = torch.zeros(2, 3, 15, 15)
    impulse[:, :, 7, 7] = 1
    blurred = gaussian_blur(impulse, torch.tensor([1.0, 0.0]))
    assert blurred[0].sum(dim=(1, 2)).allclose(torch.ones(3), atol=1e-5)
    assert blurred[0, 0, 7, 7] == pytest.approx(1 / (2 * math.pi), rel=0.05)  # peak of a unit 2D Gaussian
    torch.testing.assert_close(blurred[1], impulse[1])


def test_hashed_noise_is_standard_normal_and_seeded():
    noise = hashed_normal(torch.tensor([5, 6, 5]), (3, 32, 32), torch.device("cpu"), torch.float32)
    assert torch.equal(noise[0], noise[2]) and not torch.equal(noise[0], noise[1])
    assert abs(noise.mean().item()) < 0.03 and abs(noise.std().item() - 1) < 0.03
    assert abs(torch.corrcoef(noise[:2].reshape(2, -1))[0, 1].item()) < 0.05


def test_jpeg_quantisation_tables_follow_libjpeg_scaling():
    tables = quantisation_tables(torch.tensor([50, 100, 10]))
    assert tables[0, 0, 0, 0] == 16 and tables[0, 1, 7, 7] == 99  # quality 50: the standard's tables
    assert torch.all(tables[1] == 1)
    assert tables[2, 0, 0, 0] == 80 and tables[2, 0, 0, 1] == 55  # scale 500 %: 16 -> 80, 11 -> 55


def test_jpeg_of_block_constant_grey_quantises_the_dc_term_in_closed_form():
    # Grey 16x16 blocks: chroma is 0, each 8x8 luma block is its DC term 8 (v - 128) quantised by 80 at
    # quality 10, so a level v comes back as 128 + 10 round((v - 128) / 10).
    levels = torch.tensor([[150.0, 100.0], [128.0, 31.0]])
    image = (levels.repeat_interleave(16, 0).repeat_interleave(16, 1) / 127.5 - 1).expand(1, 3, 32, 32)
    out = (jpeg_artefacts(image, torch.tensor([10])) + 1) * 127.5
    expected = torch.tensor([[148.0, 98.0], [128.0, 28.0]]).repeat_interleave(16, 0).repeat_interleave(16, 1)
    torch.testing.assert_close(out[0], expected.expand(3, 32, 32), atol=1e-3, rtol=0)


def test_jpeg_is_near_identity_at_quality_100_and_changes_blocks_at_low_quality():
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 40), torch.linspace(-1, 1, 40), indexing="ij")
    image = (torch.stack([xs, ys, xs * ys]) * 0.8)[None]
    texture = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = jpeg_artefacts(torch.cat([image, texture]), torch.tensor([100, 100]))
    error = (out[0] - image[0]).abs() * 127.5  # in 8-bit levels
    # Smooth: DCT rounding and chroma averaging only, except at the edges (chroma upsampling clamps there).
    assert error[:, 1:-1, 1:-1].max() < 1.5 and error.mean() < 0.5
    low = jpeg_artefacts(torch.cat([image, texture]), torch.tensor([10, 10]))
    assert (low[0] - image[0]).abs().mean() * 127.5 > 4 * error.mean()
    assert (low[1] - texture[0]).abs().mean() > 0.2  # texture is lost
    assert out.shape == (2, 3, 40, 40)


def _neutral_params(count: int, **fields: torch.Tensor) -> ViewAugment:
    """ViewAugment of `count` views that asks for no effect, except the given fields."""
    neutral = dict(
        windows=torch.zeros(count, 4, dtype=torch.long),
        colour=torch.zeros(count, 4, dtype=torch.float64),
        blur_sigma=torch.zeros(count, dtype=torch.float64),
        noise_std=torch.zeros(count, dtype=torch.float64),
        noise_seed=torch.arange(1, count + 1),
        jpeg_quality=torch.zeros(count, dtype=torch.long),
        vignette=torch.zeros(count, dtype=torch.float64),
        shot_noise=torch.zeros(count, 2, dtype=torch.float64),
        white_balance=torch.ones(count, 3, dtype=torch.float64),
        quarter_turns=torch.zeros(count, dtype=torch.long),
    )
    return ViewAugment(**{**neutral, **fields})


def test_camera_artefacts_touch_only_the_views_that_draw_them():
    images = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    params = _neutral_params(
        5,
        blur_sigma=torch.tensor([1.0, 0, 0, 0, 0], dtype=torch.float64),
        jpeg_quality=torch.tensor([0, 0, 20, 0, 0]),
        vignette=torch.tensor([0, 0, 0, 0.5, 0], dtype=torch.float64),
        shot_noise=torch.tensor([[0, 0]] * 4 + [[0.01, 0.004]], dtype=torch.float64),
    )
    out = camera_artefacts(images, params)
    changed = [not torch.equal(out[i], images[i]) for i in range(5)]
    assert changed == [True, False, True, True, True]


def test_vignette_darkens_the_corners_by_the_strength_and_keeps_the_centre():
    grey = torch.full((3, 3, 9, 13), 0.2)  # intensity (0.2 + 1) / 2 = 0.6
    out = vignette(grey, torch.tensor([0.3, 0.0, 1.0], dtype=torch.float64))
    intensity = (out + 1) / 2
    # The centre pixel (4, 6) has r = 0; the corners r = r_corner, so they keep 1 - s of their intensity.
    torch.testing.assert_close(intensity[:, :, 4, 6], torch.full((3, 3), 0.6), atol=1e-6, rtol=0)
    for row, col in ((0, 0), (0, 12), (8, 0), (8, 12)):
        torch.testing.assert_close(
            intensity[:, :, row, col], torch.tensor([0.42, 0.6, 0.0])[:, None].expand(3, 3), atol=1e-6, rtol=0
        )
    # The middle of the left edge: (r / r_corner)^2 = 6^2 / (6^2 + 4^2) = 9 / 13.
    assert intensity[0, 0, 4, 0].item() == pytest.approx(0.6 * (1 - 0.3 * 9 / 13), abs=1e-6)
    torch.testing.assert_close(out[1], grey[1], atol=1e-7, rtol=0)  # strength 0: the identity (float round trip)
    assert torch.all(intensity[0].diff(dim=-1)[:, :, :6] > 0)  # brightens towards the centre


def test_draw_augments_follows_the_probabilities():
    seeds = list(range(2000))
    sizes = torch.tensor([[240, 240]]).expand(4000, 2)
    config = AugmentConfig(blur_prob=0.2, noise_prob=0.5, jpeg_prob=0.3, jpeg_quality=(30, 95), swap_prob=0.25)
    order, params = draw_augments(seeds, sizes, (224, 224), config)
    assert abs((order[:2000] >= 2000).float().mean() - 0.25) < 0.03
    assert sorted(order.tolist()) == list(range(4000))
    assert abs((params.blur_sigma > 0).double().mean() - 0.2) < 0.03
    assert abs((params.noise_std > 0).double().mean() - 0.5) < 0.03
    quality = params.jpeg_quality[params.jpeg_quality > 0]
    assert abs(len(quality) / 4000 - 0.3) < 0.03 and quality.min() == 30 and quality.max() == 95
    assert params.windows[:, 2].min() >= round(224 / 1.3) and params.windows[:, 2].max() == 240


def test_augmented_pairs_are_functions_of_their_seeds_not_their_batch():
    views = [_ramp_view(), _ramp_view()]
    views[1].image = views[1].image.flip(-1)
    config = AugmentConfig(noise_prob=0.7, blur_prob=0.5, jpeg_prob=0.5)
    seeds = [7, 8, 9, 10]
    batch = ViewBatch.stack([views[0]] * 4 + [views[1]] * 4)
    together = augment_pairs(batch, seeds, (32, 32), config)
    for i, seed in enumerate(seeds):
        alone = augment_pairs(ViewBatch.stack(views), [seed], (32, 32), config)
        torch.testing.assert_close(together.image[[i, 4 + i]], alone.image, atol=1e-4, rtol=0)
        assert torch.equal(together.intrinsics[[i, 4 + i]], alone.intrinsics)
    assert not torch.equal(together.image[0], together.image[1])
    assert together.image.min() >= -1 and together.image.max() <= 1


def test_swap_exchanges_the_views_with_their_cameras():
    view1, view2 = _ramp_view(), _ramp_view()
    view2.image = view2.image.flip(-1)
    view2.intrinsics = torch.tensor([[40.0, 0, 32.0], [0, 41.0, 24.0], [0, 0, 1]])
    view2.cam2world = torch.eye(4)
    view2.cam2world[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    pair = ViewBatch.stack([view1, view2])
    swapped = augment_pairs(pair, [0], (48, 64), AugmentConfig(**{**OFF.__dict__, "swap_prob": 1.0}))
    kept = augment_pairs(pair, [0], (48, 64), OFF)
    for out, (first, second) in ((swapped, (view2, view1)), (kept, (view1, view2))):
        torch.testing.assert_close(out.image, torch.stack([first.image, second.image]), atol=1e-6, rtol=0)
        torch.testing.assert_close(out.intrinsics, torch.stack([first.intrinsics, second.intrinsics]))
        assert torch.equal(out.cam2world, torch.stack([first.cam2world, second.cam2world]))


@pytest.mark.parametrize(
    ("level", "read_std", "gain"), [(0.5, 0.02, 0.01), (0.1, 0.01, 0.004), (0.8, 0.0, 0.004), (0.9, 0.02, 0.0)]
)
def test_shot_noise_std_follows_read_noise_and_gain(level, read_std, gain):
    flat = torch.full((2, 3, 64, 64), 2 * level - 1)
    shot = torch.tensor([[read_std, gain]] * 2, dtype=torch.float64)
    out = shot_noise(flat, shot, torch.tensor([11, 12]))
    intensity = (out.double() + 1) / 2
    expected = math.sqrt(read_std**2 + gain * level)  # 12288 samples: the std is measured to about 0.7 %
    for view in intensity:
        assert view.std().item() == pytest.approx(expected, rel=0.03)
        assert view.mean().item() == pytest.approx(level, abs=3 * expected / math.sqrt(view.numel()) + 1e-6)
    assert not torch.equal(out[0], out[1])
    torch.testing.assert_close(shot_noise(flat, shot, torch.tensor([11, 12])), out, atol=0, rtol=0)  # seeded
    # Zero read noise and gain: nothing changes but the float round trip.
    torch.testing.assert_close(shot_noise(flat, torch.zeros(2, 2, dtype=torch.float64), torch.tensor([1, 2])), flat)


def test_shot_noise_is_not_the_gaussian_noise_field_of_the_same_view():
    flat = torch.zeros(1, 3, 48, 48)
    both = _neutral_params(
        1,
        noise_std=torch.tensor([0.05], dtype=torch.float64),
        shot_noise=torch.tensor([[0.0, 0.01]], dtype=torch.float64),
    )
    gaussian = hashed_normal(both.noise_seed, (3, 48, 48), torch.device("cpu"), torch.float32)
    shot_only = camera_artefacts(flat, _neutral_params(1, shot_noise=both.shot_noise))
    # Intensity 0.5 everywhere: the shot-noise residual is a scaled normal field of its own.
    residual = (shot_only + 1) / 2 - 0.5
    assert abs(torch.corrcoef(torch.stack([residual.flatten(), gaussian.flatten()]))[0, 1].item()) < 0.05
    assert residual.std().item() == pytest.approx(math.sqrt(0.01 * 0.5), rel=0.03)


def test_white_balance_scales_each_channel_by_its_gain_and_saturates():
    generator = torch.Generator().manual_seed(4)
    intensity = 0.1 + 0.6 * torch.rand(2, 3, 16, 16, generator=generator)  # (0.1, 0.7): no gain of 1.2 saturates
    gains = torch.tensor([[1.1, 0.9, 1.05], [1.2, 1.0, 0.8]], dtype=torch.float64)
    out = (white_balance(intensity * 2 - 1, gains) + 1) / 2
    ratio = out.mean(dim=(2, 3)) / intensity.mean(dim=(2, 3))
    torch.testing.assert_close(ratio, gains.float(), atol=1e-5, rtol=0)
    bright = torch.full((1, 3, 2, 2), 0.9)  # intensity 0.95: a gain of 1.2 clips it at 1
    torch.testing.assert_close(
        white_balance(bright, torch.tensor([[1.2, 1.0, 0.5]], dtype=torch.float64))[0, :, 0, 0],
        torch.tensor([1.0, 0.9, 0.5 * 0.95 * 2 - 1]),
        atol=1e-6,
        rtol=0,
    )


def test_augment_pairs_applies_the_drawn_white_balance():
    view = _ramp_view()
    view.image = view.image * 0.5 - 0.5  # intensities in [0.25, 0.5): no drawn gain saturates them
    pair = ViewBatch.stack([view, view])
    cast = AugmentConfig(**{**OFF.__dict__, "white_balance_prob": 1.0, "white_balance": 0.2})
    _, params = draw_augments([5], pair.sizes, (48, 64), cast)
    plain = (augment_pairs(pair, [5], (48, 64), OFF).image.double() + 1) / 2
    balanced = (augment_pairs(pair, [5], (48, 64), cast).image.double() + 1) / 2
    ratio = balanced.mean(dim=(2, 3)) / plain.mean(dim=(2, 3))
    torch.testing.assert_close(ratio, params.white_balance, atol=1e-5, rtol=0)
    assert params.white_balance.min() >= 0.8 and params.white_balance.max() <= 1.2
    assert not torch.allclose(params.white_balance[0], params.white_balance[1])  # drawn per view


def test_draw_augments_follows_the_camera_effect_probabilities_without_shifting_the_other_draws():
    seeds = list(range(2000))
    sizes = torch.tensor([[240, 240]]).expand(4000, 2)
    base = AugmentConfig(blur_prob=0.2, noise_prob=0.5, jpeg_prob=0.3)
    config = replace(
        base,
        vignette_prob=0.3,
        vignette_strength=0.5,
        shot_noise_prob=0.5,
        shot_noise_gain=0.01,
        read_noise_std=0.02,
        white_balance_prob=0.4,
        white_balance=0.15,
    )
    order, params = draw_augments(seeds, sizes, (224, 224), config)
    assert abs((params.vignette > 0).double().mean() - 0.3) < 0.03 and params.vignette.max() <= 0.5
    assert abs((params.shot_noise > 0).any(1).double().mean() - 0.5) < 0.03
    assert params.shot_noise[:, 0].max() <= 0.02 and params.shot_noise[:, 1].max() <= 0.01
    cast = (params.white_balance != 1).any(1)
    assert abs(cast.double().mean() - 0.4) < 0.03
    assert params.white_balance.min() >= 0.85 and params.white_balance.max() <= 1.15
    assert torch.all(params.white_balance[~cast] == 1)
    # The new effects draw after the old ones: every other parameter of every seed is unchanged.
    base_order, base_params = draw_augments(seeds, sizes, (224, 224), base)
    assert torch.equal(order, base_order)
    for name in ("windows", "colour", "blur_sigma", "noise_std", "noise_seed", "jpeg_quality"):
        assert torch.equal(getattr(params, name), getattr(base_params, name)), name
    assert torch.all(base_params.vignette == 0) and torch.all(base_params.shot_noise == 0)
    assert torch.all(base_params.white_balance == 1)


def _two_sizes_pair_batch() -> ViewBatch:
    first, second = _ramp_view(48, 64), _ramp_view(40, 56)
    second.image = second.image.flip(-1) * 0.5 + 0.2
    return ViewBatch.stack([first, second, second, first])


def test_default_config_augments_as_before_the_camera_effects():
    # Recorded with the code of commit 5276043 (before vignetting, shot noise and white balance) on
    # the same inputs: the default config, and one that draws blur, noise and JPEG for most views.
    seeds = [7, 123456789]
    busy = AugmentConfig(noise_prob=0.9, blur_prob=0.9, jpeg_prob=0.9)
    for config, sums in (
        (AugmentConfig(), (4844.2325556874275, 5799.705339610577, 4223.266445715954)),
        (busy, (4836.557099103928, 5778.800180196762, 4184.715920103651)),
    ):
        order, params = draw_augments(seeds, _two_sizes_pair_batch().sizes, (32, 32), config)
        assert order.tolist() == [2, 3, 0, 1]
        assert params.windows.tolist() == [[17, 2, 37, 37], [15, 4, 38, 38], [16, 0, 46, 46], [13, 0, 37, 37]]
        assert params.colour[:, 0].tolist() == pytest.approx(
            [1.3380234939623896, 0.8670878623413247, 1.3598899572479972, 0.6427449079853614], abs=1e-15
        )
        image = augment_pairs(_two_sizes_pair_batch(), seeds, (32, 32), config).image.double()
        assert (image.sum().item(), image.abs().sum().item(), (image**2).sum().item()) == pytest.approx(sums, rel=1e-6)
    assert params.jpeg_quality.tolist() == [32, 64, 92, 44]
    assert params.noise_std.tolist() == pytest.approx(
        [0.002302233330521548, 0, 0.03579599261530567, 0.02278449321871924], abs=1e-15
    )
    # Probabilities 0 switch the effects off whatever their strengths: the output is bit-identical.
    strong = replace(busy, vignette_strength=0.9, shot_noise_gain=0.05, read_noise_std=0.05, white_balance=0.5)
    assert torch.equal(
        augment_pairs(_two_sizes_pair_batch(), seeds, (32, 32), strong).image,
        augment_pairs(_two_sizes_pair_batch(), seeds, (32, 32), busy).image,
    )


def test_camera_effects_are_functions_of_their_seeds():
    config = AugmentConfig(vignette_prob=1.0, shot_noise_prob=1.0, white_balance_prob=1.0)
    batch = _two_sizes_pair_batch()
    first = augment_pairs(batch, [3, 4], (32, 32), config).image
    assert torch.equal(first, augment_pairs(batch, [3, 4], (32, 32), config).image)
    assert not torch.equal(first, augment_pairs(batch, [5, 6], (32, 32), config).image)
    # Each pair alone comes out as in the batch (pair k's views are rows k and 2 + k).
    for k, seed in enumerate([3, 4]):
        alone = augment_pairs(batch.index(torch.tensor([k, 2 + k])), [seed], (32, 32), config).image
        torch.testing.assert_close(alone, first[[k, 2 + k]], atol=1e-4, rtol=0)
    off = augment_pairs(
        batch, [3, 4], (32, 32), replace(config, vignette_prob=0, shot_noise_prob=0, white_balance_prob=0)
    ).image
    assert (first - off).abs().mean() > 0.01
    assert first.min() >= -1 and first.max() <= 1


def _square_views(count: int = 3, size: int = 8) -> ViewBatch:
    """Random square views: random depth, valid mask, intrinsics (fx != fy, off-centre) and poses."""
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[9.0, 0, 3.2], [0, 7.0, 4.1], [0, 0, 1]]).expand(count, 3, 3).clone()
    q, _ = torch.linalg.qr(torch.randn(count, 3, 3, generator=g))
    pose = torch.eye(4).repeat(count, 1, 1)
    pose[:, :3, :3] = q * torch.linalg.det(q).sign()[:, None, None]
    pose[:, :3, 3] = torch.randn(count, 3, generator=g)
    return ViewBatch(image=torch.rand(count, 3, size, size, generator=g) * 2 - 1,
                     depth=1 + torch.rand(count, size, size, generator=g),
                     valid=torch.rand(count, size, size, generator=g) > 0.2, intrinsics=K, cam2world=pose,
                     sizes=torch.tensor([[size, size]] * count))


def test_quarter_turn_keeps_every_pixels_world_point():
    views = _square_views()
    turned = quarter_turn(views)
    before = transform_points(views.cam2world, depth_to_points(views.depth, views.intrinsics))  # (N, H, W, 3)
    after = transform_points(turned.cam2world, depth_to_points(turned.depth, turned.intrinsics))
    size = views.image.shape[-1]
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    # New pixel (u', v') shows old pixel (W - 1 - v', u'): the same world point.
    torch.testing.assert_close(after[:, rows, cols], before[:, cols, size - 1 - rows], rtol=0, atol=1e-5)
    assert torch.equal(turned.image[:, :, rows, cols], views.image[:, :, cols, size - 1 - rows])
    assert torch.equal(turned.valid[:, rows, cols], views.valid[:, cols, size - 1 - rows])
    torch.testing.assert_close(torch.linalg.det(turned.cam2world[:, :3, :3]), torch.ones(3))
    torch.testing.assert_close(turned.intrinsics[0], torch.tensor([[7.0, 0, 4.1], [0, 9.0, size - 1 - 3.2], [0, 0, 1]]))


def test_quarter_turns_by_count_and_four_make_the_identity():
    views = _square_views()
    out = quarter_turns(views, torch.tensor([0, 1, 2]))
    once, twice = quarter_turn(views), quarter_turn(quarter_turn(views))
    assert torch.equal(out.image[0], views.image[0]) and torch.equal(out.image[1], once.image[1])
    assert torch.equal(out.image[2], twice.image[2]) and torch.equal(out.cam2world[2], twice.cam2world[2])
    full = quarter_turn(quarter_turn(twice))
    assert torch.equal(full.image, views.image) and torch.equal(full.depth, views.depth)
    torch.testing.assert_close(full.intrinsics, views.intrinsics)
    torch.testing.assert_close(full.cam2world, views.cam2world)
    wide = ViewBatch.stack([_ramp_view(48, 64)] * 2)
    with pytest.raises(ValueError, match="non-square views must all turn an odd number of quarters or all an even"):
        quarter_turns(wide, torch.tensor([0, 1]))
    assert quarter_turns(wide, torch.tensor([1, 3])).image.shape[-2:] == (64, 48)


def test_quarter_turn_of_a_wide_view_keeps_every_pixels_world_point():
    views = ViewBatch.stack([_ramp_view(6, 8)])
    turned = quarter_turn(views)
    assert turned.image.shape[-2:] == (8, 6) and turned.sizes.tolist() == [[8, 6]]
    before = transform_points(views.cam2world, depth_to_points(views.depth, views.intrinsics))  # (1, 6, 8, 3)
    after = transform_points(turned.cam2world, depth_to_points(turned.depth, turned.intrinsics))  # (1, 8, 6, 3)
    rows, cols = torch.meshgrid(torch.arange(8), torch.arange(6), indexing="ij")
    # New pixel (u', v') shows old pixel (W - 1 - v', u') with W = 8, the old width.
    torch.testing.assert_close(after[:, rows, cols], before[:, cols, 7 - rows], rtol=0, atol=1e-5)
    assert torch.equal(turned.image[:, :, rows, cols], views.image[:, :, cols, 7 - rows])


def test_augment_pairs_turns_both_views_of_a_pair_alike_after_the_other_effects():
    seeds = list(range(40))
    views = ViewBatch.stack([_ramp_view()] * 80)
    turning = AugmentConfig(quarter_turn_prob=0.5)
    _, params = draw_augments(seeds, views.sizes, (32, 32), turning)
    turns = params.quarter_turns
    assert torch.equal(turns[:40], turns[40:]) and 10 <= int((turns[:40] > 0).sum()) <= 30
    assert set(turns.tolist()) == {0, 1, 2, 3}
    # The other draws do not move, and the turn comes last: the output is the unturned output, turned.
    plain = augment_pairs(views, seeds, (32, 32), AugmentConfig())
    out = augment_pairs(views, seeds, (32, 32), turning)
    expected = quarter_turns(plain, turns)
    for name in ("image", "depth", "valid", "intrinsics", "cam2world"):
        assert torch.equal(getattr(out, name), getattr(expected, name)), name


def test_augment_pairs_crops_views_turned_sideways_at_the_transposed_shape():
    seeds = list(range(24))
    views = ViewBatch.stack([_ramp_view(48, 64)] * 48)
    turning = AugmentConfig(quarter_turn_prob=0.6)
    _, params = draw_augments(seeds, views.sizes, (24, 32), turning)
    turns = params.quarter_turns
    odd = turns % 2 == 1
    assert 0 < int(odd.sum()) < len(turns)
    out = augment_pairs(views, seeds, (24, 32), turning)
    assert out.image.shape == (48, 3, 24, 32) and out.sizes.tolist() == [[24, 32]] * 48
    # Each view is the unturned output of its crop shape (32 x 24 where it turns sideways), turned.
    for size, rows in (((24, 32), (~odd).nonzero()[:, 0]), ((32, 24), odd.nonzero()[:, 0])):
        expected = quarter_turns(augment_pairs(views, seeds, size, AugmentConfig()).index(rows), turns[rows])
        for name in ("depth", "valid", "intrinsics", "cam2world"):
            assert torch.equal(getattr(out.index(rows), name), getattr(expected, name)), name
        # Pixels within float rounding: the blur ran on other views (its kernel width follows the largest sigma).
        torch.testing.assert_close(out.index(rows).image, expected.image, rtol=0, atol=1e-5)
