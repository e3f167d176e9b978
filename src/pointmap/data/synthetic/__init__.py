"""GPU procedural scenes with exact depth: rooms, objects on a ground plane, streets.

    scene = make_scene("room", seed=3, device="cuda")                   # or "objects", "street"
    rgb, depth = render_views(scene, K, cam2world, 384, 512)            # (B, 3, H, W) in [0, 1], (B, H, W)
    views = room_capture(seed=3, num_cameras=10, device="cuda")         # list[ViewSample] around a room
    ds = SyntheticPairDataset(SyntheticConfig(), "train", (224, 224), device="cuda")
    view1, view2, overlap = ds[0]                                       # deterministic by index
    batch = ds.render_batch(range(256))                                 # the same items, one batched pass

On a GPU call render_batch from the training process (CUDA does not mix with forked DataLoader
workers); on CPUs ds[i] works in DataLoader workers.
"""

from .cameras import intrinsics_from_fov, look_at, overlap
from .capture import object_capture, room_capture, views_to_samples
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
    "object_capture",
    "overlap",
    "render_depth",
    "render_views",
    "room_capture",
    "scene_seed",
    "stack_scenes",
    "views_to_samples",
]
