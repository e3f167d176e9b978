"""The synthetic pair dataset: item format, determinism by index, disjoint splits, reported overlap."""

import math
from dataclasses import replace

import pytest
import torch

from pointmap.data.sample import ViewSample
from pointmap.data.synthetic.cameras import overlap
from pointmap.data.synthetic.dataset import SyntheticConfig, SyntheticPairDataset, scene_seed
from pointmap.eval.metrics import rotation_angle_deg

CONFIG = SyntheticConfig(train_length=64, val_length=16, pairs_per_scene=4, candidates=4, probe_size=(12, 16))
SIZE = (24, 32)


@pytest.fixture(scope="module")
def train():
    return SyntheticPairDataset(CONFIG, "train", SIZE)


def test_item_format(train):
    view1, view2, value = train[1]
    for view in (view1, view2):
        assert isinstance(view, ViewSample)
        assert view.image.shape == (3, *SIZE) and view.image.dtype == torch.float32
        assert view.image.min() >= -1 and view.image.max() <= 1
        assert view.depth.shape == SIZE and view.depth.dtype == torch.float32
        assert view.valid.dtype == torch.bool and torch.equal(view.valid, view.depth > 0)
        assert view.intrinsics.shape == (3, 3) and view.cam2world.shape == (4, 4)
        assert view.intrinsics[0, 2].item() == SIZE[1] / 2 and view.intrinsics[1, 2].item() == SIZE[0] / 2
        fov = 2 * torch.rad2deg(torch.atan(SIZE[1] / 2 / view.intrinsics[0, 0]))
        assert CONFIG.hfov_deg[0] - 1e-3 <= fov <= CONFIG.hfov_deg[1] + 1e-3
    assert view1.source.endswith("/view=1") and view2.source.endswith("/view=2")
    assert not torch.equal(view1.cam2world, view2.cam2world)
    assert isinstance(value, float) and 0 <= value <= 1
    expected = overlap(
        view1.depth[None],
        view1.intrinsics[None],
        view1.cam2world[None],
        view2.depth[None],
        view2.intrinsics[None],
        view2.cam2world[None],
    )
    assert value == pytest.approx(expected.item())


def test_same_index_same_item_batched_or_not(train):
    again = SyntheticPairDataset(CONFIG, "train", SIZE)
    a1, a2, overlap_a = train[5]
    b1, b2, overlap_b = again.render_batch([2, 5])[1]
    assert overlap_a == pytest.approx(overlap_b, abs=1e-6)
    for a, b in ((a1, b1), (a2, b2)):
        assert a.source == b.source
        torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=0)
        torch.testing.assert_close(a.depth, b.depth, atol=1e-5, rtol=0)
        assert torch.equal(a.cam2world, b.cam2world)


def test_items_of_one_scene_differ_in_cameras(train):
    first, second = train.render_batch([0, 1])
    assert first[0].source.rsplit("/pair=", 1)[0] == second[0].source.rsplit("/pair=", 1)[0]
    assert not torch.equal(first[0].cam2world, second[0].cam2world)


def test_most_pairs_reach_the_overlap_range(train):
    values = [item[2] for item in train.render_batch([0, 4, 8, 12, 16, 20])]
    assert sum(v >= CONFIG.min_overlap * 0.8 for v in values) >= 4


def test_val_and_train_scenes_are_disjoint():
    train_seeds = {scene_seed("train", i) for i in range(10_000)}
    val_seeds = {scene_seed("val", i) for i in range(10_000)}
    assert not train_seeds & val_seeds
    val = SyntheticPairDataset(CONFIG, "val", SIZE)
    assert len(val) == 16
    train_ds = SyntheticPairDataset(CONFIG, "train", SIZE)
    assert {val.scene_of(i)[1] for i in range(16)}.isdisjoint({train_ds.scene_of(i)[1] for i in range(64)})
    with pytest.raises(IndexError, match="out of range"):
        val[16]
    with pytest.raises(ValueError, match="split"):
        SyntheticPairDataset(CONFIG, "test", SIZE)


def test_stream_with_workers_gives_the_batches_rendered_in_process(train):
    batches = [[0, 1, 9], [20, 21]]
    streamed = list(train.stream(batches, workers=2))
    assert [len(b) for b in streamed] == [3, 2]
    for batch, items in zip(batches, streamed, strict=True):
        for (a1, a2, overlap_a), (b1, b2, overlap_b) in zip(train.render_batch(batch), items, strict=True):
            assert a1.source == b1.source and overlap_a == overlap_b
            assert torch.equal(a1.image, b1.image) and torch.equal(a2.depth, b2.depth)


class _HostReads(torch.overrides.TorchFunctionMode):
    """Counts calls that make a GPU wait for the host (copies back, scalars, nonzero, bool masks), except
    while `paused`."""

    def __init__(self):
        super().__init__()
        self.count, self.paused = 0, False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        bool_index = name in ("__getitem__", "__setitem__") and any(
            isinstance(p, torch.Tensor) and p.dtype == torch.bool
            for p in (args[1] if isinstance(args[1], tuple) else (args[1],))
        )
        if not self.paused:
            self.count += name in ("cpu", "item", "tolist", "nonzero", "__float__", "__bool__") or bool_index
        return func(*args, **(kwargs or {}))

    def pausing(self, fn):
        def paused(*args, **kwargs):
            self.paused = True
            try:
                return fn(*args, **kwargs)
            finally:
                self.paused = False

        return paused


