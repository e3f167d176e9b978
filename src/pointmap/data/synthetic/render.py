"""Render synthetic scenes: ray cast, texture, shade (Lambertian, shadows) and tone-map to sRGB."""

from __future__ import annotations

import torch
from torch import Tensor

from ...geometry.cameras import pixel_grid
from .fused import maybe_fused
from .primitives import KINDS, cast_rays, local_normals, occluded, to_local_frame, to_world_frame
from .scenes import SyntheticScene, select_scenes
from .textures import albedo, fbm


def camera_rays(intrinsics: Tensor, cam2world: Tensor, height: int, width: int, supersample: int = 1):
    """World rays through pixel centres (pixel (x, y) = (column, row), as in geometry.cameras).

    Args:
        intrinsics: (B, 3, 3) K in pixels.
        cam2world: (B, 4, 4) OpenCV camera-to-world poses.
        supersample: s > 1 casts s x s rays per pixel, spread evenly over the pixel's footprint.
    Returns:
        origins (B, R, 3), unit directions (B, R, 3) and z_per_t (B, R), the camera-frame z of each unit
        direction (depth = t * z_per_t); R = H * W * s^2, rays in row-major order of the (s H, s W) grid.
    """
    xy = pixel_grid(height * supersample, width * supersample, device=intrinsics.device, dtype=intrinsics.dtype)
    xy = (xy + 0.5) / supersample - 0.5  # sub-pixel sample centres; s = 1 gives the pixel centres
    xy = xy.reshape(-1, 2)
    fx, fy = intrinsics[:, None, 0, 0], intrinsics[:, None, 1, 1]
    cx, cy = intrinsics[:, None, 0, 2], intrinsics[:, None, 1, 2]
    dirs_cam = torch.stack(
        [(xy[:, 0] - cx) / fx, (xy[:, 1] - cy) / fy, torch.ones_like(cx.expand(-1, xy.shape[0]))], -1
    )
    dirs_cam = dirs_cam / dirs_cam.norm(dim=-1, keepdim=True)
    dirs = dirs_cam @ cam2world[:, :3, :3].transpose(1, 2)
    origins = cam2world[:, None, :3, 3].expand_as(dirs)
    return origins, dirs, dirs_cam[..., 2]


def _shape_table(scene: SyntheticScene) -> tuple[Tensor, Tensor]:
    """Every shape of every scene as one row: (S * P, 16) float [centre 3, rotation 9, half extents 3,
    material 1], each scene's P shapes in KINDS order; and (len(KINDS),) where each kind starts among them."""
    sets = [scene.shapes[name] for name in KINDS]
    rows = torch.cat(
        [torch.cat([s.center, s.rotation.flatten(-2), s.half, s.material[..., None].float()], -1) for s in sets], 1
    )  # (S, P, 16)
    counts = torch.tensor([0] + [s.count for s in sets[:-1]])
    return rows.reshape(-1, rows.shape[-1]), counts.cumsum(0).to(rows.device)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    """(..., 1) dot products of 3-vectors, written out (compiled, a size-3 `.sum(-1)` is a slow reduction)."""
    return a[..., 0:1] * b[..., 0:1] + a[..., 1:2] * b[..., 1:2] + a[..., 2:3] * b[..., 2:3]


def _unit(v: Tensor) -> tuple[Tensor, Tensor]:
    """v (..., 3) divided by its length, and the length (..., 1) clamped away from 0."""
    length = _dot(v, v).sqrt().clamp_min(1e-6)
    return v / length, length


def _surface(points: Tensor, dirs: Tensor, kind: Tensor, center: Tensor, rotation: Tensor, half: Tensor):
    """Hit points (N, 3) in their shape's frame, and unit normals facing the viewer in both frames."""
    p_local = to_local_frame(points - center, rotation)
    n_local = local_normals(kind, p_local, half)
    normals = to_world_frame(n_local, rotation)
    facing = torch.where(_dot(normals, dirs) > 0, -1.0, 1.0)  # two-sided: face the viewer
    return p_local, n_local * facing, normals * facing


