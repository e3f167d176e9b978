"""Procedural scenes of four kinds: furnished rooms, objects on a ground plane, streets with buildings, and
close-ups of a crowded table or floor.

World frame: z up, metres, ground or floor at z = 0. A scene is built with Python floats from a seeded
`random.Random` (tens of shapes: cheap), then becomes tensors on the requested device.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from .palette import PHOTO_SHARE, MaterialSpec, floor_material, random_colour, random_material, shade
from .primitives import KINDS, ShapeSet
from .textures import PATTERNS, Materials

SCENE_KINDS = ("room", "objects", "street", "clutter")
"""Scene kinds accepted by make_scene."""

Vec = tuple[float, float, float]
Mat3 = tuple[Vec, Vec, Vec]


@dataclass
class Layout:
    """Where cameras may stand and what they look at, for camera sampling.

    Attributes:
        kind: one of SCENE_KINDS.
        seed: the seed the scene was made from.
        extent: (x, y, z) half sizes of the room, of the object area, or of the street (x across, y along).
        target: a point worth looking at (room centre at eye level, the objects' centre).
        obstacles: (x, y, radius) footprints of things a camera must not stand in (furniture, trees).
        min_median_depth: a view is worth training on only if its median depth lies beyond this (metres):
            1 m keeps cameras from staring at a close wall; close-ups of small things need less.
    """

    kind: str
    seed: int
    extent: Vec
    target: Vec
    obstacles: tuple[tuple[float, float, float], ...] = ()
    min_median_depth: float = 1.0


@dataclass
class Lights:
    """Lights of S scenes, padded to L per scene (padding has zero colour). The first light casts shadows.

    Attributes:
        position: (S, L, 3) world position, or the direction towards the light where directional.
        colour: (S, L, 3) linear RGB intensity (point lights: at 1 m).
        directional: (S, L) bool.
        sky: (S, 3) ambient light from above (also the sky colour at the zenith).
        ground: (S, 3) ambient light from below.
        horizon: (S, 3) sky colour at the horizon, seen where rays escape.
    """

    position: Tensor
    colour: Tensor
    directional: Tensor
    sky: Tensor
    ground: Tensor
    horizon: Tensor


@dataclass
class SyntheticScene:
    """S procedural scenes ready to ray-cast (S = 1 from make_scene, more from stack_scenes).

    Attributes:
        shapes: kind -> ShapeSet, every kind of KINDS present (possibly with zero shapes).
        materials: the surface materials.
        lights: the lights and ambient terms.
        layouts: one Layout per scene.
        photos: (T, 3, h, w) linear photo bank for "photo" materials, or None.
    """

    shapes: dict[str, ShapeSet]
    materials: Materials
    lights: Lights
    layouts: list[Layout]
    photos: Tensor | None = None

    @property
    def num_scenes(self) -> int:
        return len(self.layouts)

    @property
    def device(self) -> torch.device:
        return self.lights.sky.device


def _yaw(angle: float) -> Mat3:
    c, s = math.cos(angle), math.sin(angle)
    return ((c, -s, 0.0), (s, c, 0.0), (0.0, 0.0, 1.0))


_IDENTITY: Mat3 = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def _frame_from_normal(normal: Vec, up: Vec) -> Mat3:
    """Rotation whose local z is `normal` and local y is `up` (both unit, orthogonal)."""
    nx, ny, nz = normal
    ux, uy, uz = up
    right = (uy * nz - uz * ny, uz * nx - ux * nz, ux * ny - uy * nx)  # up x normal
    return tuple(zip(right, up, normal, strict=True))  # columns: right, up, normal


@dataclass
class SceneBuilder:
    """Accumulates shapes, materials and lights of one scene as Python values; `to_scene` makes tensors.

    Compose scenes of your own with it (tests do), e.g.:
        b = SceneBuilder(random.Random(0))
        grey = b.material(MaterialSpec("plain", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
        b.add("sphere", (0, 0, 5), (1, 1, 1), grey)
        b.lights.append(((0, -3, 0), (5, 5, 5), False))  # (position or direction, colour, directional)
        scene = b.to_scene(Layout("objects", 0, (1, 1, 1), (0, 0, 5)))
    """

    rng: random.Random
    num_photos: int = 0
    photo_share: float = PHOTO_SHARE
    plain_objects: bool = False  # the objects of _composite_object in flat colours: no pattern, no grime
    shapes: dict[str, list[tuple[Vec, Mat3, Vec, int]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    materials: list[MaterialSpec] = field(default_factory=list)
    lights: list[tuple[Vec, Vec, bool]] = field(default_factory=list)

    def material(self, spec: MaterialSpec) -> int:
        self.materials.append(spec)
        return len(self.materials) - 1

    def family(self, name: str) -> int:
        return self.material(random_material(self.rng, name, self.num_photos, self.photo_share))

    def object_family(self, name: str) -> int:
        """A material of a family for an object; flat (textureless) with `plain_objects`. The same random draws
        either way, so a scene's shapes do not depend on it."""
        spec = random_material(self.rng, name, self.num_photos, self.photo_share)
        if self.plain_objects:
            spec = MaterialSpec("plain", spec.color_a, spec.color_a, grime=0.0, gloss=spec.gloss)
        return self.material(spec)

    def add(self, kind: str, center: Vec, half: Vec, material: int, rotation: Mat3 = _IDENTITY) -> None:
        """One shape of KINDS: centre (world), half extents, material index, local-to-world rotation."""
        self.shapes[kind].append((center, rotation, half, material))

    def box(self, center: Vec, half: Vec, material: int, yaw: float = 0.0) -> None:
        self.add("box", center, half, material, _yaw(yaw))

    def to_scene(
        self,
        layout: Layout,
        sky: Vec = (0.3, 0.3, 0.32),
        ground: Vec = (0.1, 0.1, 0.1),
        horizon: Vec = (0.7, 0.75, 0.8),
        device=None,
        photos: Tensor | None = None,
    ) -> SyntheticScene:
        """The scene as tensors on `device` (ambient light from the sky and the ground, sky colours)."""

        def floats(values, *shape: int) -> Tensor:  # numpy reads nested tuples several times faster than torch
            return torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(1, *shape))

        def longs(values) -> Tensor:
            return torch.from_numpy(np.asarray(values, dtype=np.int64).reshape(1, -1))

        shapes = {}
        for kind in KINDS:
            items = self.shapes[kind]
            shapes[kind] = ShapeSet(
                center=floats([c for c, _, _, _ in items], -1, 3),
                rotation=floats([r for _, r, _, _ in items], -1, 3, 3),
                half=floats([h for _, _, h, _ in items], -1, 3),
                material=longs([m for _, _, _, m in items]),
                alive=torch.ones(1, len(items), dtype=torch.bool),
            )
        specs = self.materials
        materials = Materials(
            pattern=longs([PATTERNS.index(m.pattern) for m in specs]),
            color_a=floats([m.color_a for m in specs], -1, 3),
            color_b=floats([m.color_b for m in specs], -1, 3),
            scale=floats([m.scale for m in specs], -1),
            seed=longs([self.rng.randrange(1 << 30) for _ in specs]),
            photo=longs([m.photo for m in specs]),
            grime=floats([m.grime for m in specs], -1),
            emission=floats([m.emission for m in specs], -1),
            gloss=floats([m.gloss for m in specs], -1),
        )
        lights = Lights(
            position=floats([p for p, _, _ in self.lights], -1, 3),
            colour=floats([c for _, c, _ in self.lights], -1, 3),
            directional=torch.tensor([[d for _, _, d in self.lights]], dtype=torch.bool).reshape(1, -1),
            sky=floats(sky, 3),
            ground=floats(ground, 3),
            horizon=floats(horizon, 3),
        )
        scene = SyntheticScene(shapes=shapes, materials=materials, lights=lights, layouts=[layout], photos=photos)
        return to_device(scene, device)


def _tensors(scene: SyntheticScene) -> list[Tensor]:
    """Every tensor of a scene but the photo bank, in a fixed order (shapes by kind, materials, lights)."""
    parts = [*scene.shapes.values(), scene.materials, scene.lights]
    return [value for part in parts for value in vars(part).values()]


def _with_tensors(scene: SyntheticScene, tensors: list[Tensor], layouts: list[Layout], photos) -> SyntheticScene:
    """`scene` rebuilt from new tensors given in the order of `_tensors(scene)`."""
    values = iter(tensors)

    def rebuild(obj):
        return type(obj)(**{k: next(values) for k in vars(obj)})

    return SyntheticScene(
        shapes={k: rebuild(v) for k, v in scene.shapes.items()},
        materials=rebuild(scene.materials),
        lights=rebuild(scene.lights),
        layouts=layouts,
        photos=photos,
    )


def to_device(scene: SyntheticScene, device) -> SyntheticScene:
    """The scene with every tensor moved to `device` (the photo bank included).

    The tensors (about 35) travel packed in one buffer per dtype: one host-to-device copy each instead
    of one per tensor (a copy from pageable memory stalls the host).
    """
    tensors = _tensors(scene)
    device = torch.device("cpu") if device is None else torch.device(device)
    there = all(t.device.type == device.type and device.index in (None, t.device.index) for t in tensors)
    photos = None if scene.photos is None else scene.photos.to(device)
    return _with_tensors(scene, tensors if there else packed_to(tensors, device), list(scene.layouts), photos)


def packed_to(tensors: list[Tensor], device) -> list[Tensor]:
    """The tensors on `device`, moved as one concatenated buffer per dtype; views of those buffers."""
    moved: list[Tensor | None] = [None] * len(tensors)
    for dtype in dict.fromkeys(t.dtype for t in tensors):
        slots = [i for i, t in enumerate(tensors) if t.dtype == dtype]
        packed = torch.cat([tensors[i].reshape(-1) for i in slots]).to(device)
        for i, chunk in zip(slots, packed.split([tensors[i].numel() for i in slots]), strict=True):
            moved[i] = chunk.view(tensors[i].shape)
    return moved


def select_scenes(scene: SyntheticScene, start: int, stop: int) -> SyntheticScene:
    """Scenes start..stop-1 of a stack (views of the same tensors, padding kept)."""
    tensors = [t[start:stop] for t in _tensors(scene)]
    return _with_tensors(scene, tensors, scene.layouts[start:stop], scene.photos)


def repeat_scenes(scene: SyntheticScene, index: Tensor) -> SyntheticScene:
    """Scenes index[0], index[1], ... of a stack (index: (N,) long, repeats allowed), on the stack's device."""
    layouts = [scene.layouts[i] for i in index.tolist()]  # before the move: a CPU index needs no host sync
    index = index.to(scene.device)
    return _with_tensors(scene, [t.index_select(0, index) for t in _tensors(scene)], layouts, scene.photos)


def _pad_cat(tensors: list[Tensor], fill: float | bool = 0) -> Tensor:
    """Concatenate (1, n_i, ...) tensors into (S, max n_i, ...), padding with `fill`."""
    width = max(t.shape[1] for t in tensors)
    padded = []
    for t in tensors:
        pad = t.new_full((1, width - t.shape[1], *t.shape[2:]), fill)
        padded.append(torch.cat([t, pad], dim=1))
    return torch.cat(padded, dim=0)


def stack_scenes(scenes: list[SyntheticScene]) -> SyntheticScene:
    """One batch of S scenes from S single scenes (padded shapes never hit, padded lights are dark).

    The photo bank of the first scene is kept: stacked scenes must share one bank.
    """
    if any(s.num_scenes != 1 for s in scenes):
        raise ValueError("stack_scenes: every input must hold one scene; stack single make_scene() results")

    def stack(objs):
        out = {}
        for name in vars(objs[0]):
            values = [getattr(o, name) for o in objs]
            if values[0].dim() == 1 or name in ("sky", "ground", "horizon"):
                out[name] = torch.cat(values, dim=0)
            else:
                out[name] = _pad_cat(values, False if values[0].dtype == torch.bool else 0)
        return type(objs[0])(**out)

    return SyntheticScene(
        shapes={k: stack([s.shapes[k] for s in scenes]) for k in KINDS},
        materials=stack([s.materials for s in scenes]),
        lights=stack([s.lights for s in scenes]),
        layouts=[s.layouts[0] for s in scenes],
        photos=scenes[0].photos,
    )


class _Placer:
    """Rejection sampling of non-overlapping footprints (discs) on the floor."""

    def __init__(self, rng: random.Random, half_x: float, half_y: float):
        self.rng, self.half_x, self.half_y = rng, half_x, half_y
        self.discs: list[tuple[float, float, float]] = []

    def free(self, x: float, y: float, radius: float) -> bool:
        return all((x - a) ** 2 + (y - b) ** 2 >= (radius + r) ** 2 for a, b, r in self.discs)

    def place(self, radius: float, against_wall: bool = False, tries: int = 30) -> tuple[float, float, float] | None:
        """(x, y, yaw) of a free spot, or None; against_wall puts the back (local -y) on a wall."""
        for _ in range(tries):
            if against_wall:
                wall = self.rng.randrange(4)
                along = self.rng.uniform(-1, 1)
                if wall < 2:
                    x = along * (self.half_x - radius)
                    y = (self.half_y - radius) * (1 if wall == 0 else -1)
                    yaw = math.pi if wall == 0 else 0.0
                else:
                    y = along * (self.half_y - radius)
                    x = (self.half_x - radius) * (1 if wall == 2 else -1)
                    yaw = math.pi / 2 if wall == 2 else -math.pi / 2
            else:
                x = self.rng.uniform(-self.half_x + radius, self.half_x - radius)
                y = self.rng.uniform(-self.half_y + radius, self.half_y - radius)
                yaw = self.rng.uniform(-math.pi, math.pi)
            if self.free(x, y, radius):
                self.discs.append((x, y, radius))
                return x, y, yaw
        return None


def _local(x: float, y: float, yaw: float, dx: float, dy: float, z: float) -> Vec:
    """World position of the offset (dx, dy) in a footprint at (x, y) turned by yaw, at height z."""
    c, s = math.cos(yaw), math.sin(yaw)
    return (x + c * dx - s * dy, y + s * dx + c * dy, z)


def _clutter(b: SceneBuilder, x: float, y: float, z: float, spread_x: float, spread_y: float, count: int) -> None:
    """Small things (books, cups, vases, fruit) standing on a surface at height z."""
    rng = b.rng
    for _ in range(count):
        px, py = x + rng.uniform(-spread_x, spread_x), y + rng.uniform(-spread_y, spread_y)
        kind = rng.choice(["book", "cup", "vase", "ball"])
        material = b.family(rng.choice(["vivid", "fabric", "metal", "stone"]))
        if kind == "book":
            hx, hy, hz = rng.uniform(0.07, 0.15), rng.uniform(0.1, 0.2), rng.uniform(0.01, 0.04)
            b.box((px, py, z + hz), (hx, hy, hz), material, rng.uniform(-math.pi, math.pi))
        elif kind in ("cup", "vase"):
            radius = rng.uniform(0.03, 0.05) if kind == "cup" else rng.uniform(0.05, 0.1)
            hz = rng.uniform(0.04, 0.06) if kind == "cup" else rng.uniform(0.1, 0.22)
            b.add("cylinder", (px, py, z + hz), (radius, radius, hz), material)
        else:
            radius = rng.uniform(0.03, 0.1)
            b.add("sphere", (px, py, z + radius), (radius, radius, radius), material)


def _furniture(b: SceneBuilder, placer: _Placer) -> None:
    """One furniture-like object at a free spot of the floor."""
    rng = b.rng
    kind = rng.choice(["table", "cabinet", "sofa", "bed", "chair", "lamp", "plant", "ottoman", "shelf"])
    against_wall = kind in ("cabinet", "sofa", "bed", "shelf")
    sizes = {
        "table": (0.5, 0.9),
        "cabinet": (0.3, 0.9),
        "sofa": (0.8, 1.1),
        "bed": (1.0, 1.3),
        "chair": (0.3, 0.4),
        "lamp": (0.2, 0.3),
        "plant": (0.2, 0.4),
        "ottoman": (0.25, 0.45),
        "shelf": (0.3, 0.8),
    }
    hx = rng.uniform(*sizes[kind])
    spot = placer.place(hx + 0.1, against_wall)
    if spot is None:
        return
    x, y, yaw = spot
    if kind == "table":
        hy, height = hx * rng.uniform(0.5, 0.9), rng.uniform(0.7, 0.78)
        wood = b.family("wood")
        b.box(_local(x, y, yaw, 0, 0, height - 0.02), (hx, hy, 0.02), wood, yaw)
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.box(
                    _local(x, y, yaw, sx * (hx - 0.05), sy * (hy - 0.05), (height - 0.04) / 2),
                    (0.025, 0.025, (height - 0.04) / 2),
                    wood,
                    yaw,
                )
        _clutter(b, x, y, height, hx * 0.6, hy * 0.6, rng.randrange(0, 5))
    elif kind in ("cabinet", "shelf"):
        hy = rng.uniform(0.18, 0.3)
        hz = rng.uniform(0.4, 0.6) if kind == "cabinet" else rng.uniform(0.8, 1.1)
        body = b.family(rng.choice(["wood", "wall", "metal"]))
        b.box(_local(x, y, yaw, 0, hy, hz), (hx, hy, hz), body, yaw)
        if kind == "shelf":  # dark openings with books: thin boxes standing out of the front
            for level in range(1, 4):
                zl = 2 * hz * level / 4
                b.box(_local(x, y, yaw, 0, -0.005, zl), (hx * 0.97, 0.01, 0.012), body, yaw)
                for _ in range(rng.randrange(2, 7)):
                    bx = rng.uniform(-hx * 0.85, hx * 0.85)
                    bh = rng.uniform(0.08, 0.14)
                    b.box(
                        _local(x, y, yaw, bx, -0.03, zl + 0.012 + bh),
                        (rng.uniform(0.01, 0.03), 0.03, bh),
                        b.family("vivid"),
                        yaw,
                    )
        else:
            _clutter(b, *_local(x, y, yaw, 0, hy, 0)[:2], 2 * hz, hx * 0.7, hy * 0.5, rng.randrange(0, 4))
    elif kind in ("sofa", "bed"):
        hy = rng.uniform(0.4, 0.5) if kind == "sofa" else rng.uniform(0.9, 1.1)
        cover = b.family("fabric")
        base_h = rng.uniform(0.2, 0.25)
        b.box(_local(x, y, yaw, 0, hy, base_h), (hx, hy, base_h), cover, yaw)
        back_h = rng.uniform(0.35, 0.5)
        b.box(_local(x, y, yaw, 0, 0.1, 2 * base_h + back_h), (hx, 0.1, back_h), cover, yaw)
        if kind == "sofa":
            for sx in (-1, 1):
                b.box(_local(x, y, yaw, sx * (hx - 0.1), hy, 2 * base_h + 0.12), (0.1, hy, 0.12), cover, yaw)
        else:
            pillow = b.family("fabric")
            for sx in (-0.5, 0.5):
                b.box(_local(x, y, yaw, sx * hx, 0.35, 2 * base_h + 0.07), (hx * 0.4, 0.15, 0.07), pillow, yaw)
    elif kind == "chair":
        seat = rng.uniform(0.42, 0.48)
        wood, cover = b.family("wood"), b.family(rng.choice(["fabric", "wood"]))
        b.box(_local(x, y, yaw, 0, 0, seat), (hx, hx, 0.03), cover, yaw)
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.add(
                    "cylinder",
                    _local(x, y, yaw, sx * (hx - 0.03), sy * (hx - 0.03), seat / 2),
                    (0.02, 0.02, seat / 2),
                    wood,
                )
        b.box(_local(x, y, yaw, 0, -hx + 0.02, seat + 0.25), (hx, 0.02, 0.22), cover, yaw)
    elif kind == "lamp":
        height = rng.uniform(1.2, 1.7)
        metal = b.family("metal")
        b.add("cylinder", (x, y, 0.015), (hx * 0.8, hx * 0.8, 0.015), metal)
        b.add("cylinder", (x, y, height / 2), (0.015, 0.015, height / 2), metal)
        warm = random_colour(rng, "ceiling")
        shade_id = b.material(MaterialSpec("plain", warm, warm, grime=0.05, emission=rng.uniform(0.3, 0.8)))
        b.add("cylinder", (x, y, height), (hx, hx, 0.15), shade_id)
    elif kind == "plant":
        pot = b.family(rng.choice(["stone", "vivid"]))
        pot_h = rng.uniform(0.15, 0.3)
        b.add("cylinder", (x, y, pot_h), (hx * 0.7, hx * 0.7, pot_h), pot)
        leaves = b.material(
            MaterialSpec("noise", random_colour(rng, "plant"), random_colour(rng, "plant"), scale=0.05, grime=0.4)
        )
        for _ in range(rng.randrange(2, 5)):
            r = rng.uniform(0.15, 0.3)
            b.add(
                "sphere",
                (x + rng.uniform(-0.1, 0.1), y + rng.uniform(-0.1, 0.1), 2 * pot_h + r + rng.uniform(0, 0.4)),
                (r, r, r),
                leaves,
            )
    else:
        cover = b.family(rng.choice(["fabric", "vivid"]))
        if rng.random() < 0.5:
            b.add("sphere", (x, y, hx), (hx, hx, hx), cover)
        else:
            b.add("cylinder", (x, y, 0.22), (hx, hx, 0.22), cover)


def _room(b: SceneBuilder) -> tuple[Layout, Vec, Vec, Vec]:
    rng = b.rng
    hx, hy, height = rng.uniform(1.8, 3.6), rng.uniform(1.8, 4.0), rng.uniform(2.5, 3.2)
    floor = b.material(floor_material(rng, b.num_photos, b.photo_share))
    ceiling = b.family("ceiling")
    wall = b.family("wall")
    accent = b.family("wall") if rng.random() < 0.4 else wall
    b.add("quad", (0, 0, 0), (hx, hy, 0), floor)
    b.add("quad", (0, 0, height), (hx, hy, 0), ceiling, _frame_from_normal((0, 0, -1), (0, 1, 0)))
    skirting = b.family(rng.choice(["wood", "ceiling"]))
    walls = [
        ((0, hy, height / 2), (0, -1, 0), hx),
        ((0, -hy, height / 2), (0, 1, 0), hx),
        ((hx, 0, height / 2), (-1, 0, 0), hy),
        ((-hx, 0, height / 2), (1, 0, 0), hy),
    ]
    accent_wall = rng.randrange(4)
    for index, (center, normal, half_width) in enumerate(walls):
        rotation = _frame_from_normal(normal, (0, 0, 1))
        b.add("quad", center, (half_width, height / 2, 0), accent if index == accent_wall else wall, rotation)
        base = tuple(c + 0.01 * n for c, n in zip(center[:2], normal[:2], strict=True)) + (0.05,)
        b.add("box", base, (half_width, 0.05, 0.01), skirting, rotation)
        # Wall decorations: windows (bright), a door, framed pictures.
        along = (normal[1], -normal[0])  # unit vector along the wall
        for _ in range(rng.randrange(0, 3)):
            kind = rng.choices(["window", "door", "picture"], [2, 1, 3])[0]
            w, h, z = {
                "window": (rng.uniform(0.4, 0.8), rng.uniform(0.5, 0.7), 1.5),
                "door": (0.45, 1.02, 1.02),
                "picture": (rng.uniform(0.15, 0.5), rng.uniform(0.15, 0.4), 1.6),
            }[kind]
            w = min(w, half_width - 0.2)
            offset = rng.uniform(-(half_width - w - 0.1), half_width - w - 0.1)
            cx, cy = center[0] + along[0] * offset + normal[0] * 0.02, center[1] + along[1] * offset + normal[1] * 0.02
            if kind == "window":
                frame = b.family("ceiling")
                sky = random_colour(rng, "ceiling")
                glass = b.material(
                    MaterialSpec(
                        "windows", sky, shade(sky, 1.0), scale=2 * h, grime=0.0, emission=rng.uniform(1.5, 3.0)
                    )
                )
                b.add("box", (cx, cy, z), (w + 0.06, h + 0.06, 0.02), frame, rotation)
                b.add("quad", (cx + normal[0] * 0.025, cy + normal[1] * 0.025, z), (w, h, 0), glass, rotation)
            elif kind == "door":
                b.add("box", (cx, cy, z), (w, h, 0.02), b.family("wood"), rotation)
            else:
                b.add("box", (cx, cy, z), (w + 0.03, h + 0.03, 0.015), b.family("metal"), rotation)
                art = b.material(random_material(rng, "vivid", b.num_photos, b.photo_share))
                b.add("quad", (cx + normal[0] * 0.02, cy + normal[1] * 0.02, z), (w, h, 0), art, rotation)
    if rng.random() < 0.6:
        rug = b.family("fabric")
        b.box(
            (rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.005),
            (rng.uniform(0.6, 1.4), rng.uniform(0.5, 1.0), 0.005),
            rug,
            rng.uniform(-0.3, 0.3),
        )
    placer = _Placer(rng, hx - 0.05, hy - 0.05)
    for _ in range(rng.randrange(4, 10)):
        _furniture(b, placer)
    warm = (1.0, rng.uniform(0.8, 0.95), rng.uniform(0.6, 0.85))
    for _ in range(rng.randrange(1, 3)):
        power = rng.uniform(3.0, 7.0)
        b.lights.append(
            (
                (rng.uniform(-hx, hx) * 0.6, rng.uniform(-hy, hy) * 0.6, height - 0.3),
                tuple(power * c for c in warm),
                False,
            )
        )
    sky = tuple(rng.uniform(0.12, 0.2) * c for c in (0.95, 0.97, 1.0))
    # Ceiling fixtures above the point lights (drawn last: earlier random draws keep their values).
    for position, _, _ in b.lights:
        radius = rng.uniform(0.12, 0.3)
        glow = b.material(MaterialSpec("plain", (0.9, 0.88, 0.8), (0.9, 0.88, 0.8), grime=0.0, emission=1.5))
        b.add("cylinder", (position[0], position[1], height - 0.03), (radius, radius, 0.03), glow)
    layout = Layout("room", 0, (hx, hy, height), (0.0, 0.0, 1.2), tuple(placer.discs))
    return layout, sky, shade(sky, 0.5), sky


def _sun(b: SceneBuilder, strength: float) -> tuple[Vec, Vec, Vec]:
    """Add a sun (shadow-casting directional light); return sky, ground and horizon colours."""
    rng = b.rng
    elevation, azimuth = rng.uniform(0.3, 1.2), rng.uniform(-math.pi, math.pi)
    direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    warmth = rng.uniform(0.75, 1.0)
    b.lights.insert(0, (direction, (strength, strength * (0.9 + 0.1 * warmth), strength * warmth), True))
    overcast = rng.uniform(0.0, 1.0)
    zenith = (0.25 + 0.35 * overcast, 0.4 + 0.3 * overcast, 0.8 + 0.1 * overcast)
    horizon = (0.75, 0.8, 0.85)
    return tuple(0.45 * c for c in zenith), (0.12, 0.11, 0.1), horizon


def _turn(yaw: float, tilt: float) -> Mat3:
    """Rotation about x by tilt, then about z by yaw (a thing turned on the ground, then tipped)."""
    c, s = math.cos(tilt), math.sin(tilt)
    rz, rx = _yaw(yaw), ((1.0, 0.0, 0.0), (0.0, c, -s), (0.0, s, c))
    return tuple(tuple(sum(rz[i][k] * rx[k][j] for k in range(3)) for j in range(3)) for i in range(3))


def _walls(b: SceneBuilder, half_x: float, half_y: float, height: float, material: int) -> None:
    """Four walls facing inwards around the floor |x| <= half_x, |y| <= half_y, from the floor up to height."""
    for normal in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)):
        centre = (-half_x * normal[0], -half_y * normal[1], height / 2)
        width = half_y if normal[0] else half_x
        b.add("quad", centre, (width, height / 2, 0), material, _frame_from_normal(normal, (0, 0, 1)))