def test_render_waits_for_the_host_a_few_times_per_kind_group(train, monkeypatch):
    # Ray casts are one Triton kernel on a GPU: their torch reference path (CPU) is left out of the count.
    from pointmap.data.synthetic import primitives, render

    reads = _HostReads()
    monkeypatch.setattr(render, "cast_rays", reads.pausing(primitives.cast_rays))
    monkeypatch.setattr(render, "occluded", reads.pausing(primitives.occluded))
    job = train.prepare([0, 4, 8, 12, 16, 20, 24, 28])
    assert len(job.groups) == 3
    with reads:
        items = train.render(job)
    # Per group: hit and sky rows (2 nonzero), one read of the texture pattern counts; per call: the overlaps.
    assert reads.count == 3 * len(job.groups) + 1
    assert [item[0].source for item in items] == [train.render_batch([i])[0][0].source for i in job.indices]


def test_one_stack_for_all_kinds_gives_the_items_of_one_stack_per_kind(train):
    one_stack = SyntheticPairDataset(replace(CONFIG, group_by_kind=False), "train", SIZE)
    indices = [0, 4, 8, 12, 16, 20, 24, 28]
    job = one_stack.prepare(indices)
    assert len(job.groups) == 1 and len(train.prepare(indices).groups) == 3
    per_kind = train.render(train.prepare(indices))
    for (a1, a2, overlap_a), (b1, b2, overlap_b) in zip(per_kind, one_stack.render(job), strict=True):
        assert a1.source == b1.source and overlap_a == pytest.approx(overlap_b, abs=1e-6)
        for a, b in ((a1, b1), (a2, b2)):
            assert torch.equal(a.cam2world, b.cam2world) and torch.equal(a.intrinsics, b.intrinsics)
            torch.testing.assert_close(a.image, b.image, atol=1e-5, rtol=0)
            torch.testing.assert_close(a.depth, b.depth, atol=1e-5, rtol=0)


def test_wide_share_keeps_first_views_and_turns_second_views_further(train):
    wide = SyntheticPairDataset(replace(CONFIG, wide_share=1.0), "train", SIZE)
    items = [0, 1, 2, 3, 8, 9, 10, 11]
    turns, wide_turns = [], []
    for (a1, a2, _), (b1, b2, _) in zip(train.render_batch(items), wide.render_batch(items), strict=True):
        assert torch.equal(a1.cam2world, b1.cam2world)  # the same first view: wide_share draws after it
        turns.append(float(rotation_angle_deg(a1.cam2world[:3, :3], a2.cam2world[:3, :3])))
        wide_turns.append(float(rotation_angle_deg(b1.cam2world[:3, :3], b2.cam2world[:3, :3])))
    # The widest candidate in the overlap range turns at least as far as the first one in range.
    assert all(w >= t - 1e-3 for t, w in zip(turns, wide_turns, strict=True))
    assert sum(wide_turns) > sum(turns) + 10


def test_roll_deg_sets_how_far_cameras_tilt_about_their_axis():
    def camera_x_heights(roll_deg: float) -> torch.Tensor:
        dataset = SyntheticPairDataset(replace(CONFIG, roll_deg=roll_deg), "train", SIZE)
        poses = [view.cam2world for pair in dataset.render_batch(list(range(4))) for view in pair[:2]]
        return torch.stack(poses)[:, 2, 0].abs()  # world-up component of each camera's x axis (OpenCV)

    assert camera_x_heights(0.0).max() < 1e-5  # level cameras
    tilted = camera_x_heights(20.0)
    assert tilted.median() > math.sin(math.radians(5)) and tilted.max() < math.sin(math.radians(80))


def test_object_min_median_keeps_close_views_of_objects():
    def median_depths(min_median: float) -> torch.Tensor:
        config = replace(
            CONFIG, kinds=("objects",), kind_weights=(1.0,), object_orbit_m=(0.5, 1.0), object_min_median_m=min_median
        )
        pairs = SyntheticPairDataset(config, "train", SIZE).render_batch(list(range(8)))
        for _, _, value in pairs:
            assert config.min_overlap <= value <= 1.0
        return torch.stack([view.depth[view.valid].median() for pair in pairs for view in pair[:2]])

    # Orbits of 0.5-1 m: the default threshold (1 m) drops every view whose median depth is closer, so the
    # views kept look past the objects; a 0.3 m threshold keeps close-ups (6 of these 16 views).
    assert (median_depths(1.0) > 1.0).all()
    assert (median_depths(0.3) < 1.0).float().mean() >= 0.25


def test_flash_items_keep_their_cameras_and_geometry_and_change_their_light(train):
    lit = SyntheticPairDataset(replace(CONFIG, flash_share=1.0), "train", SIZE)
    half = SyntheticPairDataset(replace(CONFIG, flash_share=0.5), "train", SIZE)
    flashed = 0
    for index in range(4):
        plain_pair, lit_pair, half_pair = train[index], lit[index], half[index]
        assert plain_pair[2] == lit_pair[2]  # same overlap
        for plain, flash, maybe in zip(plain_pair[:2], lit_pair[:2], half_pair[:2], strict=True):
            assert torch.equal(plain.cam2world, flash.cam2world) and torch.equal(plain.depth, flash.depth)
            assert (plain.image - flash.image).abs().mean() > 0.01
            # With half the items flashed, each view is one of the two renders.
            assert torch.equal(maybe.image, plain.image) or torch.equal(maybe.image, flash.image)
        flashed += int(torch.equal(half_pair[0].image, lit_pair[0].image))
    assert 0 < flashed < 4
