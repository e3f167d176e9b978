"""GPU procedural scenes with exact depth: rooms, objects on a ground plane, streets."""

from .cameras import intrinsics_from_fov, look_at, overlap
from .capture import room_capture, views_to_samples
from .render import render_views
from .scenes import SCENE_KINDS, SyntheticScene, make_scene, stack_scenes
from .textures import load_photo_bank

__all__ = [
    "SCENE_KINDS",
    "SyntheticScene",
    "intrinsics_from_fov",
    "load_photo_bank",
    "look_at",
    "make_scene",
    "overlap",
    "render_views",
    "room_capture",
    "stack_scenes",
    "views_to_samples",
]