def _composite_object(b: SceneBuilder, x: float, y: float, size: float) -> None:
    """A toy-like object of a few shapes standing at (x, y)."""
    rng = b.rng
    kind = rng.choice(["stack", "vase", "ball_on_stand", "house", "crate", "blocks"])
    m1 = b.object_family(rng.choice(["vivid", "wood", "metal", "fabric"]))
    m2 = b.object_family(rng.choice(["vivid", "stone"]))
    yaw = rng.uniform(-math.pi, math.pi)
    if kind == "stack":
        z = 0.0
        for level in range(rng.randrange(2, 4)):
            h = size * rng.uniform(0.2, 0.45)
            w = size * (1 - 0.25 * level) * rng.uniform(0.6, 1.0)
            b.box((x, y, z + h), (w, w * rng.uniform(0.6, 1.0), h), m1 if level % 2 == 0 else m2, yaw + level * 0.4)
            z += 2 * h
    elif kind == "vase":
        h = size * rng.uniform(0.5, 1.0)
        b.add("cylinder", (x, y, h), (size * 0.4, size * 0.4, h), m1)
        b.add("sphere", (x, y, 2 * h), (size * 0.35,) * 3, m2)
    elif kind == "ball_on_stand":
        h = size * rng.uniform(0.3, 0.8)
        b.add("cylinder", (x, y, h), (size * 0.15, size * 0.15, h), m2)
        b.add("sphere", (x, y, 2 * h + size * 0.5), (size * 0.5,) * 3, m1)
    elif kind == "house":
        h = size * 0.5
        b.box((x, y, h), (size * 0.6, size * 0.45, h), m1, yaw)
        b.add("box", (x, y, 2 * h + size * 0.1), (size * 0.62, size * 0.35, size * 0.02), m2, _turn(yaw, 0.6))
    elif kind == "crate":
        b.box((x, y, size * 0.5), (size * 0.5, size * 0.5, size * 0.5), b.object_family("wood"), yaw)
    else:
        for _ in range(rng.randrange(3, 7)):
            s = size * rng.uniform(0.15, 0.3)
            b.box(
                (x + rng.uniform(-size, size) * 0.6, y + rng.uniform(-size, size) * 0.6, s),
                (s, s, s),
                b.object_family("vivid"),
                rng.uniform(-math.pi, math.pi),
            )


