"""The photo's likely focal length: its EXIF 35 mm equivalent, else a typical field of view."""

import math

import PIL.Image
import pytest

from pointmap.images import load_images
from pointmap.photo_focal import TYPICAL_FOCAL_RATIO, exif_focal_35mm, photo_focal


def write_photo(path, size=(400, 300), focal_35mm=None):
    exif = PIL.Image.Exif()
    if focal_35mm is not None:
        exif.get_ifd(0x8769)[0xA405] = focal_35mm
    PIL.Image.new("RGB", size, (90, 120, 30)).save(path, exif=exif)
    return path


def test_exif_35mm_focal_gives_the_focal_in_pixels(tmp_path):
    """26 mm equivalent (a phone's main camera) on a 400 x 300 photo: 26 x 500 px / 43.27 mm = 300.4 px, a 67 deg
    field of view across the 400 px side."""
    path = write_photo(tmp_path / "phone.jpg", focal_35mm=26)
    assert exif_focal_35mm(path) == 26.0
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
        assert exif_focal_35mm(path) is None
        [view] = load_images([path], size=224, verbose=False)
        assert photo_focal(view) == pytest.approx(TYPICAL_FOCAL_RATIO * 400, rel=1e-12)
    assert exif_focal_35mm(tmp_path / "clip.mp4#frame=3") is None


def test_a_photo_stored_upright_has_the_same_focal(tmp_path):
    """The likely focal follows the photo's longer side and diagonal, whichever way it is held."""
    wide = write_photo(tmp_path / "wide.jpg", size=(400, 300), focal_35mm=26)
    tall = write_photo(tmp_path / "tall.jpg", size=(300, 400), focal_35mm=26)
    views = load_images([wide, tall], size=224, verbose=False)
    assert [photo_focal(view) for view in views] == pytest.approx([26 * 500 / math.hypot(36, 24)] * 2, rel=1e-12)
