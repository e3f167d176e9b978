import warnings

import cv2
import numpy as np
import PIL.Image
import pytest
import torch

from pointmap.images import (
    MIN_IMAGE_SIDE,
    crop_box,
    expand_paths,
    load_images,
    preprocess,
    processed_shape,
    resized_size,
)

# (width, height) -> processed (H, W) at size 224 and 512, worked out by hand from the official rules:
# 512: longer side 512, other side round(side * 512 / long), each side cropped to a multiple of 16;
# 224: shorter side 224 (longer side round(224 * long / short)), then a centre 224 x 224 square.
OFFICIAL_SHAPES = [
    ((4032, 3024), (224, 224), (384, 512)),
    ((3024, 4032), (224, 224), (512, 384)),
    ((640, 480), (224, 224), (384, 512)),
    ((500, 333), (224, 224), (336, 512)),  # 512 x 341 resized: 341 -> 336
    ((224, 224), (224, 224), (384, 512)),  # square at 512: 4:3 landscape crop
    ((512, 512), (224, 224), (384, 512)),
    ((1920, 1080), (224, 224), (288, 512)),
    ((1080, 1920), (224, 224), (512, 288)),
    ((513, 512), (224, 224), (496, 512)),  # 512 x 511 resized: the odd side loses 15
    ((300, 200), (224, 224), (336, 512)),
    ((100, 75), (224, 224), (384, 512)),  # upscaled
    ((16, 16), (224, 224), (384, 512)),  # the smallest accepted image
    ((2000, 100), (224, 224), (16, 512)),  # 512 x 26 resized: one patch row
]


@pytest.mark.parametrize(("original", "shape224", "shape512"), OFFICIAL_SHAPES)
def test_official_shapes(original, shape224, shape512):
    assert processed_shape(*original, 224) == shape224
    assert processed_shape(*original, 512) == shape512


def test_crop_rules_for_odd_sizes_and_square_ok():
    assert resized_size(4032, 3024, 224) == (299, 224)
    assert resized_size(500, 333, 512) == (512, 341)
    # Odd width 511: cx = 255, half width 248, so columns 7..502 (the extra pixel goes on the left).
    assert crop_box(511, 300, 512) == (7, 6, 503, 294)
    assert crop_box(512, 512, 512) == (0, 64, 512, 448)
    assert crop_box(512, 512, 512, square_ok=True) == (0, 0, 512, 512)
    assert processed_shape(224, 224, 512, square_ok=True) == (512, 512)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (333, 500), (100, 75), (1000, 700)])
@pytest.mark.parametrize("size", [224, 512])
def test_real_images_get_the_official_shape(width, height, size):
    view = preprocess(PIL.Image.new("RGB", (width, height), (10, 20, 30)), size, "photo.png")
    assert view.img.shape == (3, *processed_shape(width, height, size))
    assert view.true_shape == view.img.shape[1:]
    assert view.original_shape == (height, width)
    assert view.img.dtype == torch.float32


def _blob_photo(width: int, height: int, x0: float, y0: float) -> PIL.Image.Image:
    """A grey photo with a Gaussian spot centred on the sub-pixel (x0, y0)."""
    ys, xs = np.mgrid[:height, :width]
    spot = np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * (0.03 * width) ** 2))
    grey = np.round(20 + 200 * spot).astype(np.uint8)
    return PIL.Image.fromarray(np.repeat(grey[..., None], 3, axis=-1))


@pytest.mark.parametrize(
    ("width", "height", "x0", "y0"),
    [(640, 480, 400.3, 150.7), (333, 500, 140.5, 300.2), (100, 75, 60.2, 30.6), (1000, 700, 480.8, 380.4)],
)
@pytest.mark.parametrize("size", [224, 512])
def test_to_original_maps_a_marker_back_to_the_photo(width, height, x0, y0, size):
    view = preprocess(_blob_photo(width, height, x0, y0), size, "marker.png")
    spot = np.clip((view.img[0].numpy() * 0.5 + 0.5) * 255 - 20, 0, None)
    spot = spot * (spot > 0.2 * spot.max())
    ys, xs = np.mgrid[: spot.shape[0], : spot.shape[1]]
    centre = np.array([(spot * xs).sum() / spot.sum(), (spot * ys).sum() / spot.sum(), 1.0])
    x, y, _ = view.to_original @ centre
    # A half-pixel slip in the convention would cost 0.5 * |scale - 1|: 0.57 px at 640 -> 299.
    assert abs(x - x0) < 0.1 and abs(y - y0) < 0.1