def _objects(b: SceneBuilder) -> tuple[Layout, Vec, Vec, Vec]:
    rng = b.rng
    indoor = rng.random() < 0.5
    if indoor:
        ground = b.material(floor_material(rng, b.num_photos, b.photo_share))
    else:
        ground = b.family(rng.choice(["grass", "stone"]))
    b.add("quad", (0, 0, 0), (40, 40, 0), ground)
    if rng.random() < 0.5:  # a table cloth or mat under the objects
        b.box(
            (0, 0, 0.003), (rng.uniform(0.8, 1.5), rng.uniform(0.8, 1.5), 0.003), b.family("fabric"), rng.uniform(0, 3)
        )
    count = rng.randrange(1, 5)
    for index in range(count):
        angle = 2 * math.pi * index / count + rng.uniform(-0.4, 0.4)
        radius = 0.0 if count == 1 else rng.uniform(0.25, 0.6)
        _composite_object(b, radius * math.cos(angle), radius * math.sin(angle), rng.uniform(0.15, 0.4))
    for _ in range(rng.randrange(3, 10)):  # background things far away
        angle, dist = rng.uniform(-math.pi, math.pi), rng.uniform(4, 12)
        w, h = rng.uniform(0.3, 2.0), rng.uniform(0.3, 3.0)
        b.box(
            (dist * math.cos(angle), dist * math.sin(angle), h),
            (w, rng.uniform(0.3, 2.0), h),
            b.family(rng.choice(["wall", "wood", "facade", "stone"])),
            rng.uniform(-math.pi, math.pi),
        )
    if indoor:
        half = rng.uniform(6, 10)
        _walls(b, half, half, 6.0, b.family("wall"))
        b.add("quad", (0, 0, 6.0), (half, half, 0), b.family("ceiling"), _frame_from_normal((0, 0, -1), (0, 1, 0)))
        b.lights.append(((rng.uniform(-2, 2), rng.uniform(-2, 2), 3.5), (14.0, 13.0, 12.0), False))
        sky, low, horizon = (0.2, 0.2, 0.21), (0.08, 0.08, 0.08), (0.2, 0.2, 0.2)
        b.lights.append(((rng.uniform(-3, 3), rng.uniform(-3, 3), 4.0), (6.0, 6.0, 6.0), False))
    else:
        sky, low, horizon = _sun(b, rng.uniform(2.0, 3.0))
    return Layout("objects", 0, (0.8, 0.8, 0.5), (0.0, 0.0, 0.25)), sky, low, horizon


