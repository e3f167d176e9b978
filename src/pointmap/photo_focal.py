"""The focal length a photo was probably taken with, before any matching: the focal the matched poses are taken
with (`pipeline.repose`) and the start and prior of the bundle adjustment's (`pipeline.refine_on_matches`).

Where the file's EXIF gives the 35 mm equivalent focal length (phones and most cameras write it), that: the
equivalent focal length is the focal a 36 x 24 mm frame would need for the same field of view across its
diagonal, so in pixels it is f_35 x (photo diagonal in pixels) / 43.27 mm. Otherwise a typical field of view,
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
_FOCAL_LENGTH_35MM = 0xA405


def exif_focal_35mm(path: str | Path) -> float | None:
    """The 35 mm equivalent focal length (mm) the file's EXIF gives, or None (no file, no tag, or 0)."""
    if not Path(path).is_file():  # a video frame ("clip.mp4#frame=3")
        return None
    try:
        with PIL.Image.open(path) as image:
            value = image.getexif().get_ifd(_EXIF_IFD).get(_FOCAL_LENGTH_35MM)
    except (PIL.UnidentifiedImageError, OSError, ValueError):
        return None
    try:
        focal = float(value)
    except (TypeError, ValueError):
        return None
    return focal if 1.0 <= focal <= 5000.0 else None


def photo_focal(view: View) -> float:
    """The likely focal length of `view`'s photo, in the photo's own pixels (module docstring): the same for a
    photo held upright or sideways."""
    height, width = view.original_shape
    focal_35mm = exif_focal_35mm(view.path)
    if focal_35mm is None:
        return TYPICAL_FOCAL_RATIO * max(height, width)
    return focal_35mm * math.hypot(height, width) / FULL_FRAME_DIAGONAL_MM
