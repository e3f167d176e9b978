"""Multi-view captures of one synthetic scene: N posed views with exact depth, e.g. for global alignment."""

from __future__ import annotations

import math

import torch

from ..sample import ViewSample
from .cameras import intrinsics_from_fov, look_at, open_view
from .render import render_depth, render_views
from .sampling import LayoutBatch, clear_eyes
from .scenes import make_scene


def views_to_samples(rgb, depth, intrinsics, cam2world, sources: list[str]) -> list[ViewSample]:
    """Training samples from rendered views.

    Args:
        rgb: (B, 3, H, W) in [0, 1]; depth: (B, H, W), 0 where unknown (sky).
        intrinsics: (B, 3, 3); cam2world: (B, 4, 4).
        sources: B names, e.g. "synthetic/room/seed=3/cam=0".
    Returns:
        B ViewSamples (image in [-1, 1]), on the device of rgb.
    """
    # Batched ops, then per-view slices: a few kernels per call rather than a few per view.
    images, depths, valids = (rgb * 2 - 1).unbind(0), depth.unbind(0), (depth > 0).unbind(0)
    intrinsics = intrinsics.to(rgb.device, torch.float32).unbind(0)
    cam2world = cam2world.to(rgb.device, torch.float32).unbind(0)
    return [
        ViewSample(image=image, depth=d, valid=v, intrinsics=k, cam2world=pose, source=source)
        for image, d, v, k, pose, source in zip(images, depths, valids, intrinsics, cam2world, sources, strict=True)
    ]


def room_capture(
    seed: int,
    num_cameras: int,
    height: int = 384,
    width: int = 512,
    device=None,
    hfov_deg: float = 65.0,
    supersample: int = 1,
) -> list[ViewSample]:
    """A furnished room seen by cameras spread around it, each looking across the room.

    Cameras stand on an ellipse at 70 % of the room's half sizes (moved inwards or outwards where
    furniture stands there), at eye height (1.3-1.7 m), evenly spaced in angle with a little jitter, and
    look at points near the room centre: neighbours overlap strongly, opposite cameras see each other's
    side of the room.

    Args:
        seed: the room (make_scene("room", seed)) and the camera jitter.
        num_cameras: number of views N.
        height, width: image size in pixels.
        hfov_deg: horizontal field of view of every camera.
        supersample: anti-aliasing factor of the colour (see render_views).
    Returns:
        N ViewSamples on `device`, sources "synthetic/room/seed=S/cam=i".
    """
    if num_cameras < 1:
        raise ValueError(f"room_capture: num_cameras={num_cameras}; pass at least 1")
    scene = make_scene("room", seed, device=device)
    half_x, half_y, _ = scene.layouts[0].extent
    generator = torch.Generator().manual_seed(seed)
    jitter = torch.rand(num_cameras, 6, generator=generator) - 0.5
    angle = 2 * math.pi * torch.arange(num_cameras) / num_cameras + jitter[:, 0] * (math.pi / num_cameras)
    # Candidate ellipses, preferred first; each camera keeps the first that clears the furniture and
    # sees open space (probe depth maps).
    ring = torch.tensor([0.7, 0.8, 0.6, 0.88, 0.5, 0.4, 0.3])
    eyes = torch.stack(
        [
            ring[:, None] * half_x * torch.cos(angle),
            ring[:, None] * half_y * torch.sin(angle),
            (1.5 + 0.4 * jitter[:, 1]).expand(len(ring), -1),
        ],
        -1,
    ).reshape(-1, 3)  # (ring * N, 3), ring-major
    target = torch.stack([0.6 * jitter[:, 2], 0.6 * jitter[:, 3], 0.9 + 0.4 * jitter[:, 4]], -1)
    roll = torch.deg2rad(4 * jitter[:, 5])
    candidates = look_at(eyes, target.repeat(len(ring), 1), roll.repeat(len(ring)))
    probe_k = intrinsics_from_fov(torch.full((len(eyes),), hfov_deg), 24, 32)
    probe = render_depth(scene, probe_k, candidates, 24, 32).cpu()
    clear = clear_eyes(LayoutBatch.of(scene.layouts).obstacles, eyes[None])[0].reshape(len(ring), num_cameras)
    good = clear & open_view(probe).reshape(len(ring), num_cameras)
    # Without a good one, the candidate that sees farthest (median probe depth) wins.
    median = probe.flatten(1).median(dim=1).values.reshape(len(ring), num_cameras)
    pick = torch.where(good.any(0), good.float().argmax(0), median.argmax(0))
    cam2world = candidates.reshape(len(ring), num_cameras, 4, 4)[pick, torch.arange(num_cameras)]
    return _render_capture(scene, "room", seed, cam2world, hfov_deg, height, width, supersample)