def _street(b: SceneBuilder) -> tuple[Layout, Vec, Vec, Vec]:
    rng = b.rng
    road_half, walk = rng.uniform(3.0, 5.5), rng.uniform(1.5, 3.5)
    length = 60.0
    b.add("quad", (0, 0, 0), (120, 120, 0), b.family(rng.choice(["asphalt", "grass"])))
    asphalt = b.family("asphalt")
    b.add("quad", (0, 0, 0.002), (road_half, length, 0), asphalt)
    paint = b.material(MaterialSpec("plain", (0.8, 0.8, 0.75), (0.8, 0.8, 0.75), grime=0.3))
    for y in range(-int(length), int(length), 6):
        b.add("quad", (0, y + 1.5, 0.004), (0.08, 1.5, 0), paint)
    kerb = b.family("stone")
    obstacles: list[tuple[float, float, float]] = []
    for side in (-1, 1):
        b.box((side * (road_half + walk / 2), 0, 0.08), (walk / 2, length, 0.08), kerb)
        y = -length
        while y < length:
            width = rng.uniform(3.0, 8.0)
            if rng.random() < 0.85:
                depth, height = rng.uniform(4.0, 8.0), rng.uniform(3.0, 20.0)
                facade = b.family("facade")
                x = side * (road_half + walk + depth)
                b.box((x, y + width, height), (depth, width, height), facade)
                if rng.random() < 0.6:  # a shop front: another material on the ground floor
                    b.box((x - side * 0.05, y + width, 1.6), (depth, width * 0.95, 1.6), b.family("facade"))
                if rng.random() < 0.5:  # a shop sign or awning
                    b.box(
                        (side * (road_half + walk - 0.3), y + width, rng.uniform(2.5, 3.2)),
                        (0.3, width * 0.8, 0.05),
                        b.family("vivid"),
                    )
            y += 2 * width
        for y in range(-int(length), int(length), rng.randrange(7, 15)):
            x = side * (road_half + walk * rng.uniform(0.3, 0.7))
            obstacles.append((x, y, 1.6))
            if rng.random() < 0.6:
                trunk_h = rng.uniform(1.5, 3.0)
                b.add("cylinder", (x, y, trunk_h / 2), (0.12, 0.12, trunk_h / 2), b.family("wood"))
                leaves = b.material(
                    MaterialSpec(
                        "noise", random_colour(rng, "plant"), random_colour(rng, "plant"), scale=0.15, grime=0.5
                    )
                )
                for _ in range(rng.randrange(1, 3)):
                    r = rng.uniform(0.8, 1.6)
                    b.add(
                        "sphere",
                        (x + rng.uniform(-0.4, 0.4), y + rng.uniform(-0.4, 0.4), trunk_h + r * 0.8),
                        (r, r, r),
                        leaves,
                    )
            else:
                pole = b.family("metal")
                b.add("cylinder", (x, y, 2.5), (0.06, 0.06, 2.5), pole)
        for _ in range(rng.randrange(1, 5)):  # parked cars
            x, y = side * (road_half - 1.1), rng.uniform(-length * 0.8, length * 0.8)
            obstacles.append((x, y, 2.3))
            body = b.family("vivid")
            b.box((x, y, 0.55), (0.9, 2.1, 0.35), body)
            b.box((x, y - 0.2, 1.1), (0.8, 1.1, 0.25), b.family("glass"))
            wheel = b.family("asphalt")
            axle = _frame_from_normal((1, 0, 0), (0, 0, 1))
            for wy in (-1.35, 1.35):
                b.add("cylinder", (x, y + wy, 0.33), (0.33, 0.33, 0.95), wheel, axle)
    for _ in range(rng.randrange(2, 5)):  # hills on the horizon
        r = rng.uniform(30, 60)
        angle = rng.uniform(-math.pi, math.pi)
        b.add("sphere", (100 * math.cos(angle), 100 * math.sin(angle), -r * 0.6), (r, r, r), b.family("grass"))
    sky, low, horizon = _sun(b, rng.uniform(2.0, 3.2))
    layout = Layout("street", 0, (road_half + walk * 0.5, length * 0.7, 1.0), (0.0, 0.0, 1.6), tuple(obstacles))
    return layout, sky, low, horizon


