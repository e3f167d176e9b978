"""Procedural surface albedo: noise, stripes, checkers, tiles, windows, dead leaves and photo textures.

Patterns are evaluated at hit points in each shape's local frame (metres), so they stick to the
surface and look the same from every view: what multi-view training needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .fused import maybe_fused

PATTERNS = ("plain", "noise", "stripes", "checkers", "tiles", "windows", "dead_leaves", "photo", "planks")
"""Pattern kinds, in the order of `Materials.pattern`."""

_MASK = (1 << 31) - 1


@dataclass
class Materials:
    """Surface materials of S scenes, padded to M per scene.

    Attributes:
        pattern: (S, M) long index into PATTERNS.
        color_a: (S, M, 3) main albedo, linear RGB in [0, 1].
        color_b: (S, M, 3) second albedo (stripes, grout, window glass, noise extremes).
        scale: (S, M) pattern period in metres.
        seed: (S, M) long seed of the material's noise.
        photo: (S, M) long index into the photo bank (used by the "photo" pattern).
        grime: (S, M) amplitude of a low-frequency brightness variation, in [0, 1].
        emission: (S, M) self-lit radiance added to the shading (windows, lamp shades, screens).
        gloss: (S, M) strength of a white specular highlight (varnish, plastic, metal, paint), in [0, 1].
    """

    pattern: Tensor
    color_a: Tensor
    color_b: Tensor
    scale: Tensor
    seed: Tensor
    photo: Tensor
    grime: Tensor
    emission: Tensor
    gloss: Tensor


def hash_uniform(cells: Tensor, seed: Tensor) -> Tensor:
    """Deterministic pseudo-random numbers per integer lattice cell.

    Args:
        cells: (..., D) long lattice coordinates (any sign).
        seed: (...,) long seed.
    Returns:
        (...,) float32 in [0, 1), identical on every device.
    """
    # Integer mixing kept below 2^62 so int64 never overflows: inputs masked to 31 bits, multipliers < 2^31.
    h = (seed * 1_103_515_245 + 12_345) & _MASK
    for axis, prime in zip(range(cells.shape[-1]), (73_856_093, 19_349_663, 83_492_791), strict=False):
        h = (h ^ ((cells[..., axis] & _MASK) * prime)) & _MASK
        h = ((h ^ (h >> 15)) * 2_146_121_005) & _MASK
    h = ((h ^ (h >> 13)) * 1_597_334_677) & _MASK
    h = h ^ (h >> 16)
    return (h & 0xFFFFFF).to(torch.float32) / float(1 << 24)


def value_noise(points: Tensor, seed: Tensor) -> Tensor:
    """Smooth 3D value noise in [0, 1].

    Args:
        points: (N, 3) positions in noise cells.
        seed: (N,) long.
    Returns:
        (N,) noise, float32.
    """
    base = torch.floor(points)
    frac = points - base
    w = frac * frac * (3 - 2 * frac)  # smoothstep: no creases at cell borders
    corners = torch.tensor(
        [[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], device=points.device
    )  # (8, 3), x slowest
    values = hash_uniform(base.long()[:, None, :] + corners, seed[:, None]).reshape(-1, 2, 2, 2)
    # Trilinear blend, z then y then x (explicit lerps: an einsum here becomes millions of tiny matmuls).
    values = values[..., 0] + (values[..., 1] - values[..., 0]) * w[:, None, None, 2]  # (N, 2, 2)
    values = values[..., 0] + (values[..., 1] - values[..., 0]) * w[:, None, 1]  # (N, 2)
    return values[:, 0] + (values[:, 1] - values[:, 0]) * w[:, 0]


def fbm(points: Tensor, seed: Tensor, octaves: int = 4) -> Tensor:
    """(N,) fractal sum of value noise, normalised to [0, 1]; points (N, 3), seed (N,)."""
    total, amplitude, norm = torch.zeros_like(points[..., 0]), 1.0, 0.0
    for octave in range(octaves):
        total = total + amplitude * value_noise(points * (2.0**octave), seed + octave * 7919)
        norm += amplitude
        amplitude *= 0.5
    return total / norm


def _surface_uv(p_local: Tensor, n_local: Tensor) -> Tensor:
    """(N, 2) planar coordinates on the face the normal points out of (triplanar pick)."""
    axis = n_local.abs().argmax(dim=-1)
    u = torch.where(axis == 0, p_local[:, 1], p_local[:, 0])
    v = torch.where(axis == 2, p_local[:, 1], p_local[:, 2])
    return torch.stack([u, v], dim=-1)


def _dead_leaves(uv: Tensor, seed: Tensor, color_a: Tensor, color_b: Tensor, scale: Tensor) -> Tensor:
    """Layers of random discs, large to small, each cell of a jittered grid holding one disc."""
    out = color_a.clone()
    for layer, size in enumerate((1.0, 0.6, 0.35, 0.2)):
        cell_size = (scale * size)[:, None]
        grid = uv / cell_size
        cells = torch.floor(grid).long()
        layer_seed = seed + 104_729 * (layer + 1)
        rnd = [hash_uniform(cells, layer_seed + k) for k in range(5)]
        centre = torch.stack([0.3 + 0.4 * rnd[0], 0.3 + 0.4 * rnd[1]], dim=-1)
        radius = 0.12 + 0.18 * rnd[2]
        inside = ((grid - torch.floor(grid) - centre) ** 2).sum(-1) < radius**2
        inside = inside & (rnd[4] < 0.8)
        mix = rnd[3][:, None]
        colour = color_a * (1 - mix) + color_b * mix
        colour = colour * (0.6 + 0.8 * hash_uniform(cells, layer_seed + 11))[:, None]
        out = torch.where(inside[:, None], colour.clamp(0, 1), out)
    return out


def _sample_photos(photos: Tensor, index: Tensor, uv: Tensor) -> Tensor:
    """(N, 3) bilinear, wrapping lookup of photo `index` (N,) at uv (N, 2) in photo widths."""
    _, _, height, width = photos.shape
    x = (uv[:, 0] - torch.floor(uv[:, 0])) * width
    y = (1 - (uv[:, 1] - torch.floor(uv[:, 1]))) * height
    x0, y0 = torch.floor(x).long(), torch.floor(y).long()
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    flat = photos.permute(0, 2, 3, 1).reshape(-1, 3)

    def texel(xi: Tensor, yi: Tensor) -> Tensor:
        return flat[(index * height + yi % height) * width + xi % width]

    top = texel(x0, y0) * (1 - fx) + texel(x0 + 1, y0) * fx
    bottom = texel(x0, y0 + 1) * (1 - fx) + texel(x0 + 1, y0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def albedo(
    materials: Materials,
    scene_index: Tensor,
    material_index: Tensor,
    p_local: Tensor,
    n_local: Tensor,
    photos: Tensor | None = None,
    compiled: bool = False,
) -> Tensor:
    """Surface colour at hit points.

    Args:
        materials: the materials of S scenes.
        scene_index: (N,) long scene of each hit.
        material_index: (N,) long material of each hit.
        p_local: (N, 3) hit points in the hit shape's frame (metres).
        n_local: (N, 3) unit normals in the same frame.
        photos: (T, 3, h, w) linear RGB photo bank in [0, 1], or None (the "photo" pattern then falls
            back to dead leaves).
        compiled: evaluate the patterns with torch.compile'd kernels (one fused kernel per pattern instead of
            dozens of passes of integer hashing; the first calls compile).
    Returns:
        (N, 3) linear albedo in [0, 1].
    """

    def pick(field: Tensor) -> Tensor:
        return field[scene_index, material_index]

    pattern, color_a, color_b = pick(materials.pattern), pick(materials.color_a), pick(materials.color_b)
    scale, seed, grime = pick(materials.scale).clamp_min(1e-3), pick(materials.seed), pick(materials.grime)
    uv = _surface_uv(p_local, n_local)
    colour = color_a.clone()
    # Each pattern is evaluated on its own hits only: noise is the costly part of rendering. The hits are
    # sorted by pattern once (stable: each pattern's rows stay in order) and read back with one host sync,
    # instead of one nonzero (and sync) per pattern.
    by_pattern = torch.argsort(pattern, stable=True)
    counts = torch.bincount(pattern, minlength=len(PATTERNS)).tolist()
    start = 0
    for name, count in zip(PATTERNS, counts, strict=True):
        rows, start = by_pattern[start : start + count], start + count
        if name == "plain" or count == 0:
            continue
        if name == "photo" and photos is not None and photos.shape[0] > 0:
            index = pick(materials.photo)[rows].clamp(0, photos.shape[0] - 1)
            colour[rows] = _sample_photos(photos, index, uv[rows] / scale[rows, None] / 4)
            continue
        evaluate = maybe_fused(_PATTERN_FUNCTIONS[name], compiled)
        colour[rows] = evaluate(uv[rows], p_local[rows], seed[rows], color_a[rows], color_b[rows], scale[rows])
    colour = maybe_fused(_grime, compiled)(colour, p_local, seed, grime)
    return colour.clamp(0, 1)


def _grime(colour: Tensor, p_local: Tensor, seed: Tensor, grime: Tensor) -> Tensor:
    """Low-frequency brightness variation of amplitude `grime` (N,) over colours (N, 3)."""
    variation = fbm(p_local * 0.8, seed + 17, octaves=2) - 0.5
    return colour * (1 + grime * 1.2 * variation)[:, None]


# The patterns: (N, 3) albedo from uv (N, 2) face coordinates and p_local (N, 3) points (metres), seed (N,),
# colours (N, 3) and scale (N,) of each hit's material. Photos are looked up in `albedo` (dead leaves
# stand in for them when no bank is given).


def _noise(uv, p_local, seed, color_a, color_b, scale):
    noise = fbm(p_local / scale[:, None], seed)[:, None]
    return color_a * (1 - noise) + color_b * noise


def _stripes(uv, p_local, seed, color_a, color_b, scale):
    """Wood grain: stripes bent by stretched noise."""
    stretch = p_local.new_tensor([0.5, 0.5, 4.0])
    warp = fbm(p_local * stretch / scale[:, None], seed + 3, octaves=3)
    grid = uv / scale[:, None]
    stripes = (0.5 + 0.5 * torch.sin(2 * torch.pi * (grid[:, 0] + 1.5 * warp)))[:, None] ** 2
    return color_a * (1 - stripes) + color_b * stripes


def _planks(uv, p_local, seed, color_a, color_b, scale):
    """Floorboards: staggered planks 6 widths long, each its own shade, grain along."""
    grid = uv / scale[:, None]
    row = torch.floor(grid[:, 1])
    along = grid[:, 0] / 6 + hash_uniform(row.long()[:, None], seed)
    plank = torch.stack([torch.floor(along), row], -1).long()
    shade = (0.75 + 0.5 * hash_uniform(plank, seed + 1))[:, None]
    warp = fbm(p_local * p_local.new_tensor([0.3, 0.3, 3.0]) / scale[:, None], seed + 3, 3)
    grain = (0.5 + 0.5 * torch.sin(2 * torch.pi * (3 * grid[:, 1] + 2 * warp)))[:, None] ** 3
    seam = ((grid[:, 1:] - row[:, None]) < 0.04) | ((along[:, None] - torch.floor(along[:, None])) < 0.006)
    wood = (color_a * (1 - 0.5 * grain) + color_b * 0.5 * grain) * shade
    return torch.where(seam, color_b * 0.5, wood)


def _windows(uv, p_local, seed, color_a, color_b, scale):
    grid = uv / scale[:, None]
    cells, cell_frac = torch.floor(grid).long(), grid - torch.floor(grid)
    window = ((cell_frac[:, 0] - 0.5).abs() < 0.3) & ((cell_frac[:, 1] - 0.55).abs() < 0.3)
    # Each window reflects its own patch of sky: a per-cell brightness in the glass colour.
    glass = color_b * (0.6 + 0.8 * hash_uniform(cells, seed + 5))[:, None]
    return torch.where(window[:, None], glass, color_a)


def _checkers(uv, p_local, seed, color_a, color_b, scale):
    cells = torch.floor(uv / scale[:, None]).long()
    tile_shade = (0.85 + 0.3 * hash_uniform(cells, seed))[:, None]
    parity = ((cells[:, 0] + cells[:, 1]) % 2).bool()[:, None]
    return torch.where(parity, color_a, color_b) * tile_shade


def _tiles(uv, p_local, seed, color_a, color_b, scale):
    grid = uv / scale[:, None]
    cells, cell_frac = torch.floor(grid).long(), grid - torch.floor(grid)
    tile_shade = (0.85 + 0.3 * hash_uniform(cells, seed))[:, None]
    grout = ((cell_frac < 0.04) | (cell_frac > 0.96)).any(-1, keepdim=True)
    return torch.where(grout, color_b, color_a * tile_shade)


def _leaves(uv, p_local, seed, color_a, color_b, scale):
    return _dead_leaves(uv, seed, color_a, color_b, scale)


_PATTERN_FUNCTIONS = {
    "noise": _noise,
    "stripes": _stripes,
    "checkers": _checkers,
    "tiles": _tiles,
    "windows": _windows,
    "dead_leaves": _leaves,
    "photo": _leaves,
    "planks": _planks,
}


def photo_paths(folder: str | Path) -> list[Path]:
    """The JPEG/PNG files of a folder and its subfolders (a bank of one folder per source), sorted by path:
    the photo bank's order."""
    folder = Path(folder)
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file())
    if not paths:
        raise FileNotFoundError(f"{folder}: no .jpg/.jpeg/.png photos; pass a folder of photos or no folder")
    return paths


def centre_square(image: Image.Image) -> Image.Image:
    """The largest centred square of an image."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def load_photo_bank(folder: str | Path, size: int = 256, device=None) -> Tensor:
    """Read every JPEG/PNG of a folder as a square texture.

    Args:
        folder: folder of photos, subfolders included.
        size: side of each texture in pixels.
    Returns:
        (T, 3, size, size) float32 linear RGB in [0, 1].
    """
    textures = []
    for path in photo_paths(folder):
        with Image.open(path) as img:
            img = centre_square(img.convert("RGB")).resize((size, size), Image.BILINEAR)
            srgb = np.asarray(img, dtype=np.float32) / 255.0
        textures.append(torch.from_numpy(srgb**2.2).permute(2, 0, 1))  # sRGB to linear, approximately
    return torch.stack(textures).to(device)
