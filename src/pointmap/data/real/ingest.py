"""Scene inputs: find them (photo folders, videos) and copy their frames, downscaled, into a work folder,
with the focal length each photo's EXIF implies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from pointmap.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, expand_paths, read_image, read_video
from pointmap.io_utils import atomic_path


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _has_images(folder: Path) -> bool:
    return any(
        p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") for p in folder.iterdir()
    )


def discover_scenes(inputs: list[Path]) -> dict[str, Path]:
    """Scene name -> input: a folder with photos or a video is one scene; a folder without photos
    contributes each of its sub-folders with photos and each of its videos (a download root).

    Raises ValueError when two scenes would get one name (rename a folder) or an input has no scene.
    """
    scenes: dict[str, Path] = {}

    def add(path: Path) -> None:
        name = path.stem if path.is_file() else path.name
        if name in scenes:
            raise ValueError(f"{path}: scene name {name!r} is also {scenes[name]}; rename one of them")
        scenes[name] = path

    for entry in inputs:
        path = Path(entry)
        if is_video(path) or (path.is_dir() and _has_images(path)):
            add(path)
        elif path.is_dir():
            children = sorted(c for c in path.iterdir() if not c.name.startswith("."))
            found = [c for c in children if is_video(c) or (c.is_dir() and _has_images(c))]
            if not found:
                raise ValueError(f"{path}: no photos, videos or photo sub-folders in it; pass scene folders or videos")
            for child in found:
                add(child)
        else:
            raise FileNotFoundError(f"{path}: not a folder or a video file ({', '.join(VIDEO_EXTENSIONS)})")
    return scenes


@dataclass(frozen=True)
class Frame:
    """Where a written frame came from, and the focal length its EXIF gives, in pixels of the written frame."""

    origin: str
    focal_px: float | None = None


_EXIF_IFD = 0x8769
_FOCAL_MM, _FOCAL_35MM = 0x920A, 0xA405
_PLANE_X_RESOLUTION, _PLANE_UNIT = 0xA20E, 0xA210
_MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0}  # inch, centimetre, millimetre


def exif_focal_px(image: Image.Image) -> float | None:
    """Focal length in pixels of `image` (as stored, before any rotation) from its EXIF, or None.

    The 35 mm equivalent focal length wins: it relates to the 43.27 mm diagonal of a 36 x 24 mm frame,
    so it scales with the image diagonal whatever the sensor. Otherwise the focal length in mm times the
    focal-plane resolution (pixels per mm of the sensor at the original size) is used.
    """
    exif = image.getexif().get_ifd(_EXIF_IFD)
    width, height = image.size
    focal_35 = float(exif.get(_FOCAL_35MM, 0) or 0)
    if focal_35 > 0:
        return focal_35 * math.hypot(width, height) / math.hypot(36.0, 24.0)
    focal_mm = float(exif.get(_FOCAL_MM, 0) or 0)
    resolution = float(exif.get(_PLANE_X_RESOLUTION, 0) or 0)
    unit = _MM_PER_UNIT.get(int(exif.get(_PLANE_UNIT, 2) or 2))
    if focal_mm > 0 and resolution > 0 and unit is not None:
        return focal_mm * resolution / unit
    return None


def _save(image: Image.Image, path: Path, max_size: int) -> float:
    """Write `image` downscaled to at most max_size pixels on its longer side; return the scale applied."""
    scale = min(1.0, max_size / max(image.size))
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    with atomic_path(path) as tmp:
        image.save(tmp)
    return scale


def _read_photo(path: Path) -> tuple[Image.Image, float | None]:
    """(upright 8-bit RGB photo, the focal length in pixels its EXIF gives)."""
    image = read_image(path)
    with Image.open(path) as raw:  # the header only: read_image's pixels have lost their EXIF
        return image, exif_focal_px(raw)


def collect_frames(source: Path, image_dir: Path, max_size: int, every: int, verbose: bool = True) -> dict[str, Frame]:
    """Write the frames of a scene as PNG files, longer side at most max_size, EXIF orientation applied.

    The PNG copies carry no EXIF, so each photo's focal length is read here (COLMAP's prior, which it
    needs to verify matches as calibrated: without it, walks along a street find no initial pair).

    Args:
        source: a folder of photos or a video file (every `every`-th frame is kept).
        image_dir: the folder to write (created).
    Returns:
        PNG file name -> Frame (origin "clip.mp4#frame=30" for video frames, which have no focal).
    """
    image_dir.mkdir(parents=True, exist_ok=True)
    frames: dict[str, Frame] = {}
    if is_video(source):
        for index, frame in tqdm(read_video(source, every), desc=f"{source.name} frames", disable=not verbose):
            name = f"{index:06d}.png"
            _save(frame, image_dir / name, max_size)
            frames[name] = Frame(f"{source}#frame={index}")
        return frames
    # A photo folder's videos are scenes of their own (discover_scenes), not frames of this one.
    photos = [path for path in expand_paths(source) if path.suffix.lower() in IMAGE_EXTENSIONS]
    for path in tqdm(photos, desc=f"{source.name} photos", disable=not verbose):
        name = f"{path.stem}.png"
        if name in frames:
            raise ValueError(f"{path}: shares its name stem with {frames[name].origin}; rename one of them")
        image, focal_px = _read_photo(path)
        scale = _save(image, image_dir / name, max_size)
        frames[name] = Frame(str(path), None if focal_px is None else focal_px * scale)
    return frames