class _Heap:
    """Things on a surface as footprints (x, y, radius, top, flat): a new thing rests on the highest flat thing
    (a book, a box) under it, never on a round one, and stacks stay low."""

    def __init__(self, rng: random.Random, surface: float, centre: tuple[float, float], spread: tuple[float, float]):
        self.rng, self.surface, self.centre, self.spread = rng, surface, centre, spread
        self.items: list[tuple[float, float, float, float, bool]] = []

    def spot(self, radius: float, tries: int = 6, max_stack: float = 0.3) -> tuple[float, float, float] | None:
        """(x, y, base height) of a place for a thing of footprint `radius`, or None if none was found."""
        for _ in range(tries):
            x = self.centre[0] + self.rng.uniform(-self.spread[0], self.spread[0])
            y = self.centre[1] + self.rng.uniform(-self.spread[1], self.spread[1])
            below = [
                (top, flat)
                for a, b, r, top, flat in self.items
                if (x - a) ** 2 + (y - b) ** 2 < (0.8 * (r + radius)) ** 2
            ]
            if all(flat for _, flat in below):
                base = max((top for top, _ in below), default=self.surface)
                if base <= self.surface + max_stack:
                    return x, y, base
        return None

    def put(self, x: float, y: float, radius: float, top: float, flat: bool) -> None:
        self.items.append((x, y, radius, top, flat))


