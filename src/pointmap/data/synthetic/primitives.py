"""Ray casting against analytic shapes: exact nearest-hit distances for batches of rays.

Every shape lives in its own local frame (a rotation and a centre, no scale, so distances along a ray
are the same in both frames):
    quad      the rectangle |x| <= hx, |y| <= hy in the plane z = 0 (two-sided)
    box       |x| <= hx, |y| <= hy, |z| <= hz
    sphere    |p| <= r (r = half[..., 0])
    cylinder  x^2 + y^2 <= r^2 (r = half[..., 0]), |z| <= hz, with both caps
Rays of S scenes are cast against that scene's shapes only: all shapes of one kind are tested at once,
then the nearest hit over the kinds wins. Padding shapes (alive False) never hit.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from torch import Tensor

from .fused import maybe_fused

KINDS = ("quad", "box", "sphere", "cylinder")
"""Shape kinds, in the order of `Hit.kind`."""

_EPS = 1e-4
"""Smallest accepted hit distance, so that shadow rays leaving a surface do not hit it again."""


@dataclass
class ShapeSet:
    """Shapes of one kind in S scenes, padded to P per scene.

    Attributes:
        center: (S, P, 3) local origin in the world frame.
        rotation: (S, P, 3, 3) local-to-world rotation; its columns are the local axes in the world.
        half: (S, P, 3) half extents along the local axes (see the module docstring per kind).
        material: (S, P) long index into the scene's materials.
        alive: (S, P) bool, False for padding.
    """

    center: Tensor
    rotation: Tensor
    half: Tensor
    material: Tensor
    alive: Tensor

    @property
    def count(self) -> int:
        return self.center.shape[1]


@dataclass
class Hit:
    """Nearest hit per ray; rays that hit nothing have t = inf.

    Attributes:
        t: (S, R) distance along the (unit) ray direction.
        kind: (S, R) long index into KINDS.
        index: (S, R) long shape index within its kind.
    """

    t: Tensor
    kind: Tensor
    index: Tensor


def to_local_frame(v: Tensor, rotation: Tensor) -> Tensor:
    """(..., 3) world vectors in the frames of rotations (..., 3, 3) (local-to-world): v @ rotation.

    Written out per component: millions of 3x3 products as batched matmuls run as one tiny GEMV each
    (tens of launches on a GPU), and as `.sum(-2)` torch.compile makes them slow size-3 reductions;
    written out they are one elementwise pass over memory.
    """
    return v[..., 0:1] * rotation[..., 0, :] + v[..., 1:2] * rotation[..., 1, :] + v[..., 2:3] * rotation[..., 2, :]


def to_world_frame(v: Tensor, rotation: Tensor) -> Tensor:
    """(..., 3) local vectors in the world frame: rotation @ v, written out (see to_local_frame)."""
    return rotation[..., 0] * v[..., 0:1] + rotation[..., 1] * v[..., 1:2] + rotation[..., 2] * v[..., 2:3]


def _to_local(shapes: ShapeSet, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """(S, R, 3) world rays to (S, R, P, 3) rays in each shape's frame."""
    rel = origins[:, :, None, :] - shapes.center[:, None, :, :]  # (S, R, P, 3)
    o_local = torch.einsum("srpk,spkj->srpj", rel, shapes.rotation)
    d_local = torch.einsum("srk,spkj->srpj", dirs, shapes.rotation)
    return o_local, d_local


def _safe_inverse(x: Tensor) -> Tensor:
    # Rays parallel to a slab get a huge finite inverse instead of inf, so 0 * inf never makes a NaN.
    tiny = torch.full_like(x, 1e-20)
    return 1.0 / torch.where(x.abs() < 1e-20, torch.where(x < 0, -tiny, tiny), x)


def _quad_t(o: Tensor, d: Tensor, half: Tensor) -> Tensor:
    t = -o[..., 2] * _safe_inverse(d[..., 2])
    p = o + t[..., None] * d
    inside = (p[..., 0].abs() <= half[..., 0]) & (p[..., 1].abs() <= half[..., 1]) & (t > _EPS)
    return torch.where(inside, t, torch.full_like(t, torch.inf))


