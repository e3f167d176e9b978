"""Step batches: pool and worker-fed sources meet in one augmented batch, the same with or without workers."""

from __future__ import annotations

import dataclasses
import math
import os
import threading

import pytest
import torch
from train_testing import plane_view, write_plane_dataset

from pointmap.data.augment import AugmentConfig
from pointmap.data.formats.generic import GenericPairDataset
from pointmap.data.mix import DatasetSpec, InMemoryPairs, MixedPairs, build_mix
from pointmap.data.pairs import pair_pointmaps
from pointmap.train.batches import (
    IN_PROCESS,
    LOADED,
    PREPARED,
    RawPairs,
    StepBatches,
    batch_resolution,
    collate_raw,
    make_pair_batch,
    prefetched,
    shrink_view,
    source_role,
)
from pointmap.train.sampling import StepBatchSampler


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_plane_dataset(tmp_path_factory.mktemp("planes"), size=(40, 48))


def _specs(root) -> tuple[DatasetSpec, DatasetSpec]:
    pool = DatasetSpec(kind="generic", root=str(root), split="train", weight=3.0, in_memory=5)
    files = DatasetSpec(kind="generic", root=str(root), split="train", weight=1.0)
    return pool, files


def test_ground_truth_pointmaps_match_the_per_pair_reference():
    view1 = plane_view((0.0, 0.0, 0.0), (0.3, 0.0, 0.95), 2.0, size=(24, 32))
    view2 = plane_view((0.4, 0.1, 0.0), (0.3, 0.0, 0.95), 2.0, size=(24, 32))
    view2.cam2world[:3, :3] = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # turned: a real transform
    raw = collate_raw([(view1, view2, 0.7, 5, 9), (view2, view1, None, 6, 9)])
    batch = make_pair_batch(raw, (24, 32), None, torch.device("cpu"))  # centre crop of the same size: identity
    for row, (a, b) in enumerate([(view1, view2), (view2, view1)]):
        pts1, pts2 = pair_pointmaps(a, b)
        torch.testing.assert_close(batch.pts1[row], pts1)
        torch.testing.assert_close(batch.pts2[row], pts2)
        torch.testing.assert_close(batch.img1[row], a.image, atol=1e-6, rtol=0)
    assert batch.overlap[0] == pytest.approx(0.7) and math.isnan(batch.overlap[1])


def test_raw_parts_concatenate_pairs_in_order():
    small = [plane_view((0.1 * i, 0.0, 0.0), (0.0, 0.0, 1.0), 2.0, size=(16, 16)) for i in range(4)]
    large = [plane_view((0.1 * i, 0.0, 0.0), (0.0, 0.0, 1.0), 3.0, size=(20, 24)) for i in range(2)]
    first = collate_raw([(small[0], small[1], 0.5, 1, 0), (small[2], small[3], 0.6, 2, 0)])
    second = collate_raw([(large[0], large[1], 0.7, 3, 0)])
    both = RawPairs.cat([first, second])
    assert both.seeds == [1, 2, 3] and both.overlap.tolist() == pytest.approx([0.5, 0.6, 0.7])
    assert both.views.sizes.tolist() == [[16, 16], [16, 16], [20, 24], [16, 16], [16, 16], [20, 24]]
    torch.testing.assert_close(both.views.depth[5, :20, :24], large[1].depth)
    torch.testing.assert_close(both.views.image[4, :, :16, :16], small[3].image)


def test_batches_are_the_same_with_and_without_workers_or_prefetch_and_mix_both_sources(dataset):
    specs = _specs(dataset)
    mix = build_mix(specs)
    augment = AugmentConfig(noise_prob=0.5, blur_prob=0.5, jpeg_prob=0.5)
    resolutions = ((24, 24), (16, 32))
    runs = []
    for workers, prefetch in ((0, 0), (1, 2)):  # all in this thread; a worker process and a prefetch thread
        sampler = StepBatchSampler(mix, batch_size=8, seed=2, start_step=0, end_step=3, accumulation=2)
        stream = StepBatches(mix, specs, sampler, resolutions, augment, workers, torch.device("cpu"), prefetch)
        runs.append(list(stream))
    assert len(runs[0]) == 6
    for plain, loaded in zip(*runs, strict=True):
        for field in dataclasses.fields(plain):
            assert torch.equal(getattr(plain, field.name), getattr(loaded, field.name)), field.name
    for (step, micro), batch in zip([(s, m) for s in range(3) for m in range(2)], runs[0], strict=True):
        items = sampler.batch(step, micro)
        assert batch.img1.shape == (8, 3, *batch_resolution(resolutions, items[0][2]))
        # Weights 3 : 1 of 8 pairs: exactly 6 from the pool and 2 from the files every micro-step.
        assert [mix.dataset_of(index) for index, _, _ in items].count(0) == 6
        assert batch.valid1.any() and torch.isfinite(batch.pts2).all()
    # The pool's pairs come first, then the worker-fed ones; no two pairs augmented alike.
    assert len({batch.img1[i].sum().item() for batch in runs[0] for i in range(8)}) == 48


def test_specs_must_match_the_mix(dataset):
    specs = _specs(dataset)
    mix = build_mix(specs)
    sampler = StepBatchSampler(mix, batch_size=2, seed=0, start_step=0, end_step=1)
    with pytest.raises(ValueError, match="one spec per dataset"):
        StepBatches(mix, specs[:1], sampler, ((16, 16),), AugmentConfig(), 0, torch.device("cpu"))


