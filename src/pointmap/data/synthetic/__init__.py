"""GPU procedural scenes with exact depth: rooms, objects on a ground plane, streets."""

from .cameras import intrinsics_from_fov, look_at, overlap
from .capture import room_capture, views_to_samples
from .dataset import SyntheticConfig, SyntheticPairDataset, scene_seed
from .render import render_depth, render_views
from .scenes import SCENE_KINDS, Layout, SceneBuilder, SyntheticScene, make_scene, stack_scenes
from .textures import load_photo_bank

__all__ = [
    "SCENE_KINDS",
    "Layout",
    "SceneBuilder",
    "SyntheticConfig",
    "SyntheticPairDataset",
    "SyntheticScene",
    "intrinsics_from_fov",
    "load_photo_bank",
    "look_at",
    "make_scene",
    "overlap",
    "render_depth",
    "render_views",
    "room_capture",
    "scene_seed",
    "stack_scenes",
    "views_to_samples",
]