def _box_t(o: Tensor, d: Tensor, half: Tensor) -> Tensor:
    inv = _safe_inverse(d)
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    t_near = torch.minimum(t1, t2).amax(dim=-1)
    t_far = torch.maximum(t1, t2).amin(dim=-1)
    t = torch.where(t_near > _EPS, t_near, t_far)  # from inside a box (a room) the far side is hit
    hit = (t_near <= t_far) & (t > _EPS)
    return torch.where(hit, t, torch.full_like(t, torch.inf))


def _first_root(b: Tensor, disc: Tensor, a: Tensor | None = None) -> Tensor:
    """Smallest root > eps of a t^2 + 2 b t + c with discriminant disc = b^2 - a c (a = 1 if None)."""
    sq = disc.clamp_min(0).sqrt()
    near, far = -b - sq, -b + sq
    if a is not None:
        inv_a = _safe_inverse(a)
        near, far = near * inv_a, far * inv_a
    t = torch.where(near > _EPS, near, far)
    return torch.where((disc >= 0) & (t > _EPS), t, torch.full_like(t, torch.inf))


def _sphere_t(shapes: ShapeSet, origins: Tensor, dirs: Tensor) -> Tensor:
    # Spheres need no rotation: intersect in the world frame, centred.
    rel = origins[:, :, None, :] - shapes.center[:, None, :, :]  # (S, R, P, 3)
    radius = shapes.half[:, None, :, 0]
    b = (rel * dirs[:, :, None, :]).sum(-1)
    disc = b * b - ((rel * rel).sum(-1) - radius * radius)
    return _first_root(b, disc)


def _cylinder_t(o: Tensor, d: Tensor, half: Tensor) -> Tensor:
    radius, half_height = half[..., 0], half[..., 2]
    a = d[..., 0] ** 2 + d[..., 1] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 1] * d[..., 1]
    c = o[..., 0] ** 2 + o[..., 1] ** 2 - radius**2
    disc = b * b - a * c
    sq = disc.clamp_min(0).sqrt()
    inv_a = _safe_inverse(a)
    inf = torch.full_like(b, torch.inf)
    best = inf
    for t_side in ((-b - sq) * inv_a, (-b + sq) * inv_a):
        z = o[..., 2] + t_side * d[..., 2]
        ok = (disc >= 0) & (a > 1e-12) & (z.abs() <= half_height) & (t_side > _EPS)
        best = torch.minimum(best, torch.where(ok, t_side, inf))
    inv_dz = _safe_inverse(d[..., 2])
    for cap in (-half_height, half_height):
        t_cap = (cap - o[..., 2]) * inv_dz
        x = o[..., 0] + t_cap * d[..., 0]
        y = o[..., 1] + t_cap * d[..., 1]
        ok = (x * x + y * y <= radius**2) & (t_cap > _EPS)
        best = torch.minimum(best, torch.where(ok, t_cap, inf))
    return best


def _exact_t(kind: str, o_local: Tensor, d_local: Tensor, half: Tensor) -> Tensor:
    return {"quad": _quad_t, "box": _box_t, "cylinder": _cylinder_t}[kind](o_local, d_local, half)


def shape_distances(kind: str, shapes: ShapeSet, origins: Tensor, dirs: Tensor) -> Tensor:
    """Hit distance of every ray against every shape of one kind (dense: for tests and few rays).

    Args:
        kind: one of KINDS.
        shapes: S scenes of P shapes of that kind.
        origins: (S, R, 3) ray origins, world frame.
        dirs: (S, R, 3) unit ray directions, world frame.
    Returns:
        (S, R, P) distances, inf where a ray misses a shape.
    """
    if kind == "sphere":
        t = _sphere_t(shapes, origins, dirs)
    else:
        o, d = _to_local(shapes, origins, dirs)
        t = _exact_t(kind, o, d, shapes.half[:, None])
    return torch.where(shapes.alive[:, None, :], t, torch.full_like(t, torch.inf))


def _sphere_local_t(o: Tensor, d: Tensor, half: Tensor) -> Tensor:
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - half[..., 0] ** 2)
    return _first_root(b, disc)


