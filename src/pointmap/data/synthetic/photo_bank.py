"""Turn a folder of unpacked game-texture files into a bank of square photo textures.

The recipe is docs/photo-bank-survey.md: keep diffuse image files (auxiliary maps dropped by name),
keep those that look like photographs, drop near-duplicates by a difference hash, and save the rest
as square sRGB JPEGs that `load_photo_bank` reads.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .textures import centre_square

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dds", ".tga", ".rgb", ".sgi", ".bmp")
"""Raster formats found in the surveyed packages that Pillow decodes (SGI `.rgb` from TORCS, DXT `.dds` from 0 A.D.)."""

CACHE_SUFFIX = ".cached"
"""0 A.D. names its converted textures `name.png.cached.dds`; the stem is `name`."""

AUXILIARY_MAP = re.compile(
    r"(_norm|_normal|_nm|_n|_gloss|_glow|_bump|_spec|_specular|_s|_h|_height|_ao|_mask|_lm|_pants|_shirt)\d*$",
    re.IGNORECASE,
)
"""Stem endings of maps that are not surface colour (normal, gloss, specular, height, occlusion, masks)."""


@dataclass(frozen=True)
class PhotoBankConfig:
    """How textures are chosen and written; the thresholds are the survey's "heur" test."""

    size: int = 256
    """Side of each written square texture, in pixels."""
    jpeg_quality: int = 90
    """JPEG quality of the written textures."""
    max_distance: int = 6
    """Largest Hamming distance between two 64-bit difference hashes that still counts as a duplicate."""
    min_side: int = 128
    """Smallest accepted shorter side of the source image, in pixels."""
    analysis_side: int = 128
    """Shorter side of the thumbnail the photo test measures, so thresholds do not depend on resolution."""
    min_opaque_fraction: float = 0.95
    """Smallest share of pixels whose alpha is at least `opaque_alpha`."""
    opaque_alpha: int = 250
    """Alpha (0-255) from which a pixel counts as opaque."""
    normal_map_blue_margin: float = 50.0
    """A mean blue this far (0-255) above both mean red and mean green marks a tangent-space normal map."""
    min_distinct_colours: int = 150
    """Smallest number of distinct 5-bit-per-channel colours: fewer means UI art, logos or masks."""
    max_flat_fraction: float = 0.35
    """Largest share of flat pixels (grey equal to both right and lower neighbours)."""
    min_grey_std: float = 5.0
    """Smallest standard deviation of the grey image (0-255)."""


def image_stem(path: Path) -> str:
    """File name without its image suffixes: `grass.png.cached.dds` -> `grass`."""
    name = path.name
    suffix = Path(name).suffix.lower()
    while suffix in IMAGE_SUFFIXES or suffix == CACHE_SUFFIX:
        name = name[: -len(suffix)]
        suffix = Path(name).suffix.lower()
    return name


def is_auxiliary_map(path: Path) -> bool:
    """Whether the file name marks a normal, gloss, specular, height or mask map rather than colour."""
    return AUXILIARY_MAP.search(image_stem(path)) is not None


def texture_candidates(root: Path, blacklist: Sequence[str] = ()) -> list[Path]:
    """Colour-texture image files under a folder.

    Args:
        root: folder searched recursively.
        blacklist: directory names (e.g. "cars", "karts") whose contents are skipped at any depth.
    Returns:
        Sorted paths of files with an image suffix whose names are not auxiliary maps.
    """
    excluded_dirs = set(blacklist)
    candidates = []
    for path in root.rglob("*"):
        relative_dirs = path.relative_to(root).parts[:-1]
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if excluded_dirs.intersection(relative_dirs) or is_auxiliary_map(path):
            continue
        candidates.append(path)
    return sorted(candidates)


def analysis_thumbnail(image: Image.Image, side: int) -> np.ndarray:
    """(h, w, 4) uint8 RGBA copy of the image whose shorter side is `side` (never enlarged)."""
    scale = min(1.0, side / min(image.size))
    thumb_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return np.asarray(image.convert("RGBA").resize(thumb_size, Image.BILINEAR))


def distinct_colour_count(rgb: np.ndarray) -> int:
    """Number of distinct colours of an (h, w, 3) uint8 image quantised to 5 bits per channel."""
    quantised = (rgb >> 3).astype(np.int32)
    codes = (quantised[..., 0] << 10) | (quantised[..., 1] << 5) | quantised[..., 2]
    return int(np.unique(codes).size)