def _small_thing(b: SceneBuilder, heap: _Heap, surface_material: Callable[[str], int]) -> None:
    """One household thing (book, box, can, bottle, ball, tube, plush toy) resting on the heap, if it finds room."""
    rng = b.rng
    kinds, weights = (
        ("book", "standing_book", "box", "can", "bottle", "ball", "tube", "plush"),
        (4, 2, 3, 2, 1, 2, 1, 1),
    )
    kind = rng.choices(kinds, weights)[0]
    material = surface_material(rng.choice(["vivid", "vivid", "fabric", "wood", "metal", "stone"]))
    yaw = rng.uniform(-math.pi, math.pi)
    if kind in ("book", "standing_book", "box"):
        if kind == "book":
            half = (rng.uniform(0.06, 0.15), rng.uniform(0.08, 0.2), rng.uniform(0.008, 0.035))
        elif kind == "standing_book":
            half = (rng.uniform(0.008, 0.03), rng.uniform(0.07, 0.15), rng.uniform(0.09, 0.16))
        else:
            half = (rng.uniform(0.03, 0.15), rng.uniform(0.03, 0.15), rng.uniform(0.02, 0.12))
        radius = math.hypot(half[0], half[1])
        tilt = rng.gauss(0.0, 0.12) if rng.random() < 0.4 else 0.0  # propped against something
        if (spot := heap.spot(radius)) is not None:
            x, y, base = spot
            b.add("box", (x, y, base + half[2]), half, material, _turn(yaw, tilt))
            heap.put(x, y, radius, base + 2 * half[2], kind != "standing_book")
    elif kind in ("can", "bottle"):
        radius = rng.uniform(0.02, 0.06)
        height = rng.uniform(0.04, 0.1) if kind == "can" else rng.uniform(0.08, 0.14)
        if (spot := heap.spot(radius)) is not None:
            x, y, base = spot
            b.add("cylinder", (x, y, base + height), (radius, radius, height), material)
            top = base + 2 * height
            if kind == "bottle":
                neck = radius * rng.uniform(0.3, 0.45)
                b.add("cylinder", (x, y, top + 0.03), (neck, neck, 0.03), b.family(rng.choice(["metal", "vivid"])))
                top += 0.06
            heap.put(x, y, radius, top, False)
    elif kind == "ball":
        radius = rng.uniform(0.02, 0.08)
        if (spot := heap.spot(radius)) is not None:
            x, y, base = spot
            b.add("sphere", (x, y, base + radius), (radius, radius, radius), material)
            heap.put(x, y, radius, base + 2 * radius, False)
    elif kind == "tube":
        radius, length = rng.uniform(0.015, 0.05), rng.uniform(0.08, 0.25)
        if (spot := heap.spot(length)) is not None:
            x, y, base = spot
            b.add("cylinder", (x, y, base + radius), (radius, radius, length), material, _turn(yaw, math.pi / 2))
            heap.put(x, y, length, base + 2 * radius, False)
    else:  # a plush toy: body, head and two ears
        fur = surface_material("fabric")
        body = rng.uniform(0.05, 0.11)
        if (spot := heap.spot(body)) is not None:
            x, y, base = spot
            z = base + body * 0.9
            b.add("sphere", (x, y, z), (body, body * rng.uniform(0.8, 1.0), body * rng.uniform(0.9, 1.2)), fur)
            head = body * rng.uniform(0.6, 0.85)
            hz = z + body + head * 0.7
            b.add("sphere", (x, y, hz), (head, head, head), fur)
            for side in (-1, 1):
                ear = head * 0.35
                b.add("sphere", (x + side * head * 0.7, y, hz + head * 0.7), (ear, ear * 0.5, ear), fur)
            heap.put(x, y, body, hz + head, False)