def _light(n: Tensor, p: Tensor, to_eye: Tensor, position: Tensor, directional: Tensor, colour: Tensor):
    """One light at hits with normals n and points p (N, 3): unit direction and distance to it, the
    Lambert cosine, the light arriving (N, 3, before shadows) and the Blinn-Phong highlight factor."""
    to_light, distance = _unit(torch.where(directional, position, position - p))
    falloff = torch.where(directional, torch.ones_like(distance), 1.0 / (distance**2 + 0.1))
    lambert = _dot(n, to_light).clamp_min(0)
    arriving = colour * falloff * (lambert > 0)
    # Blinn-Phong highlight: view-dependent, as on real varnish, plastic and paint.
    half_vector, _ = _unit(to_light + to_eye)
    highlight = _dot(n, half_vector).clamp_min(0) ** 40
    return to_light, distance, lambert, arriving, highlight


def shade_rays(
    scene: SyntheticScene,
    origins: Tensor,
    dirs: Tensor,
    shadows: bool = True,
    compiled: bool = False,
    flash: Tensor | None = None,
    scene_light: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Linear radiance and hit distance of world rays.

    Args:
        scene: S scenes.
        origins: (S, R, 3) world ray origins.
        dirs: (S, R, 3) unit world directions.
        shadows: cast a shadow ray towards the first light of each scene.
        compiled: run the elementwise chains (surface frames, textures, lights, sky) as compiled kernels.
        flash: (S, R) intensity (at 1 m) of a white point light at each ray's origin, the camera's flash: it
            lights what the ray hits with the same inverse-square falloff as the scene's point lights, casts
            no shadow the camera can see and puts its highlight where surfaces face the camera; None for none.
        scene_light: (S, R) scale of everything the scene itself lights or emits (its lights, sky, ground and
            emissive materials; the exposure a flash photo leaves them); None keeps them as they are.
    Returns:
        radiance (S, R, 3) linear RGB (sky colour where a ray escapes) and t (S, R), inf on escape.
    """
    hit = cast_rays(scene.shapes, origins, dirs, compiled=compiled)
    valid = torch.isfinite(hit.t)
    # Hits and escaped rays as flat row indices, found once (two host syncs): everything below works on the
    # N hit rows alone (sky rays need no surface), and boolean-mask indexing would sync at every use.
    num_rays = hit.t.shape[1]
    hit_rows, sky_rows = valid.reshape(-1).nonzero()[:, 0], (~valid).reshape(-1).nonzero()[:, 0]

    def at_hits(x: Tensor) -> Tensor:
        return x.reshape(-1, *x.shape[2:])[hit_rows]

    hit_scene, hit_kind, t_hit = hit_rows // num_rays, at_hits(hit.kind), at_hits(hit.t)  # (N,)
    table, first_of_kind = _shape_table(scene)
    shape = table[hit_scene * (table.shape[0] // scene.num_scenes) + first_of_kind[hit_kind] + at_hits(hit.index)]
    to_eye = -at_hits(dirs)  # (N, 3)
    p = at_hits(origins) - t_hit[:, None] * to_eye  # (N, 3) hit points
    p_local, n_local, n = maybe_fused(_surface, compiled)(
        p, -to_eye, hit_kind, shape[:, 0:3], shape[:, 3:12].reshape(-1, 3, 3), shape[:, 12:15]
    )
    hit_material = shape[:, 15].long()
    colour = albedo(scene.materials, hit_scene, hit_material, p_local, n_local, scene.photos, compiled)
    emission = scene.materials.emission[hit_scene, hit_material][:, None]
    gloss = scene.materials.gloss[hit_scene, hit_material][:, None]
    specular = torch.zeros_like(colour)
    lights = scene.lights
    up = n[:, 2:3]
    irradiance = lights.sky[hit_scene] * (0.5 + 0.5 * up) + lights.ground[hit_scene] * (0.5 - 0.5 * up)
    light_terms = maybe_fused(_light, compiled)
    # Every light of each hit's scene gathered at once (N, L, ...): one gather per field, not per light.
    hit_position, hit_colour = lights.position[hit_scene], lights.colour[hit_scene]
    hit_directional = lights.directional[hit_scene][..., None]
    for light in range(lights.position.shape[1]):
        directional = hit_directional[:, light]
        to_light, distance, lambert, arriving, highlight = light_terms(
            n, p, to_eye, hit_position[:, light], directional, hit_colour[:, light]
        )
        if shadows and light == 0:
            # Sky pixels and surfaces facing away from the light need no shadow ray: they are not cast
            # (and keep origin 0, direction +z, max_t 0).
            facing = lambert > 0  # (N, 1)
            total = valid.numel()
            needed = valid.new_zeros(total).index_put((hit_rows,), facing[:, 0])
            shadow_origin = origins.new_zeros(total, 3)
            shadow_origin[hit_rows] = torch.where(facing, p + 2e-3 * n, 0.0)
            shadow_dir = dirs.new_zeros(total, 3)
            shadow_dir[:, 2] = 1
            shadow_dir[hit_rows] = torch.where(facing, to_light, shadow_dir[hit_rows])
            max_t = hit.t.new_zeros(total)
            reach = torch.where(directional, torch.full_like(distance, torch.inf), distance)
            max_t[hit_rows] = torch.where(facing, reach, 0.0)[:, 0]
            blocked = occluded(
                scene.shapes,
                shadow_origin.reshape(origins.shape),
                shadow_dir.reshape(dirs.shape),
                max_t.reshape(hit.t.shape),
                compiled,
                active=needed.reshape(valid.shape),
            )
            arriving = arriving * (~at_hits(blocked))[:, None]
        irradiance = irradiance + arriving * lambert
        specular = specular + arriving * highlight
    radiance_hit = colour * (irradiance + emission) + gloss * specular
    if scene_light is not None:
        radiance_hit = radiance_hit * at_hits(scene_light)[:, None]
    if flash is not None:
        # The light sits at the eye: to_light = to_eye, so the Lambert cosine and the half vector are both n . to_eye.
        facing = _dot(n, to_eye).clamp_min(0)
        arriving = at_hits(flash)[:, None] / (t_hit[:, None] ** 2 + 0.1)
        radiance_hit = radiance_hit + arriving * (colour * facing + gloss * facing**40)

    radiance = dirs.new_empty(valid.numel(), 3)
    radiance[hit_rows] = radiance_hit
    sky_scene = sky_rows // num_rays
    sky = maybe_fused(_sky, compiled)(
        dirs.reshape(-1, 3)[sky_rows],
        lights.horizon[sky_scene],
        lights.sky[sky_scene],
        scene.materials.seed[sky_scene, 0],
    )
    radiance[sky_rows] = sky if scene_light is None else sky * scene_light.reshape(-1)[sky_rows, None]
    radiance = radiance.reshape(dirs.shape)
    return radiance, torch.where(valid, hit.t, torch.full_like(hit.t, torch.inf))


def _sky(d: Tensor, horizon: Tensor, zenith: Tensor, seed: Tensor) -> Tensor:
    """(N, 3) radiance of escaped rays of directions d (N, 3): a horizon-to-zenith gradient with fractal
    clouds; horizon and zenith (N, 3) colours and a (N,) per-scene seed of each ray's scene."""
    elevation = d[:, 2:3].clamp(0, 1).sqrt()
    gradient = horizon * (1 - elevation) + 2 * zenith * elevation
    # Clouds on a plane high above: projected directions, so they shrink towards the horizon.
    plane = d[:, :2] / (d[:, 2:3].clamp_min(0) + 0.15) * 1.5
    cover = fbm(torch.cat([plane, torch.zeros_like(plane[:, :1])], -1), seed + 99, octaves=4)
    cloud = ((cover - 0.45) / 0.3).clamp(0, 1)[:, None] * (d[:, 2:3] > 0)
    white = 0.9 * horizon.amax(-1, keepdim=True)
    return gradient * (1 - 0.8 * cloud) + white * 0.8 * cloud


def tone_map(radiance: Tensor, exposure: float = 1.6) -> Tensor:
    """Linear radiance to display sRGB in [0, 1]: a soft shoulder (no hard clipping), then gamma 2.2."""
    return (1 - torch.exp(-exposure * radiance)).clamp(0, 1) ** (1 / 2.2)


def _flatten_cameras(scene: SyntheticScene, intrinsics: Tensor, cam2world: Tensor):
    """(S, B, 3, 3) and (S, B, 4, 4) float32 cameras on the scene's device, from (B, ...) or (S, B, ...)."""
    if intrinsics.dim() == 3:
        if scene.num_scenes != 1:
            raise ValueError("render: stacked scenes need (S, B, 3, 3) intrinsics and (S, B, 4, 4) poses")
        intrinsics, cam2world = intrinsics[None], cam2world[None]
    if intrinsics.shape[0] != scene.num_scenes or cam2world.shape[:2] != intrinsics.shape[:2]:
        raise ValueError(
            f"render: cameras {tuple(intrinsics.shape)} / {tuple(cam2world.shape)} do not match "
            f"{scene.num_scenes} scene(s); pass (S, B, 3, 3) intrinsics and (S, B, 4, 4) poses"
        )
    device = scene.device
    return intrinsics.to(device, torch.float32), cam2world.to(device, torch.float32)


def _scene_rays(intrinsics: Tensor, cam2world: Tensor, height: int, width: int, supersample: int):
    num_scenes = intrinsics.shape[0]
    o, d, z = camera_rays(intrinsics.reshape(-1, 3, 3), cam2world.reshape(-1, 4, 4), height, width, supersample)
    return o.reshape(num_scenes, -1, 3), d.reshape(num_scenes, -1, 3), z.reshape(num_scenes, -1)


def rays_per_pass(device: torch.device) -> int:
    """Rays traced and shaded at once; bigger requests are split (shading temporaries grow with it,
    about 1 KB a ray). On a GPU, where each pass costs hundreds of kernel launches and a few host syncs,
    as many as a quarter of its memory holds (at least 8 M: 34 M on a 141 GB H200); 2 M on a CPU."""
    if device.type != "cuda":
        return 1 << 21
    return max(1 << 23, torch.cuda.get_device_properties(device).total_memory // 4096)


def _in_passes(scene: SyntheticScene, intrinsics: Tensor, cam2world: Tensor, rays_per_view: int, render,
               *per_view: Tensor):
    """Run render(sub_scene, K (s, b, 3, 3), pose (s, b, 4, 4), *per_view (s, b, ...)) -> tensors (s, b, ...)
    over groups of scenes and views of at most about rays_per_pass() rays, and join the results."""
    num_scenes, batch = intrinsics.shape[:2]
    views_per_pass = max(1, rays_per_pass(scene.device) // rays_per_view)
    scenes_per_pass = max(1, views_per_pass // batch)
    views_step = min(batch, views_per_pass)
    rows = []
    for s in range(0, num_scenes, scenes_per_pass):
        sub = scene if scenes_per_pass >= num_scenes else select_scenes(scene, s, s + scenes_per_pass)
        parts = [
            render(
                sub,
                intrinsics[s : s + scenes_per_pass, b : b + views_step],
                cam2world[s : s + scenes_per_pass, b : b + views_step],
                *(x[s : s + scenes_per_pass, b : b + views_step] for x in per_view),
            )
            for b in range(0, batch, views_step)
        ]
        rows.append(tuple(torch.cat(column, dim=1) for column in zip(*parts, strict=True)))
    return tuple(torch.cat(column, dim=0) for column in zip(*rows, strict=True))


def render_depth(
    scene: SyntheticScene,
    intrinsics: Tensor,
    cam2world: Tensor,
    height: int,
    width: int,
    compiled: bool = False,
) -> Tensor:
    """Exact z-depth only (no shading): cheap enough to probe candidate cameras.

    Args:
        scene, intrinsics, cam2world, height, width, compiled: as in render_views.
    Returns:
        (B, H, W) depth, or (S, B, H, W) for stacked scenes; 0 where a ray escapes.
    """
    stacked = intrinsics.dim() == 4
    intrinsics, cam2world = _flatten_cameras(scene, intrinsics, cam2world)

    def render(sub: SyntheticScene, K: Tensor, pose: Tensor) -> tuple[Tensor]:
        origins, dirs, z_per_t = _scene_rays(K, pose, height, width, 1)
        t = cast_rays(sub.shapes, origins, dirs, compiled=compiled).t
        depth = torch.where(torch.isfinite(t), t * z_per_t, torch.zeros_like(t))
        return (depth.reshape(*K.shape[:2], height, width),)

    (depth,) = _in_passes(scene, intrinsics, cam2world, height * width, render)
    return depth if stacked else depth[0]


def render_views(
    scene: SyntheticScene,
    intrinsics: Tensor,
    cam2world: Tensor,
    height: int,
    width: int,
    shadows: bool = True,
    supersample: int = 1,
    exposure: float = 1.6,
    compiled: bool = False,
    flash: Tensor | None = None,
    scene_light: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Render B cameras of one scene, or B cameras of each of S stacked scenes.

    Args:
        scene: from make_scene (S = 1) or stack_scenes (S > 1).
        intrinsics: (B, 3, 3), or (S, B, 3, 3) for stacked scenes; pixels of the (H, W) image.
        cam2world: (B, 4, 4), or (S, B, 4, 4); OpenCV camera-to-world poses, scene units (metres).
        height, width: image size in pixels.
        shadows: shadow rays towards each scene's first light (about doubles the cost).
        supersample: s x s rays per pixel for the colour (anti-aliasing); depth is always exact at the
            pixel centre.
        exposure: brightness before the tone curve.
        compiled: torch.compile the texture patterns and, without Triton, the ray culling (faster on
            GPUs; the first calls compile).
        flash: (B,) or (S, B) intensity at 1 m of each camera's flash (see shade_rays), or None for none.
        scene_light: (B,) or (S, B) scale of the scene's own light in each view (see shade_rays), or None;
            given together with `flash`.
    Returns:
        rgb (B, 3, H, W) in [0, 1] and depth (B, H, W) z-depth, 0 where a ray escapes to the sky
        ((S, B, ...) for stacked scenes); device of the scene.
    """
    stacked = intrinsics.dim() == 4
    intrinsics, cam2world = _flatten_cameras(scene, intrinsics, cam2world)
    lighting = ()
    if flash is not None or scene_light is not None:
        if flash is None or scene_light is None:
            raise ValueError("render_views: pass flash and scene_light together (zeros and ones leave a view as is)")
        lighting = tuple(x.reshape(intrinsics.shape[:2]).to(scene.device, torch.float32) for x in (flash, scene_light))
    rays_per_view = height * width * supersample**2

    def render(sub: SyntheticScene, K: Tensor, pose: Tensor, *view_light: Tensor) -> tuple[Tensor, Tensor]:
        num_scenes, batch = K.shape[:2]
        origins, dirs, z_per_t = _scene_rays(K, pose, height, width, supersample)
        # Each view's flash and scene light on each of its rays (rays are grouped by view, see camera_rays).
        flash_rays, light_rays = (
            x[..., None].expand(-1, -1, rays_per_view).reshape(num_scenes, -1) for x in view_light
        ) if view_light else (None, None)
        radiance, t = shade_rays(sub, origins, dirs, shadows, compiled, flash_rays, light_rays)
        rgb = tone_map(radiance, exposure).reshape(num_scenes * batch, height, supersample, width, supersample, 3)
        rgb = rgb.mean(dim=(2, 4)).permute(0, 3, 1, 2).reshape(num_scenes, batch, 3, height, width)
        if supersample > 1:
            depth = render_depth(sub, K, pose, height, width, compiled)
        else:
            depth = torch.where(torch.isfinite(t), t * z_per_t, torch.zeros_like(t))
        return rgb, depth.reshape(num_scenes, batch, height, width)

    rgb, depth = _in_passes(scene, intrinsics, cam2world, rays_per_view, render, *lighting)
    return (rgb, depth) if stacked else (rgb[0], depth[0])
