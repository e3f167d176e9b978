"""The photo's likely focal length: its EXIF 35 mm equivalent, else its EXIF focal length times the sensor's
pixels per mm, else a typical field of view."""

import math

import PIL.Image
import pytest

from pointmap.images import load_images
from pointmap.photo_focal import TYPICAL_FOCAL_RATIO, exif_focal_px, photo_focal


def write_photo(path, size=(400, 300), focal_35mm=None, sensor_tags=None):
    """A plain photo with EXIF tags: the 35 mm equivalent focal, and `sensor_tags` (tag number -> value)."""
    exif = PIL.Image.Exif()
    if focal_35mm is not None:
        exif.get_ifd(0x8769)[0xA405] = focal_35mm
    for tag, value in (sensor_tags or {}).items():
        exif.get_ifd(0x8769)[tag] = value
    PIL.Image.new("RGB", size, (90, 120, 30)).save(path, exif=exif)
    return path


def canon_tags(focal_mm=55.0, pixels_per_inch=4720.44, camera_width=4272):
    """What a Canon EOS writes and its 35 mm tag lacks: focal length (mm), FocalPlaneXResolution (pixels per inch,
    unit 2) and the size it wrote them for (PixelXDimension, PixelYDimension)."""
    return {0x920A: focal_mm, 0xA20E: pixels_per_inch, 0xA210: 2, 0xA002: camera_width, 0xA003: camera_width * 2 // 3}


def test_exif_35mm_focal_gives_the_focal_in_pixels(tmp_path):
    """26 mm equivalent (a phone's main camera) on a 400 x 300 photo: 26 x 500 px / 43.27 mm = 300.4 px, a 67 deg
    field of view across the 400 px side."""
    path = write_photo(tmp_path / "phone.jpg", focal_35mm=26)
    assert exif_focal_px(path) == pytest.approx(26 * 500 / math.hypot(36, 24), rel=1e-12)
    [view] = load_images([path], size=224, verbose=False)
    assert photo_focal(view) == pytest.approx(26 * 500 / math.hypot(36, 24), rel=1e-12)
    assert photo_focal(view) == pytest.approx(300.4, abs=0.1)


def test_without_exif_a_typical_field_of_view(tmp_path):
    """No tag, a zero tag or no file at all (a video frame): 0.9 x the longer side, 360 px on 400 x 300."""
    plain = write_photo(tmp_path / "plain.jpg")
    zero = write_photo(tmp_path / "zero.jpg", focal_35mm=0)
    png = tmp_path / "plain.png"
    PIL.Image.new("RGB", (400, 300)).save(png)
    for path in (plain, zero, png):
        assert exif_focal_px(path) is None
        [view] = load_images([path], size=224, verbose=False)
        assert photo_focal(view) == pytest.approx(TYPICAL_FOCAL_RATIO * 400, rel=1e-12)
    assert exif_focal_px(tmp_path / "clip.mp4#frame=3") is None


def test_a_photo_stored_upright_has_the_same_focal(tmp_path):
    """The likely focal follows the photo's longer side and diagonal, whichever way it is held."""
    wide = write_photo(tmp_path / "wide.jpg", size=(400, 300), focal_35mm=26)
    tall = write_photo(tmp_path / "tall.jpg", size=(300, 400), focal_35mm=26)
    views = load_images([wide, tall], size=224, verbose=False)
    assert [photo_focal(view) for view in views] == pytest.approx([26 * 500 / math.hypot(36, 24)] * 2, rel=1e-12)


def test_focal_length_times_sensor_resolution_without_the_35mm_tag(tmp_path):
    """A Canon photo (55 mm, 4720.44 px per inch at 4272 px wide: 10221 px, 2.39 x its width) resized to 427 x 285
    keeps its camera's tags: 1021.7 px at its own size. The 35 mm tag wins where both are given."""
    resized = write_photo(tmp_path / "canon.jpg", size=(427, 285), sensor_tags=canon_tags())
    [view] = load_images([resized], size=224, verbose=False)
    assert photo_focal(view) == pytest.approx(55 * 4720.44 / 25.4 * 427 / 4272, rel=1e-9)
    assert photo_focal(view) == pytest.approx(1021.7, abs=0.1)
    at_camera_size = write_photo(tmp_path / "full.jpg", size=(427, 285), sensor_tags=canon_tags(camera_width=427))
    assert exif_focal_px(at_camera_size) == pytest.approx(55 * 4720.44 / 25.4, rel=1e-9)
    turned = write_photo(tmp_path / "turned.jpg", size=(285, 427), sensor_tags=canon_tags())  # stored upright since
    assert exif_focal_px(turned) == pytest.approx(55 * 4720.44 / 25.4 * 427 / 4272, rel=1e-9)
    both = write_photo(tmp_path / "both.jpg", size=(427, 285), focal_35mm=88, sensor_tags=canon_tags())
    assert exif_focal_px(both) == pytest.approx(88 * math.hypot(427, 285) / math.hypot(36, 24), rel=1e-12)


def test_implausible_exif_focals_give_the_typical_one(tmp_path):
    """Tags that put the focal beyond 30 x or under 0.25 x the longer side (pixels per cm written as per inch, a
    sensor resolution of 1) are wrong tags: the typical field of view instead."""
    for name, tags in (("long", canon_tags(pixels_per_inch=4720.44 * 100)), ("short", canon_tags(pixels_per_inch=1))):
        path = write_photo(tmp_path / f"{name}.jpg", size=(427, 285), sensor_tags=tags)
        assert exif_focal_px(path) is None
        [view] = load_images([path], size=224, verbose=False)
        assert photo_focal(view) == pytest.approx(TYPICAL_FOCAL_RATIO * 427, rel=1e-12)
