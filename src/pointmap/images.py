"""Load photos and video frames as network-ready views (the official 224 / 512 resize-and-crop rules)."""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from tqdm import tqdm

from pointmap.geometry.turns import unturn_map

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
"""Files a folder or glob contributes as images (case-insensitive)."""
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
"""Files read frame by frame with OpenCV."""
MIN_IMAGE_SIDE = 16
"""Smallest original width or height accepted: one network patch. Smaller photos carry no detail to match."""
_GLOB_CHARS = ("*", "?", "[")


@dataclass
class View:
    """One preprocessed image.

    Attributes:
        img: (3, H, W) float32 in [-1, 1], H and W multiples of 16.
        true_shape: (H, W) of `img`.
        path: the file (or "video.mp4#frame=12") it came from.
        to_original: (3, 3) float64 matrix mapping processed pixels (x, y, 1) to original-photo pixels.
            Pixel (x, y) is (column, row) with pixel centres at integers, as in `geometry.cameras`, so
            intrinsics of the original photo are `to_original @ K`.
        original_shape: (H, W) of the original photo, after EXIF orientation (and the quarter turns).
        quarter_turns: counter-clockwise quarter turns of the photo (after EXIF orientation) before the
            resize and crop (`turn_view`): `to_original` and `original_shape` describe the turned photo,
            `photo_map` and `photo_shape` the photo as stored.
    """

    img: torch.Tensor
    true_shape: tuple[int, int]
    path: str
    to_original: np.ndarray
    original_shape: tuple[int, int]
    quarter_turns: int = 0

    def photo_map(self) -> np.ndarray:
        """(3, 3) float64 processed pixel (x, y, 1) -> pixel of the photo as stored (after EXIF orientation)."""
        height, width = self.original_shape
        return unturn_map(width, height, self.quarter_turns) @ np.asarray(self.to_original, dtype=np.float64)

    @property
    def photo_shape(self) -> tuple[int, int]:
        """(H, W) of the photo as stored (after EXIF orientation)."""
        height, width = self.original_shape
        return (width, height) if self.quarter_turns % 2 else (height, width)