def test_normalisation_is_the_official_one(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(tmp_path / "a.png")
    (view,) = load_images(tmp_path / "a.png", size=224, verbose=False)  # 224 x 224 at 224: no resampling
    expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    assert torch.equal(view.img, (expected - 0.5) / 0.5)
    assert view.img.min() == -1 and view.img.max() == 1
    np.testing.assert_array_equal(view.to_original, np.eye(3))


def test_exif_orientation_is_applied(tmp_path):
    # Stored 64 wide x 48 high with a white block at the top-left; orientation 6 means "rotate 90 degrees
    # clockwise to display", so the displayed photo is 48 wide x 64 high with the block at the top-right.
    stored = np.zeros((48, 64, 3), dtype=np.uint8)
    stored[:16, :16] = 255
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    (view,) = load_images(tmp_path / "rotated.jpg", size=512, verbose=False)
    assert view.original_shape == (64, 48)
    assert view.true_shape == (512, 384)
    grey = view.img.mean(0)
    assert grey[:64, -64:].mean() > 0.9  # top-right is white
    assert grey[:64, :64].mean() < -0.9 and grey[-64:, -64:].mean() < -0.9


def _palette_image(size: tuple[int, int], colour: tuple[int, int, int]) -> PIL.Image.Image:
    image = PIL.Image.new("P", size, 0)
    image.putpalette(list(colour) * 256)
    return image


def test_colour_modes_become_8_bit_rgb(tmp_path):
    size = (32, 32)
    cases = {
        "grey.png": (PIL.Image.new("L", size, 100), 100),
        "palette.png": (_palette_image(size, (100, 100, 100)), 100),
        # Alpha is dropped (as the official .convert("RGB")), not composited on white.
        "rgba.png": (PIL.Image.new("RGBA", size, (100, 100, 100, 0)), 100),
        "grey16.png": (PIL.Image.fromarray(np.full((32, 32), 257 * 100, dtype=np.uint16)), 100),
        "a.webp": (PIL.Image.new("RGB", size, (100, 100, 100)), 100),
        "a.tiff": (PIL.Image.new("RGB", size, (100, 100, 100)), 100),
    }
    for name, (image, _) in cases.items():
        image.save(tmp_path / name, **({"lossless": True} if name.endswith("webp") else {}))
    # 16-bit colour written by OpenCV (Pillow keeps the high byte).
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.full((32, 32, 3), 257 * 100, dtype=np.uint16))
    cases["rgb16.png"] = (None, 100)
    for name, (_, value) in cases.items():
        (view,) = load_images(tmp_path / name, size=224, verbose=False)
        assert view.img.shape == (3, 224, 224), name
        torch.testing.assert_close(view.img, torch.full_like(view.img, (value / 255 - 0.5) / 0.5), msg=name)


def test_folders_globs_and_hidden_files(tmp_path):
    for name in ("b.png", "a.JPG", "c.webp"):
        PIL.Image.new("RGB", (40, 30)).save(tmp_path / name, format="PNG")
    (tmp_path / "._a.jpg").write_bytes(b"AppleDouble junk")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match=r"skipping 1 non-image files \(notes.txt\)"):
        views = load_images(tmp_path, size=224, verbose=False)
    assert [v.path.rsplit("/", 1)[-1] for v in views] == ["a.JPG", "b.png", "c.webp"]
    views = load_images(str(tmp_path / "*.png"), size=224, verbose=False)
    assert [v.path.rsplit("/", 1)[-1] for v in views] == ["b.png"]


def test_video_every_kth_frame(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(7):
        writer.write(np.full((48, 64, 3), 30 * k, dtype=np.uint8))
    writer.release()
    views = load_images(path, size=512, every=3, verbose=False)
    assert [v.path.rsplit("#", 1)[-1] for v in views] == ["frame=0", "frame=3", "frame=6"]
    grey = [float((v.img.mean() * 0.5 + 0.5) * 255) for v in views]
    np.testing.assert_allclose(grey, [0, 90, 180], atol=3)
    assert views[0].true_shape == (384, 512) and views[0].original_shape == (48, 64)


def test_bad_inputs_name_the_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"{empty}: folder holds no images"):
        load_images(empty, verbose=False)
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is not a JPEG")
    with pytest.raises(ValueError, match=f"{fake}: Pillow cannot read it as an image"):
        load_images(fake, verbose=False)
    tiny = tmp_path / "tiny.png"
    PIL.Image.new("RGB", (1, 1)).save(tiny)
    with pytest.raises(ValueError, match=f"{tiny}: 1x1 image is too small; .* {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE}"):
        load_images(tiny, verbose=False)
    thin = tmp_path / "thin.png"
    PIL.Image.new("RGB", (2000, 40)).save(thin)
    with pytest.raises(ValueError, match=f"{thin}: 2000x40 is too elongated"):
        load_images(thin, size=512, verbose=False)
    video = tmp_path / "broken.mp4"
    video.write_text("not a video")
    with pytest.raises(ValueError, match=f"{video}: OpenCV"):
        load_images(video, verbose=False)
    with pytest.raises(FileNotFoundError, match="missing.jpg: no such file"):
        load_images(tmp_path / "missing.jpg", verbose=False)
    with pytest.raises(ValueError, match="matches no file"):
        load_images(str(tmp_path / "*.heic"), verbose=False)
    with pytest.raises(ValueError, match="every=0"):
        load_images(tiny, every=0, verbose=False)


def test_expand_paths_keeps_images_and_videos_of_a_folder_and_warns_about_the_rest(tmp_path):
    for name in ("b.png", "a.JPG", "clip.mp4", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.warns(UserWarning, match=r"skipping 1 non-image files \(notes.txt\)"):
        files = expand_paths(tmp_path)
    assert [p.name for p in files] == ["a.JPG", "b.png", "clip.mp4"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # explicit files pass through untouched, without warnings
        assert expand_paths([tmp_path / "notes.txt", tmp_path / "b.png"])[0].name == "notes.txt"
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        expand_paths([tmp_path / "missing.jpg"])