def _bounding_candidates(origins: Tensor, dirs: Tensor, centers: Tensor, radius_sq: Tensor, alive: Tensor) -> Tensor:
    """(S, R, P) bool: rays (S, R, 3) that meet the bounding spheres (S, P) ahead of (or around) them."""
    # Ray-to-centre geometry through matrix products, without (S, R, P, 3) temporaries:
    # along = d.(c - o), |c - o|^2 = |c|^2 - 2 o.c + |o|^2.
    d_dot_c = dirs @ centers.transpose(1, 2)  # (S, R, P)
    o_dot_c = origins @ centers.transpose(1, 2)
    c_sq = (centers * centers).sum(-1)[:, None, :]
    o_sq = (origins * origins).sum(-1, keepdim=True)
    along = d_dot_c - (dirs * origins).sum(-1, keepdim=True)
    dist_sq = c_sq - 2 * o_dot_c + o_sq
    # The expanded products lose ~1e-7 relative to |c|^2 + |o|^2 in float32: widen the test by that.
    reach = radius_sq[:, None, :] + 1e-5 * (c_sq + o_sq) + 1e-6
    candidate = (dist_sq - along * along <= reach) & ((along > 0) | (dist_sq <= reach))
    return candidate & alive[:, None, :]


def _nearest_culled(
    kind: str, shapes: ShapeSet, origins: Tensor, dirs: Tensor, compiled: bool = False
) -> tuple[Tensor, Tensor]:
    """Nearest hit (S, R) distance and shape index over one kind, testing exactly only the ray-shape
    pairs whose bounding sphere the ray meets: most pairs miss, and the exact tests cost 5-10x more."""
    centers = shapes.center
    radius_sq = (shapes.half * shapes.half).sum(-1)  # bounding sphere of the half extents
    candidates = maybe_fused(_bounding_candidates, compiled)  # one kernel instead of ~15 passes over (S, R, P)
    candidate = candidates(origins, dirs, centers, radius_sq, shapes.alive)
    s_idx, r_idx, p_idx = candidate.nonzero(as_tuple=True)
    rotation = shapes.rotation[s_idx, p_idx]  # (K, 3, 3)
    o_local = to_local_frame(origins[s_idx, r_idx] - centers[s_idx, p_idx], rotation)
    d_local = to_local_frame(dirs[s_idx, r_idx], rotation)
    exact = _sphere_local_t if kind == "sphere" else {"quad": _quad_t, "box": _box_t, "cylinder": _cylinder_t}[kind]
    t = exact(o_local, d_local, shapes.half[s_idx, p_idx])  # (K,)
    num_scenes, num_rays = origins.shape[:2]
    ray = s_idx * num_rays + r_idx
    best = torch.full((num_scenes * num_rays,), torch.inf, device=t.device, dtype=t.dtype)
    best = best.scatter_reduce(0, ray, t, reduce="amin")
    index = torch.zeros(num_scenes * num_rays, device=t.device, dtype=torch.long)
    winner = t == best[ray]
    index[ray[winner]] = p_idx[winner]
    return best.reshape(num_scenes, num_rays), index.reshape(num_scenes, num_rays)