def flat_fraction(grey: np.ndarray) -> float:
    """Share of pixels of an (h, w) uint8 image equal to both their right and lower neighbours."""
    same_as_right = grey[:-1, :-1] == grey[:-1, 1:]
    same_as_below = grey[:-1, :-1] == grey[1:, :-1]
    return float(np.mean(same_as_right & same_as_below))


def is_photo_like(image: Image.Image, config: PhotoBankConfig = PhotoBankConfig()) -> bool:
    """The survey's "natural texture" test: large, opaque, not a normal map, rich in colour and detail.

    Args:
        image: any Pillow image (alpha, palette and grey modes are converted).
        config: thresholds.
    Returns:
        True when the image passes every threshold of `config`.
    """
    if min(image.size) < config.min_side:
        return False
    rgba = analysis_thumbnail(image, config.analysis_side)
    if np.mean(rgba[..., 3] >= config.opaque_alpha) < config.min_opaque_fraction:
        return False
    rgb = rgba[..., :3]
    mean_red, mean_green, mean_blue = rgb.reshape(-1, 3).mean(axis=0)
    if mean_blue - max(mean_red, mean_green) >= config.normal_map_blue_margin:
        return False
    if distinct_colour_count(rgb) < config.min_distinct_colours:
        return False
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    return flat_fraction(grey) < config.max_flat_fraction and float(grey.std()) > config.min_grey_std


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: on a 9x8 grey thumbnail, one bit per pixel brighter than its left neighbour.

    Robust to rescaling, small brightness shifts and recompression; far apart for different textures.
    """
    grey = np.asarray(image.convert("L").resize((9, 8), Image.BILINEAR), dtype=np.int16)
    brighter = (grey[:, 1:] > grey[:, :-1]).reshape(-1)
    return int.from_bytes(np.packbits(brighter).tobytes(), "big")


def deduplicate(hashes: Sequence[int], max_distance: int = 6) -> list[int]:
    """Indices of the hashes kept when each near-duplicate group keeps its first member.

    Args:
        hashes: 64-bit hashes in priority order.
        max_distance: largest Hamming distance that still counts as a duplicate.
    Returns:
        Increasing indices into `hashes`; each is farther than `max_distance` from every earlier kept hash.
    """
    kept_indices: list[int] = []
    for index, candidate in enumerate(hashes):
        if all((candidate ^ hashes[kept]).bit_count() > max_distance for kept in kept_indices):
            kept_indices.append(index)
    return kept_indices


def bank_name(relative_path: Path) -> str:
    """Flat JPEG name of a texture from its path inside the package: `a/b/grass.png` -> `a__b__grass.jpg`."""
    return "__".join([*relative_path.parts[:-1], image_stem(relative_path)]) + ".jpg"


def square_texture(image: Image.Image, size: int) -> Image.Image:
    """Centre square crop of the image resized to (size, size), in RGB."""
    return centre_square(image.convert("RGB")).resize((size, size), Image.LANCZOS)


def write_bank(
    named_images: Iterable[tuple[str, Image.Image]], out_dir: Path, config: PhotoBankConfig = PhotoBankConfig()
) -> list[Path]:
    """Save images as square JPEG textures, each through a temporary file so none is left half-written.

    Args:
        named_images: (file name ending in .jpg, image) pairs; a name already written by this call is skipped
            (the same texture shipped in two formats).
        out_dir: folder of the package's textures; created if missing.
        config: `size` and `jpeg_quality` are used.
    Returns:
        Paths written, in input order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, image in named_images:
        if name in written:
            continue
        target = out_dir / name
        partial = target.with_name(target.name + ".partial")
        square_texture(image, config.size).save(partial, format="JPEG", quality=config.jpeg_quality)
        os.replace(partial, target)
        written[name] = target
    return list(written.values())


def licence_summary(copyright_text: str) -> str:
    """Licences of the `Files:` stanzas of a Debian machine-readable copyright file, most frequent first.

    Example: `GPL-2+ (3 stanzas), CC0-1.0 (1 stanzas)`; "unknown" when no stanza names a licence.
    """
    licences: Counter[str] = Counter()
    for stanza in re.split(r"\n\s*\n", copyright_text):
        fields = dict(line.partition(":")[::2] for line in stanza.splitlines() if line and not line[0].isspace())
        if "Files" in fields and fields.get("License", "").strip():
            licences[fields["License"].strip()] += 1
    return ", ".join(f"{name} ({count} stanzas)" for name, count in licences.most_common()) or "unknown"
