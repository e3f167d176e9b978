"""Nearest-hit ray casting on NVIDIA GPUs as one Triton kernel (the torch path in primitives.py is the
reference and the CPU path).

A program takes a block of rays of one scene, keeps them in registers and walks over that scene's
shapes (tens to a couple of hundred): per shape, a few scalar loads and an exact intersection of every
ray of the block, the nearest hit kept. Nothing of size rays x shapes ever reaches memory, which is
what made the torch path (bounding-sphere culling, then exact tests of the survivors) memory-bound.

Shapes are packed per scene as rows of SHAPE_FIELDS float32 values (see `pack_shapes`), padding rows
have alive = 0. The intersection formulas are those of primitives.py, written for one shape at a time.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .primitives import _EPS, KINDS, Hit, ShapeSet

SHAPE_FIELDS = 18
"""Per shape: centre (3), local-to-world rotation (9, row-major), half extents (3), alive, kind id, index
within its kind (the last two stored as floats: exact below 2^24)."""

BLOCK = 128
"""Rays per program."""


def pack_shapes(shapes: dict[str, ShapeSet]) -> Tensor:
    """(S, P, SHAPE_FIELDS) float32 table of every shape of every kind, kinds concatenated in KINDS order."""
    rows = []
    for kind_id, kind in enumerate(KINDS):
        if kind not in shapes or shapes[kind].count == 0:
            continue
        s = shapes[kind]
        num_scenes, count = s.center.shape[:2]
        ids = torch.arange(count, device=s.center.device, dtype=torch.float32).expand(num_scenes, count)
        rows.append(
            torch.cat(
                [
                    s.center,
                    s.rotation.reshape(num_scenes, count, 9),
                    s.half,
                    s.alive[..., None].float(),
                    torch.full_like(ids, float(kind_id))[..., None],
                    ids[..., None],
                ],
                dim=-1,
            )
        )
    return torch.cat(rows, dim=1).float().contiguous()


@triton.jit
def _safe_inverse(x):
    tiny = tl.where(x < 0, -1e-20, 1e-20)
    return 1.0 / tl.where(tl.abs(x) < 1e-20, tiny, x)


@triton.jit
def _cast_kernel(
    origins_ptr,  # (S, R, 3)
    dirs_ptr,  # (S, R, 3)
    active_ptr,  # (S, R) int8: rays to cast (the others get no hit)
    shapes_ptr,  # (S, P, SHAPE_FIELDS)
    t_ptr,  # (S, R) out
    kind_ptr,  # (S, R) out, int64
    index_ptr,  # (S, R) out, int64
    num_rays,
    num_shapes,
    EPS: tl.constexpr,
    FIELDS: tl.constexpr,
    BLOCK_RAYS: tl.constexpr,
):
    scene = tl.program_id(1)
    rays = tl.program_id(0) * BLOCK_RAYS + tl.arange(0, BLOCK_RAYS)
    in_range = rays < num_rays
    ray_base = (scene * num_rays + rays) * 3
    ox = tl.load(origins_ptr + ray_base, mask=in_range, other=0.0)
    oy = tl.load(origins_ptr + ray_base + 1, mask=in_range, other=0.0)
    oz = tl.load(origins_ptr + ray_base + 2, mask=in_range, other=0.0)
    dx = tl.load(dirs_ptr + ray_base, mask=in_range, other=0.0)
    dy = tl.load(dirs_ptr + ray_base + 1, mask=in_range, other=1.0)
    dz = tl.load(dirs_ptr + ray_base + 2, mask=in_range, other=0.0)
    inf = float("inf")
    best_t = tl.full([BLOCK_RAYS], inf, tl.float32)
    best_kind = tl.zeros([BLOCK_RAYS], tl.float32)
    best_index = tl.zeros([BLOCK_RAYS], tl.float32)
    active = tl.load(active_ptr + scene * num_rays + rays, mask=in_range, other=0)
    # A block without an active ray (sky, surfaces facing away from the light) skips the shapes.
    for p in range(num_shapes * (tl.max(active, axis=0) > 0).to(tl.int32)):
        row = shapes_ptr + (scene * num_shapes + p) * FIELDS
        if tl.load(row + 15) > 0.5:
            kind = tl.load(row + 16)
            # The ray in the shape's frame: (o - c) @ R and d @ R (R's columns are the local axes).
            rx, ry, rz = ox - tl.load(row), oy - tl.load(row + 1), oz - tl.load(row + 2)
            r00, r01, r02 = tl.load(row + 3), tl.load(row + 4), tl.load(row + 5)
            r10, r11, r12 = tl.load(row + 6), tl.load(row + 7), tl.load(row + 8)
            r20, r21, r22 = tl.load(row + 9), tl.load(row + 10), tl.load(row + 11)
            lox = rx * r00 + ry * r10 + rz * r20
            loy = rx * r01 + ry * r11 + rz * r21
            loz = rx * r02 + ry * r12 + rz * r22
            ldx = dx * r00 + dy * r10 + dz * r20
            ldy = dx * r01 + dy * r11 + dz * r21
            ldz = dx * r02 + dy * r12 + dz * r22
            hx, hy, hz = tl.load(row + 12), tl.load(row + 13), tl.load(row + 14)
            if kind == 0.0:  # quad: |x| <= hx, |y| <= hy in z = 0
                t = -loz * _safe_inverse(ldz)
                inside = (tl.abs(lox + t * ldx) <= hx) & (tl.abs(loy + t * ldy) <= hy) & (t > EPS)
                t = tl.where(inside, t, inf)
            elif kind == 1.0:  # box: slabs
                ix, iy, iz = _safe_inverse(ldx), _safe_inverse(ldy), _safe_inverse(ldz)
                ax, bx = (-hx - lox) * ix, (hx - lox) * ix
                ay, by = (-hy - loy) * iy, (hy - loy) * iy
                az, bz = (-hz - loz) * iz, (hz - loz) * iz
                near = tl.maximum(tl.maximum(tl.minimum(ax, bx), tl.minimum(ay, by)), tl.minimum(az, bz))
                far = tl.minimum(tl.minimum(tl.maximum(ax, bx), tl.maximum(ay, by)), tl.maximum(az, bz))
                t = tl.where(near > EPS, near, far)  # from inside a box (a room) the far side is hit
                t = tl.where((near <= far) & (t > EPS), t, inf)
            elif kind == 2.0:  # sphere of radius hx
                b = lox * ldx + loy * ldy + loz * ldz
                disc = b * b - (lox * lox + loy * loy + loz * loz - hx * hx)
                sq = tl.sqrt(tl.maximum(disc, 0.0))
                t = tl.where(-b - sq > EPS, -b - sq, -b + sq)
                t = tl.where((disc >= 0) & (t > EPS), t, inf)
            else:  # cylinder of radius hx along z, |z| <= hz, with caps
                a = ldx * ldx + ldy * ldy
                b = lox * ldx + loy * ldy
                c = lox * lox + loy * loy - hx * hx
                disc = b * b - a * c
                sq = tl.sqrt(tl.maximum(disc, 0.0))
                inv_a = _safe_inverse(a)
                side_ok = (disc >= 0) & (a > 1e-12)
                t1 = (-b - sq) * inv_a
                t2 = (-b + sq) * inv_a
                t = tl.where(side_ok & (tl.abs(loz + t1 * ldz) <= hz) & (t1 > EPS), t1, inf)
                t = tl.minimum(t, tl.where(side_ok & (tl.abs(loz + t2 * ldz) <= hz) & (t2 > EPS), t2, inf))
                inv_dz = _safe_inverse(ldz)
                for sign in tl.static_range(2):
                    cap = hz * (2.0 * sign - 1.0)
                    tc = (cap - loz) * inv_dz
                    cx = lox + tc * ldx
                    cy = loy + tc * ldy
                    t = tl.minimum(t, tl.where((cx * cx + cy * cy <= hx * hx) & (tc > EPS), tc, inf))
            closer = t < best_t
            best_t = tl.where(closer, t, best_t)
            best_kind = tl.where(closer, kind, best_kind)
            best_index = tl.where(closer, tl.load(row + 17), best_index)
    out = scene * num_rays + rays
    best_t = tl.where(active > 0, best_t, inf)
    tl.store(t_ptr + out, best_t, mask=in_range)
    tl.store(kind_ptr + out, best_kind.to(tl.int64), mask=in_range)
    tl.store(index_ptr + out, best_index.to(tl.int64), mask=in_range)


def cast_rays_triton(shapes: dict[str, ShapeSet], origins: Tensor, dirs: Tensor, active: Tensor | None = None) -> Hit:
    """Nearest hit of every ray (S, R, 3) over its scene's shapes: primitives.cast_rays on a CUDA device.
    Rays where `active` (S, R) is False get no hit."""
    num_scenes, num_rays = origins.shape[:2]
    if active is None:
        active = torch.ones(num_scenes, num_rays, device=origins.device, dtype=torch.int8)
    table = pack_shapes(shapes)
    origins, dirs = origins.float().contiguous(), dirs.float().contiguous()
    t = torch.empty(num_scenes, num_rays, device=origins.device, dtype=torch.float32)
    kind = torch.empty(num_scenes, num_rays, device=origins.device, dtype=torch.long)
    index = torch.empty_like(kind)
    grid = (triton.cdiv(num_rays, BLOCK), num_scenes)
    _cast_kernel[grid](
        origins, dirs, active.to(torch.int8).contiguous(), table, t, kind, index, num_rays, table.shape[1],
        EPS=_EPS, FIELDS=SHAPE_FIELDS, BLOCK_RAYS=BLOCK,
    )
    return Hit(t=t, kind=kind, index=index)