def object_capture(
    seed: int,
    num_cameras: int,
    height: int = 384,
    width: int = 512,
    device=None,
    hfov_deg: float = 50.0,
    supersample: int = 1,
    textureless: bool = False,
    distance: float = 2.3,
) -> list[ViewSample]:
    """One to four objects on a table or the ground, photographed all the way round, as object-centric sets are.

    Cameras stand on a circle of `distance` +- 13 % (2.0-2.6 m) around the objects (the "objects" scene kind:
    everything of interest within about 1 m of the centre; training cameras orbit at 1.2-3.5 m), 20-40 deg above
    them, evenly spaced in angle with a little jitter, and look at a point near the objects' centre: neighbours
    turn 360 / N deg, opposite cameras see the far side.

    Arguments as room_capture's, for make_scene("objects", seed); `textureless` paints the objects in flat
    colours (the same shapes; the ground and background keep their patterns). Returns N ViewSamples on `device`,
    sources "synthetic/objects/seed=S/cam=i" ("objects-plain" when textureless).
    """
    if num_cameras < 1:
        raise ValueError(f"object_capture: num_cameras={num_cameras}; pass at least 1")
    scene = make_scene("objects", seed, device=device, plain_objects=textureless)
    centre = torch.tensor(scene.layouts[0].target)  # the objects' centre
    generator = torch.Generator().manual_seed(seed)
    jitter = torch.rand(num_cameras, 6, generator=generator) - 0.5  # (N, 6) in [-0.5, 0.5)
    angle = 2 * math.pi * torch.arange(num_cameras) / num_cameras + jitter[:, 0] * (math.pi / num_cameras)
    radius = distance + 0.6 * (distance / 2.3) * jitter[:, 1]  # (N,) within 13 % of distance
    elevation = torch.deg2rad(30 + 20 * jitter[:, 2])
    eyes = centre + torch.stack(
        [
            radius * torch.cos(elevation) * torch.cos(angle),
            radius * torch.cos(elevation) * torch.sin(angle),
            radius * torch.sin(elevation),
        ],
        -1,
    )  # (N, 3)
    target = centre + 0.2 * torch.stack([jitter[:, 3], jitter[:, 4], torch.zeros(num_cameras)], -1)
    cam2world = look_at(eyes, target, torch.deg2rad(4 * jitter[:, 5]))
    kind = "objects-plain" if textureless else "objects"
    return _render_capture(scene, kind, seed, cam2world, hfov_deg, height, width, supersample)


def _render_capture(scene, kind: str, seed: int, cam2world: torch.Tensor, hfov_deg: float, height: int, width: int,
                    supersample: int) -> list[ViewSample]:
    """Render one scene from (N, 4, 4) cam2world poses into ViewSamples, sources "synthetic/KIND/seed=S/cam=i"."""
    intrinsics = intrinsics_from_fov(torch.full((len(cam2world),), hfov_deg), height, width)
    rgb, depth = render_views(scene, intrinsics, cam2world, height, width, supersample=supersample)
    sources = [f"synthetic/{kind}/seed={seed}/cam={i}" for i in range(len(cam2world))]
    return views_to_samples(rgb, depth, intrinsics, cam2world, sources)
