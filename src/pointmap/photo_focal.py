"""The focal length a photo was probably taken with, before any matching: the focal the matched poses are taken
with (`pipeline.repose`) and the start and prior of the bundle adjustment's (`pipeline.refine_on_matches`).

Where the file's EXIF gives the 35 mm equivalent focal length (phones and most cameras write it), that: the
equivalent focal length is the focal a 36 x 24 mm frame would need for the same field of view across its
diagonal, so in pixels it is f_35 x (photo diagonal in pixels) / 43.27 mm. Else, where it gives the focal length
in mm and the sensor's pixels per unit length (FocalPlaneXResolution, which cameras without the 35 mm tag write,
such as Canon's), their product, scaled to the file's longer side where the EXIF image size says the photo was
resized after the camera wrote it. Otherwise a typical field of view,
`TYPICAL_FOCAL_RATIO` times the photo's longer side. The bundled network's own focal estimate is noisier on
real photos than that guess (per photo 0.63 to 1.76 times the focal the matched multi-view adjustment finds on the
kermit, et and tum-office sets, a median 1.38 times the true one on 15 ScanNet pairs; session 22).
"""

from __future__ import annotations

import math
from pathlib import Path

import PIL.Image

from pointmap.images import View

TYPICAL_FOCAL_RATIO = 0.9
"""Focal length over the photo's longer side when EXIF says nothing: a 58 deg field of view across the longer
side. Between a phone's main camera (about 0.75), ScanNet's and TUM RGB-D's cameras (0.90, 0.84) and a compact
camera at its wide end (1.07: the Canon of the kermit and et sets)."""
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_EXIF_IFD = 0x8769
_FOCAL_LENGTH = 0x920A
_FOCAL_LENGTH_35MM = 0xA405
_PIXEL_X_DIMENSION = 0xA002
_PIXEL_Y_DIMENSION = 0xA003
_FOCAL_PLANE_X_RESOLUTION = 0xA20E
_FOCAL_PLANE_RESOLUTION_UNIT = 0xA210
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # EXIF's inch (the default), cm, and the mm and um some write
FOCAL_RATIO_RANGE = (0.25, 30.0)
"""Focal over the longer side that EXIF-derived focals must fall in (127 to 2 deg across the longer side): a tag
outside it is a wrong tag, not a lens."""


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _exif_tags(path: str | Path) -> dict | None:
    """The file's EXIF sub-IFD tags with its stored (width, height) under "size", or None (no file or no image)."""
    if not Path(path).is_file():  # a video frame ("clip.mp4#frame=3")
        return None
    try:
        with PIL.Image.open(path) as image:
            return {**image.getexif().get_ifd(_EXIF_IFD), "size": image.size}
    except (PIL.UnidentifiedImageError, OSError, ValueError):
        return None


def exif_focal_px(path: str | Path) -> float | None:
    """The focal length in the file's pixels that its EXIF gives (module docstring), or None."""
    tags = _exif_tags(path)
    if tags is None:
        return None
    width, height = tags["size"]
    focal_35mm = _number(tags.get(_FOCAL_LENGTH_35MM))
    if focal_35mm is not None:
        focal = focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
    else:
        focal_mm = _number(tags.get(_FOCAL_LENGTH))
        pixels_per_unit = _number(tags.get(_FOCAL_PLANE_X_RESOLUTION))
        unit_mm = _UNIT_MM.get(tags.get(_FOCAL_PLANE_RESOLUTION_UNIT, 2))
        if focal_mm is None or pixels_per_unit is None or unit_mm is None:
            return None
        # The longer side the camera wrote the tags for (whichever way the file was turned since): square pixels.
        camera_side = max(_number(tags.get(tag)) or 0.0 for tag in (_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION))
        focal = focal_mm * pixels_per_unit / unit_mm * max(width, height) / (camera_side or max(width, height))
    low, high = FOCAL_RATIO_RANGE
    return focal if low <= focal / max(width, height) <= high else None


def photo_focal(view: View) -> float:
    """The likely focal length of `view`'s photo, in the photo's own pixels (module docstring): the same for a
    photo held upright or sideways."""
    focal = exif_focal_px(view.path)
    return TYPICAL_FOCAL_RATIO * max(view.original_shape) if focal is None else focal