_QUARTER_TURNS = {
    1: PIL.Image.Transpose.ROTATE_90,
    2: PIL.Image.Transpose.ROTATE_180,
    3: PIL.Image.Transpose.ROTATE_270,
}


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) of the official resize, before the crop.

    size 224: the longer side becomes round(224 * long / short), so the shorter side lands on 224.
    Any other size: the longer side becomes `size`. The other side is round(side * target / long), with
    Python's round (halves to even), as the official code computes it.
    """
    longer = max(width, height)
    target = round(size * max(width / height, height / width)) if size == 224 else size
    return round(width * target / longer), round(height * target / longer)


def crop_box(width: int, height: int, size: int, square_ok: bool = False, patch_size: int = 16) -> tuple[int, ...]:
    """(left, top, right, bottom) of the official centre crop of a resized image of `width` x `height`.

    With cx = width // 2, cy = height // 2:
    - size 224: a square of half side min(cx, cy) around (cx, cy); 224 x 224 for every aspect ratio,
      since the resize puts the shorter side on 224.
    - other sizes: half sides 8 * floor(2 cx / 16) and 8 * floor(2 cy / 16) (for patch_size 16), so the
      crop keeps the largest multiple of 16 of each side, centred on (cx, cy); an odd side drops one
      more pixel on the left/top (e.g. 511 -> columns 7..502). A square resized image (W == H) is cropped
      to 4:3 landscape, half height 3/4 of the half width (512 x 512 -> 512 x 384), unless `square_ok`.
    """
    cx, cy = width // 2, height // 2
    if size == 224:
        half = min(cx, cy)
        return cx - half, cy - half, cx + half, cy + half
    half_w = (2 * cx) // patch_size * patch_size // 2
    half_h = (2 * cy) // patch_size * patch_size // 2
    if not square_ok and width == height:
        # half_w is a multiple of patch_size / 2, so 3 * half_w / 4 is an integer for patch_size 16.
        half_h = 3 * half_w // 4
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def processed_shape(width: int, height: int, size: int, square_ok: bool = False) -> tuple[int, int]:
    """(H, W) of a `width` x `height` photo after `preprocess`, without touching pixels."""
    left, top, right, bottom = crop_box(*resized_size(width, height, size), size, square_ok)
    return bottom - top, right - left


def preprocess(image: PIL.Image.Image, size: int, path: str, square_ok: bool = False) -> View:
    """One RGB photo -> View with the official resize (LANCZOS down, BICUBIC up) and centre crop.

    Args:
        image: RGB PIL image, already EXIF-oriented.
        size: 224 (shorter side 224, centre square) or 512 (longer side 512, sides cropped to multiples
            of 16); see `resized_size` and `crop_box`.
        path: recorded in the View and named in errors.
    Returns:
        View with img (3, H, W) = (rgb / 255 - 0.5) / 0.5 in float32, as the official ImgNorm.
    """
    width, height = image.size
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"{path}: {width}x{height} image is too small; pass images of at least "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels"
        )
    new_w, new_h = resized_size(width, height, size)
    box = crop_box(new_w, new_h, size, square_ok)
    if box[2] - box[0] < 16 or box[3] - box[1] < 16:
        raise ValueError(
            f"{path}: {width}x{height} is too elongated for size {size} (the crop would be "
            f"{box[2] - box[0]}x{box[3] - box[1]}); crop the photo to an aspect ratio below 30:1"
        )
    resample = PIL.Image.Resampling.LANCZOS if max(width, height) > max(new_w, new_h) else PIL.Image.Resampling.BICUBIC
    cropped = image.resize((new_w, new_h), resample).crop(box)
    rgb = torch.from_numpy(np.asarray(cropped, dtype=np.uint8).copy()).permute(2, 0, 1)
    img = rgb.float().div(255).sub(0.5).div(0.5)
    # Pillow resizes with pixel centres at (i + 0.5) * scale in the source; the crop shifts by (left, top).
    scale_x, scale_y = width / new_w, height / new_h
    to_original = np.array(
        [
            [scale_x, 0.0, (box[0] + 0.5) * scale_x - 0.5],
            [0.0, scale_y, (box[1] + 0.5) * scale_y - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )
    return View(
        img=img,
        true_shape=(img.shape[1], img.shape[2]),
        path=path,
        to_original=to_original,
        original_shape=(height, width),
    )


def to_rgb8(image: PIL.Image.Image) -> PIL.Image.Image:
    """Any Pillow mode -> 8-bit RGB.

    16-bit and 32-bit integer grey ("I;16*", "I") are scaled by 255 / 65535; float grey ("F") is
    stretched from its min..max to 0..255. Alpha is dropped, not composited, as the official
    `.convert("RGB")` does, so pixels match the official preprocessing; palette, grey, CMYK convert
    directly. Pillow already keeps the high byte of 16-bit RGB.
    """
    if image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64) * (255 / 65535)
        return PIL.Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        low, high = np.nanmin(values), np.nanmax(values)
        scaled = (values - low) * (255 / (high - low)) if high > low else np.zeros_like(values)
        return PIL.Image.fromarray(np.round(np.nan_to_num(scaled)).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def read_image(path: str | os.PathLike) -> PIL.Image.Image:
    """Open a photo as 8-bit RGB with its EXIF orientation applied."""
    try:
        with PIL.Image.open(path) as image:
            image.load()
            return to_rgb8(PIL.ImageOps.exif_transpose(image))
    except (PIL.UnidentifiedImageError, OSError, ValueError) as err:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file; check the path") from err
        raise ValueError(
            f"{path}: Pillow cannot read it as an image ({err}); pass JPEG, PNG, WebP or TIFF files"
        ) from err


def turn_image(image: PIL.Image.Image, quarter_turns: int) -> PIL.Image.Image:
    """`image` turned `quarter_turns` times counter-clockwise (exactly: pixels are moved, not resampled)."""
    turns = quarter_turns % 4
    return image.transpose(_QUARTER_TURNS[turns]) if turns else image


def turn_view(view: View, quarter_turns: int, size: int, square_ok: bool = False) -> View:
    """`view` loaded again from its photo turned `quarter_turns` times counter-clockwise from the photo as
    stored (after EXIF orientation), by the resize-and-crop rule of `size` (as `load_images`)."""
    turned = preprocess(turn_image(read_image(view.path), quarter_turns), size, view.path, square_ok)
    turned.quarter_turns = quarter_turns % 4
    return turned


def read_video(path: str | os.PathLike, every: int = 1) -> Iterator[tuple[int, PIL.Image.Image]]:
    """Yield (frame index, RGB frame) for every `every`-th frame of a video, starting at frame 0."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{path}: OpenCV cannot open this video; pass an MP4/AVI/MOV file or extract frames")
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield index, PIL.Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
        if index == 0:
            raise ValueError(f"{path}: OpenCV reads no frame from this video; re-encode it (e.g. H.264 MP4)")
    finally:
        capture.release()


def expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Files named by `paths`: files as given, folders as their sorted images and videos (hidden files skipped,
    other files skipped with a warning), globs as sorted matches."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    media = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    files: list[Path] = []
    for entry in paths:
        text = os.fspath(entry)
        if Path(text).is_dir():
            # Hidden files are skipped: "._IMG_1.jpg" AppleDouble files carry a photo's name but no image.
            entries = sorted(p for p in Path(text).iterdir() if p.is_file() and not p.name.startswith("."))
            found = [p for p in entries if p.suffix.lower() in media]
            skipped = [p.name for p in entries if p.suffix.lower() not in media]
            if not found:
                raise ValueError(f"{text}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)}); pass another folder")
            if skipped:
                warnings.warn(
                    f"{text}: skipping {len(skipped)} non-image files ({', '.join(skipped[:5])})", stacklevel=2
                )
            files.extend(found)
        elif Path(text).is_file():
            files.append(Path(text))
        elif any(char in text for char in _GLOB_CHARS):
            found = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
            if not found:
                raise ValueError(f"{text}: pattern matches no file; check the pattern")
            files.extend(found)
        else:
            raise FileNotFoundError(f"{text}: no such file or folder; check the path")
    if not files:
        raise ValueError("load_images got no paths; pass image files, folders, globs or videos")
    return files


def load_images(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    size: int = 512,
    every: int = 1,
    square_ok: bool = False,
    verbose: bool = True,
) -> list[View]:
    """Load photos and video frames as network inputs.

    Args:
        paths: a file, folder (its images, sorted by name), glob ("shots/*.jpg"), video file, or a list of them.
        size: 512 or 224, the `image_size` of the model; see `resized_size` and `crop_box` for the rules.
        every: keep every k-th frame of videos (frames 0, k, 2k, ...).
        square_ok: keep square 512 x 512 crops instead of the official 4:3 crop of square images.
        verbose: show a progress bar.
    Returns:
        Views in the order of `paths`; video frames are named "clip.mp4#frame=12".
    """
    if every < 1:
        raise ValueError(f"every={every}: pass 1 to keep every video frame, k to keep one in k")
    if size < 16:
        raise ValueError(f"size={size}: pass the model's image_size (224 or 512)")
    views: list[View] = []
    for path in tqdm(expand_paths(paths), desc="loading images", unit="file", disable=not verbose):
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            for index, frame in read_video(path, every):
                views.append(preprocess(frame, size, f"{path}#frame={index}", square_ok))
        else:
            views.append(preprocess(read_image(path), size, str(path), square_ok))
    return views
