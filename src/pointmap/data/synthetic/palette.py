"""Random materials that look like everyday surfaces: walls, wood, fabric, metal, stone, plants, asphalt."""

from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass

Colour = tuple[float, float, float]

# (hue range, saturation range, value range) in HSV, sRGB; hue None = any.
_FAMILIES: dict[str, tuple[tuple[float, float] | None, tuple[float, float], tuple[float, float]]] = {
    "wall": (None, (0.0, 0.18), (0.62, 0.95)),
    "ceiling": (None, (0.0, 0.05), (0.85, 0.97)),
    "wood": ((0.04, 0.11), (0.35, 0.75), (0.22, 0.75)),
    "fabric": (None, (0.2, 0.75), (0.18, 0.8)),
    "vivid": (None, (0.55, 0.95), (0.45, 0.95)),
    "metal": (None, (0.0, 0.08), (0.25, 0.8)),
    "stone": ((0.05, 0.15), (0.04, 0.25), (0.35, 0.75)),
    "plant": ((0.18, 0.38), (0.35, 0.8), (0.15, 0.5)),
    "asphalt": (None, (0.0, 0.06), (0.12, 0.26)),
    "facade": ((0.0, 0.14), (0.05, 0.45), (0.35, 0.9)),
    "glass": ((0.5, 0.65), (0.05, 0.35), (0.15, 0.45)),
    "grass": ((0.16, 0.3), (0.35, 0.7), (0.2, 0.45)),
}


def random_colour(rng: random.Random, family: str) -> Colour:
    """A linear-RGB albedo drawn from a family of real-world colours (see _FAMILIES)."""
    hue, sat, val = _FAMILIES[family]
    h = rng.random() if hue is None else rng.uniform(*hue)
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    return tuple(c**2.2 for c in rgb)  # sRGB-ish to linear


def shade(colour: Colour, factor: float) -> Colour:
    """The colour scaled in brightness, clamped to [0, 1]."""
    return tuple(min(1.0, max(0.0, c * factor)) for c in colour)


@dataclass(frozen=True)
class MaterialSpec:
    """One material before it becomes tensors (fields as in textures.Materials)."""

    pattern: str
    color_a: Colour
    color_b: Colour
    scale: float = 1.0
    grime: float = 0.3
    emission: float = 0.0
    gloss: float = 0.0
    photo: int = -1


PHOTO_FAMILIES = ("wall", "fabric", "vivid", "facade")
"""Material families whose pattern a photo may replace."""
PHOTO_SHARE = 0.25
"""Default share of those materials that take a photo, when there are photos."""


def random_material(
    rng: random.Random, family: str, num_photos: int = 0, photo_share: float = PHOTO_SHARE
) -> MaterialSpec:
    """A material of a family with a fitting pattern; photos (when given) replace the pattern of a
    `photo_share` of the materials of PHOTO_FAMILIES."""
    a = random_colour(rng, family)
    if num_photos and family in PHOTO_FAMILIES and rng.random() < photo_share:
        return MaterialSpec("photo", a, a, scale=rng.uniform(0.3, 1.5), grime=0.1, photo=rng.randrange(num_photos))
    if family == "wood":
        b = shade(a, rng.uniform(0.45, 0.75))
        return MaterialSpec("stripes", a, b, scale=rng.uniform(0.02, 0.08), gloss=rng.uniform(0.0, 0.3))
    if family == "wall":
        pattern = rng.choices(["plain", "noise", "stripes", "dead_leaves", "tiles"], [5, 3, 1, 0.5, 0.5])[0]
        b = shade(a, rng.uniform(0.75, 0.92)) if pattern != "dead_leaves" else random_colour(rng, "vivid")
        return MaterialSpec(pattern, a, b, scale=rng.uniform(0.15, 0.6), grime=rng.uniform(0.1, 0.35))
    if family in ("fabric", "vivid"):
        pattern = rng.choices(["plain", "noise", "checkers", "stripes", "dead_leaves"], [3, 2, 1, 1, 2])[0]
        gloss = rng.uniform(0.1, 0.4) if family == "vivid" else 0.0  # plastic and paint shine, cloth does not
        b = random_colour(rng, family)
        return MaterialSpec(pattern, a, b, scale=rng.uniform(0.03, 0.3), grime=0.2, gloss=gloss)
    if family in ("stone", "ceiling", "metal"):
        pattern = rng.choice(["noise", "tiles"] if family == "stone" else ["plain", "noise"])
        b = shade(a, rng.uniform(0.6, 0.9))
        gloss = rng.uniform(0.3, 0.7) if family == "metal" else 0.0
        return MaterialSpec(pattern, a, b, scale=rng.uniform(0.1, 0.8), grime=rng.uniform(0.1, 0.4), gloss=gloss)
    if family == "facade":
        glass = random_colour(rng, "glass")
        return MaterialSpec("windows", a, glass, scale=rng.uniform(2.6, 3.6), grime=rng.uniform(0.2, 0.5))
    return MaterialSpec("noise", a, shade(a, rng.uniform(0.4, 0.8)), scale=rng.uniform(0.05, 0.5), grime=0.3)


def floor_material(rng: random.Random, num_photos: int = 0, photo_share: float = PHOTO_SHARE) -> MaterialSpec:
    """Parquet, tiles, carpet or concrete."""
    kind = rng.choice(["parquet", "tiles", "carpet", "concrete"])
    if kind == "parquet":
        a = random_colour(rng, "wood")
        return MaterialSpec("planks", a, shade(a, 0.6), scale=rng.uniform(0.09, 0.2), grime=0.3, gloss=0.2)
    if kind == "tiles":
        a = random_colour(rng, rng.choice(["stone", "wall", "wood"]))
        b = random_colour(rng, "stone") if rng.random() < 0.5 else a
        pattern = "checkers" if b is not a and rng.random() < 0.4 else "tiles"
        return MaterialSpec(pattern, a, shade(b, 0.7), scale=rng.uniform(0.2, 0.6), grime=0.3, gloss=0.3)
    if kind == "carpet":
        return random_material(rng, "fabric", num_photos, photo_share)
    return MaterialSpec("noise", random_colour(rng, "stone"), random_colour(rng, "stone"), scale=0.4, grime=0.5)
