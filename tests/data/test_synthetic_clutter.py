"""The "clutter" scene kind: close-ups of many small things on a table or floor, seen from the open side."""

import math
import random

import torch

from pointmap.data.synthetic import make_scene
from pointmap.data.synthetic.cameras import open_view
from pointmap.data.synthetic.dataset import SyntheticConfig, SyntheticPairDataset
from pointmap.data.synthetic.sampling import (
    FIRST_NORMALS,
    FIRST_UNIFORMS,
    SECOND_NORMALS,
    SECOND_UNIFORMS,
    LayoutBatch,
    draw_blocks,
    first_views,
    second_views,
)
from pointmap.data.synthetic.scenes import _Heap


def _small_shapes_near(scene, centre: torch.Tensor, reach: float) -> int:
    """Shapes of scene whose centre lies within `reach` (x, y) of `centre` and whose largest half size is < 0.3 m."""
    count = 0
    for shapes in scene.shapes.values():
        near = (shapes.center[0, :, :2] - centre[:2]).abs().amax(-1) <= reach
        small = shapes.half[0].amax(-1) < 0.3
        count += int((near & small).sum())
    return count


def test_clutter_scenes_crowd_many_small_things_around_the_target():
    for seed in range(4):
        scene = make_scene("clutter", seed)
        layout = scene.layouts[0]
        assert layout.kind == "clutter" and layout.min_median_depth < 1.0
        target = torch.tensor(layout.target)
        spread = max(layout.extent[:2])
        assert _small_shapes_near(scene, target, spread + 0.2) >= 8
        # The same seed builds the same scene, another seed another one.
        again = make_scene("clutter", seed)
        for kind, shapes in scene.shapes.items():
            assert torch.equal(shapes.center, again.shapes[kind].center)
    assert not torch.equal(make_scene("clutter", 0).shapes["box"].center, make_scene("clutter", 1).shapes["box"].center)


def test_heap_stacks_on_flat_things_only_and_stays_low():
    heap = _Heap(random.Random(0), surface=0.5, centre=(0.0, 0.0), spread=(0.01, 0.01))
    x, y, base = heap.spot(0.1)
    assert abs(x) <= 0.01 and abs(y) <= 0.01 and base == 0.5  # an empty surface: rest on it
    heap.put(0.0, 0.0, 0.2, 0.6, flat=True)  # a book, 10 cm high
    assert heap.spot(0.1)[2] == 0.6
    heap.put(0.0, 0.0, 0.2, 0.9, flat=True)  # a stack 40 cm high: too high to add to
    assert heap.spot(0.1, max_stack=0.3) is None
    round_heap = _Heap(random.Random(0), surface=0.0, centre=(0.0, 0.0), spread=(0.01, 0.01))
    round_heap.put(0.0, 0.0, 0.1, 0.2, flat=False)  # a ball: nothing rests on it
    assert round_heap.spot(0.1) is None


def test_clutter_cameras_stand_close_on_the_open_side():
    layouts = LayoutBatch.of([make_scene("clutter", seed).layouts[0] for seed in range(3)])
    generator = torch.Generator().manual_seed(0)
    first = [draw_blocks(generator, 64, FIRST_UNIFORMS, FIRST_NORMALS) for _ in range(3)]
    uniform, normal = (torch.stack(block) for block in zip(*first, strict=True))
    eye, target, _, _ = first_views(layouts, uniform, normal, (45.0, 80.0))
    offset = eye - layouts.target[:, None]
    radius = offset.norm(dim=-1)
    assert ((radius >= 0.45 - 1e-5) & (radius <= 1.3 + 1e-5)).all()
    assert (offset[..., 1] < 0).all() and (offset[..., 2] > 0).all()  # in front of the wall, above the things
    assert (target - layouts.target[:, None]).norm(dim=-1).max() < 0.3

    second = [draw_blocks(generator, 32, SECOND_UNIFORMS, SECOND_NORMALS) for _ in range(3)]
    uniform, normal = (torch.stack(block) for block in zip(*second, strict=True))
    eye2, _, _, _ = second_views(layouts, eye[:, 0], target[:, 0], uniform, normal, (45.0, 80.0))
    around = eye2 - target[:, :1]
    azimuth = torch.atan2(around[..., 1], around[..., 0])  # -pi/2 faces the wall from the open side
    turn = torch.remainder(azimuth + math.pi / 2 + math.pi, 2 * math.pi) - math.pi
    assert (turn.abs() <= 1.9 + 1e-4).all()
    ratio = around.norm(dim=-1) / (eye[:, :1] - target[:, :1]).norm(dim=-1)
    assert ((ratio >= 0.75 - 1e-4) & (ratio <= 1.3 + 1e-4)).all()


def test_open_view_takes_one_median_threshold_per_scene():
    depth = torch.full((2, 1, 4, 4), 0.6)
    assert open_view(depth).tolist() == [[False], [False]]
    assert open_view(depth, min_median=torch.tensor([[1.0], [0.3]])).tolist() == [[False], [True]]


def test_clutter_pairs_are_close_ups_in_the_overlap_range():
    config = SyntheticConfig(
        kinds=("clutter",), kind_weights=(1.0,), train_length=4, pairs_per_scene=2, candidates=4, probe_size=(12, 16)
    )
    items = SyntheticPairDataset(config, "train", (24, 32)).render_batch(list(range(4)))
    medians = []
    for view1, view2, value in items:
        assert config.min_overlap <= value <= 1.0
        for view in (view1, view2):
            assert view.valid.float().mean() > 0.9  # a room around: no sky
            medians.append(view.depth[view.valid].median())
    # Close-ups the other kinds' threshold (median depth beyond 1 m) would reject: 4 of these 8 views; none
    # when the per-scene threshold is ignored.
    assert (torch.stack(medians) < 1.0).float().mean() >= 0.25