def _clutter_scene(b: SceneBuilder) -> tuple[Layout, Vec, Vec, Vec]:
    """A close-up of a crowded table top or floor corner against a wall: dozens of household things, some
    stacked or propped, with shelves and furniture behind (what photos of one object among others look like)."""
    rng = b.rng

    def surface_material(family: str) -> int:
        spec = random_material(rng, family, b.num_photos, b.photo_share)
        if spec.pattern == "photo":  # a photo spans about one thing (a cover, a label), not a whole wall
            spec = replace(spec, scale=rng.uniform(0.04, 0.15))
        return b.material(spec)

    hx, hy, height = rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0), rng.uniform(2.4, 3.0)
    b.add("quad", (0, 0, 0), (hx, hy, 0), b.material(floor_material(rng, b.num_photos, b.photo_share)))
    b.add("quad", (0, 0, height), (hx, hy, 0), b.family("ceiling"), _frame_from_normal((0, 0, -1), (0, 1, 0)))
    _walls(b, hx, hy, height, b.family("wall"))

    # The surface: a table top (the far edge near the +y wall) or the floor.
    spread_x, spread_y = rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.4)
    cy = hy - spread_y - rng.uniform(0.15, 0.6)
    on_table = rng.random() < 0.65
    surface = rng.uniform(0.4, 0.8) if on_table else 0.0
    if on_table:
        top_x, top_y = spread_x + rng.uniform(0.1, 0.5), spread_y + rng.uniform(0.1, 0.3)
        wood = b.family(rng.choice(["wood", "wood", "stone", "fabric"]))
        b.box((0, cy, surface - 0.02), (top_x, top_y, 0.02), wood)
        for sx in (-1, 1):
            for sy in (-1, 1):
                leg = (sx * (top_x - 0.04), cy + sy * (top_y - 0.04), (surface - 0.04) / 2)
                b.box(leg, (0.025, 0.025, (surface - 0.04) / 2), wood)
    if rng.random() < 0.5:  # a cloth or mat under the things
        b.box(
            (0, cy, surface + 0.002),
            (spread_x * 1.1, spread_y * 1.1, 0.002),
            surface_material("fabric"),
            rng.uniform(-0.3, 0.3),
        )
    heap = _Heap(rng, surface + 0.004, (0.0, cy), (spread_x, spread_y))
    for _ in range(rng.randrange(12, 45)):
        _small_thing(b, heap, surface_material)

    # Behind: shelves of books on the +y wall, furniture at the sides.
    for level in range(rng.randrange(0, 3)):
        z = surface + 0.35 + 0.35 * level
        width = rng.uniform(0.4, 1.0)
        sx = rng.uniform(-0.5, 0.5)
        b.box((sx, hy - 0.13, z), (width, 0.12, 0.012), b.family("wood"))
        x = sx - width + 0.02
        while x < sx + width - 0.05:
            thick, tall = rng.uniform(0.008, 0.03), rng.uniform(0.09, 0.15)
            b.box(
                (x + thick, hy - 0.14, z + 0.012 + tall),
                (thick, rng.uniform(0.07, 0.11), tall),
                surface_material(rng.choice(["vivid", "fabric"])),
            )
            x += 2 * thick + rng.uniform(0.0, 0.01)
    for _ in range(rng.randrange(1, 4)):
        side = rng.choice((-1, 1))
        w, d, h = rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5), rng.uniform(0.3, 1.0)
        x = side * rng.uniform(spread_x + 0.6, max(spread_x + 0.7, hx - w))
        b.box(
            (x, rng.uniform(-hy + d, hy - d), h),
            (w, d, h),
            b.family(rng.choice(["wood", "fabric", "metal"])),
            rng.uniform(-0.5, 0.5),
        )

    power = rng.uniform(3.0, 7.0)
    warm = (1.0, rng.uniform(0.8, 0.95), rng.uniform(0.6, 0.85))
    b.lights.append(
        ((rng.uniform(-1, 1), cy + rng.uniform(-1.5, 0.3), height - 0.3), tuple(power * c for c in warm), False)
    )
    if rng.random() < 0.5:  # a desk lamp or a second ceiling light
        lamp = rng.uniform(0.5, 2.0)
        b.lights.append(
            ((rng.uniform(-1, 1), cy - rng.uniform(0.3, 1.0), surface + rng.uniform(0.4, 1.0)), (lamp,) * 3, False)
        )
    sky = tuple(rng.uniform(0.12, 0.22) * c for c in (0.95, 0.97, 1.0))
    layout = Layout("clutter", 0, (spread_x, spread_y, 0.2), (0.0, cy, surface + 0.08), min_median_depth=0.3)
    return layout, sky, shade(sky, 0.5), sky