def cast_rays(
    shapes: dict[str, ShapeSet],
    origins: Tensor,
    dirs: Tensor,
    chunk_elements: int | None = None,
    compiled: bool = False,
    use_triton: bool = True,
    active: Tensor | None = None,
) -> Hit:
    """Nearest hit of every ray over all shapes of its scene.

    Args:
        shapes: kind -> ShapeSet, each with the same S.
        origins: (S, R, 3) ray origins, world frame.
        dirs: (S, R, 3) unit ray directions, world frame.
        chunk_elements: rays are cast in chunks of about this many ray-shape tests, to bound memory;
            None: 2^27 on a GPU (a few GB of temporaries), 2^22 on a CPU (cache-friendly).
        compiled: cull with a torch.compile'd kernel (faster on GPUs; the first call compiles for
            tens of seconds).
        use_triton: on a CUDA device with Triton installed, cast with the one-kernel Triton path
            (cast_triton.py, about two orders of magnitude faster); the arguments above then do not apply.
        active: (S, R) bool, the rays to cast; the others get no hit (t = inf). None: every ray.
    Returns:
        the nearest Hit per ray.
    """
    if use_triton and origins.is_cuda and importlib.util.find_spec("triton") is not None:
        from .cast_triton import cast_rays_triton

        return cast_rays_triton(shapes, origins, dirs, active)
    if active is not None:
        hit = cast_rays(shapes, origins, dirs, chunk_elements, compiled, use_triton=False)
        hit.t = torch.where(active, hit.t, torch.full_like(hit.t, torch.inf))
        return hit
    if chunk_elements is None:
        chunk_elements = 1 << 27 if origins.is_cuda else 1 << 22
    num_scenes, num_rays = origins.shape[:2]
    total = max(1, sum(s.count for s in shapes.values()))
    step = max(256, chunk_elements // (num_scenes * total))
    ts, kinds, indices = [], [], []
    for start in range(0, num_rays, step):
        o, d = origins[:, start : start + step], dirs[:, start : start + step]
        best_t = torch.full(o.shape[:2], torch.inf, device=o.device, dtype=o.dtype)
        best_kind = torch.zeros(o.shape[:2], device=o.device, dtype=torch.long)
        best_index = torch.zeros_like(best_kind)
        for kind_id, kind in enumerate(KINDS):
            if kind not in shapes or shapes[kind].count == 0:
                continue
            t_min, index = _nearest_culled(kind, shapes[kind], o, d, compiled)
            closer = t_min < best_t
            best_t = torch.where(closer, t_min, best_t)
            best_kind = torch.where(closer, kind_id, best_kind)
            best_index = torch.where(closer, index, best_index)
        ts.append(best_t)
        kinds.append(best_kind)
        indices.append(best_index)
    return Hit(t=torch.cat(ts, 1), kind=torch.cat(kinds, 1), index=torch.cat(indices, 1))


def occluded(
    shapes: dict[str, ShapeSet], origins: Tensor, dirs: Tensor, max_t: Tensor, compiled: bool = False,
    active: Tensor | None = None,
) -> Tensor:
    """(S, R) bool: True where a ray hits any shape before distance max_t (S, R) (shadow rays); rays where
    `active` (S, R) is False are not cast and count as not occluded."""
    return cast_rays(shapes, origins, dirs, compiled=compiled, active=active).t < max_t


def local_normals(kind: Tensor, p_local: Tensor, half: Tensor) -> Tensor:
    """Outward unit normals at hit points, in each shape's local frame.

    Args:
        kind: (...,) long index into KINDS.
        p_local: (..., 3) hit points in the local frame.
        half: (..., 3) half extents of the hit shape.
    Returns:
        (..., 3) unit normals (quads: +z; callers flip two-sided surfaces towards the ray).
    """
    # Written per component with `where` (no argmax, scatter or gather): compiled, it is one elementwise pass.
    x, y, z = p_local.unbind(-1)
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    quad = torch.stack([zero, zero, one], -1)
    # Box: the face whose axis the point is furthest out on, relative to the half extent (first axis on ties).
    rel = p_local.abs() / half.clamp_min(1e-9)
    on_x = (rel[..., 0] >= rel[..., 1]) & (rel[..., 0] >= rel[..., 2])
    on_y = ~on_x & (rel[..., 1] >= rel[..., 2])
    on_z = ~on_x & ~on_y
    box = torch.stack([torch.where(on_x, x.sign(), zero), torch.where(on_y, y.sign(), zero),
                       torch.where(on_z, z.sign(), zero)], -1)
    radius = torch.sqrt(x * x + y * y)
    sphere = p_local / torch.sqrt(x * x + y * y + z * z).clamp_min(1e-9)[..., None]
    radial = torch.stack([x, y, zero], -1) / radius.clamp_min(1e-9)[..., None]
    cap = torch.stack([zero, zero, z.sign()], -1)
    # A cylinder point belongs to a cap when it is nearer the cap plane than the side, relative to size.
    on_cap = (half[..., 2] - z.abs()) < (half[..., 0] - radius)
    cylinder = torch.where(on_cap[..., None], cap, radial)
    kind = kind[..., None]
    return torch.where(kind == 0, quad, torch.where(kind == 1, box, torch.where(kind == 2, sphere, cylinder)))