def test_workers_shrink_large_views_keeping_the_camera_exact():
    view = plane_view((0.0, 0.0, 0.0), (0.0, 0.0, 1.0), 2.0, size=(80, 100), focal=90.0)
    # The 24x24 crop zoomed 1.25x needs 30 pixels on the short side: (80, 100) -> (30, 38) (37.5 rounds to even).
    small = shrink_view(view, ((24, 24),), max_zoom=0.25)
    assert small.image.shape == (3, 30, 38) and small.source == view.source
    sx, sy = 38 / 100, 30 / 80
    expected = torch.tensor([[90 * sx, 0, (50 + 0.5) * sx - 0.5], [0, 90 * sy, (40 + 0.5) * sy - 0.5], [0, 0, 1]])
    torch.testing.assert_close(small.intrinsics, expected)
    torch.testing.assert_close(small.depth, torch.full((30, 38), 2.0))  # a fronto-parallel plane
    assert shrink_view(view, ((64, 64),), max_zoom=0.3) is view  # 83 px needed: kept as it is


def test_prefetching_hands_over_in_order_raises_the_producers_errors_and_stops_early():
    cpu = torch.device("cpu")
    assert list(prefetched(iter(range(7)), 2, cpu)) == list(range(7))

    def failing():
        yield 1
        raise OSError("disk gone")

    stream = prefetched(failing(), 2, cpu)
    assert next(stream) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(stream)
    before = threading.active_count()
    stream = prefetched(iter(range(100)), 1, cpu)
    assert next(stream) == 0
    stream.close()  # the consumer stops early: the producer thread ends
    assert threading.active_count() == before


class _PreparedPlanes:
    """A stand-in device renderer: `prepare` (CPU work) and `render` (device work) of a folder dataset's pairs."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.rendered_jobs: list[tuple[int, list[int]]] = []

    def __len__(self) -> int:
        return len(self.dataset)

    def prepare(self, indices: list[int]) -> tuple[int, list[int]]:
        return os.getpid(), list(indices)

    def render(self, job: tuple[int, list[int]]) -> list:
        self.rendered_jobs.append(job)
        return [self.dataset[i] for i in job[1]]


def test_workers_prepare_device_renders_and_the_training_process_renders_them(dataset):
    files = GenericPairDataset(dataset, split="train")
    pool_spec = DatasetSpec(kind="generic", root=str(dataset), in_memory=4)
    render_spec = DatasetSpec(kind="synthetic", device="cuda")  # only its role matters here
    runs = []
    for workers in (0, 1):
        renderer = _PreparedPlanes(files)
        mix = MixedPairs([InMemoryPairs(files, 4), renderer], [1.0, 1.0])
        roles = [source_role(spec, ds) for spec, ds in zip((pool_spec, render_spec), mix.datasets, strict=True)]
        assert roles == [IN_PROCESS, PREPARED]
        sampler = StepBatchSampler(mix, batch_size=4, seed=5, start_step=0, end_step=3)
        stream = StepBatches(mix, (pool_spec, render_spec), sampler, ((24, 24),), AugmentConfig(), workers,
                             torch.device("cpu"))
        runs.append(list(stream))
        prepared_in = {pid for pid, _ in renderer.rendered_jobs}
        assert len(renderer.rendered_jobs) == 3 and all(len(indices) == 2 for _, indices in renderer.rendered_jobs)
        assert (prepared_in == {os.getpid()}) == (workers == 0)  # prepared by a worker process when there is one
    for plain, loaded in zip(*runs, strict=True):
        assert torch.equal(plain.img1, loaded.img1) and torch.equal(plain.pts2, loaded.pts2)
    assert source_role(DatasetSpec(kind="generic", root="x"), files) == LOADED
    with pytest.raises(ValueError, match="'synthetic' only"):  # a folder dataset on "cuda" would skip the workers
        build_mix([DatasetSpec(kind="generic", root=str(dataset), device="cuda")])


def test_renders_of_several_micro_steps_share_one_job_and_give_the_same_batches(dataset):
    files = GenericPairDataset(dataset, split="train")
    specs = (DatasetSpec(kind="synthetic", device="cuda"), DatasetSpec(kind="generic", root=str(dataset)))
    runs, jobs = [], []
    for render_steps, workers in ((1, 0), (2, 0), (2, 1)):
        renderer = _PreparedPlanes(files)
        mix = MixedPairs([renderer, files], [1.0, 1.0])  # PREPARED renders and LOADED pairs in every step
        sampler = StepBatchSampler(mix, batch_size=4, seed=3, start_step=0, end_step=3)
        stream = StepBatches(mix, specs, sampler, ((24, 24),), AugmentConfig(), workers, torch.device("cpu"),
                             prefetch=0, render_steps=render_steps)
        runs.append(list(stream))
        jobs.append([len(indices) for _, indices in renderer.rendered_jobs])
    assert jobs == [[2, 2, 2], [4, 2], [4, 2]]  # 3 steps of 2 renders: one job per step, or per 2 steps
    for batches in runs[1:]:
        assert len(batches) == 3
        for plain, grouped in zip(runs[0], batches, strict=True):
            assert torch.equal(plain.img1, grouped.img1) and torch.equal(plain.pts2, grouped.pts2)
            assert torch.equal(plain.valid2, grouped.valid2)
    with pytest.raises(ValueError, match="render_steps=0"):
        StepBatches(mix, specs, sampler, ((24, 24),), AugmentConfig(), 0, torch.device("cpu"), render_steps=0)