def make_scene(
    kind: str,
    seed: int,
    device=None,
    photos: Tensor | None = None,
    num_photos: int | None = None,
    photo_share: float = PHOTO_SHARE,
    plain_objects: bool = False,
) -> SyntheticScene:
    """A random scene of one kind, the same for the same seed.

    Args:
        kind: one of SCENE_KINDS.
        seed: any int; equal seeds give equal scenes.
        device: where the scene's tensors live (and rendering happens).
        photos: (T, 3, h, w) linear photo bank (textures.load_photo_bank); some materials then use photos.
        num_photos: the size of a bank attached later (the scene then holds no bank); default: photos' size.
        photo_share: share of the wall, fabric, vivid and facade materials that take a photo, given photos.
        plain_objects: the free-standing objects (of the "objects" kind) in flat colours, textureless; the same
            shapes as without.
    Returns:
        a SyntheticScene holding one scene.
    """
    builders = {"room": _room, "objects": _objects, "street": _street, "clutter": _clutter_scene}
    if kind not in builders:
        raise ValueError(f"make_scene: unknown kind {kind!r}; pass one of {SCENE_KINDS}")
    if num_photos is None:
        num_photos = 0 if photos is None else photos.shape[0]
    b = SceneBuilder(random.Random(f"{kind}:{seed}"), num_photos=num_photos, photo_share=photo_share,
                     plain_objects=plain_objects)
    layout, sky, ground, horizon = builders[kind](b)
    layout.seed = seed
    return b.to_scene(layout, sky, ground, horizon, device, photos)
