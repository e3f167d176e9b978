"""Each micro-step's training pairs as one PairBatch on the training device, augmented there.

Pools are fetched in the training process; DataLoader worker processes prepare the GPU renders of
the synthetic engine (scenes, random numbers: CPU work), which the training process then renders,
and load the other sources' pairs (folder datasets, CPU renders) as raw views (`source_role`). All
parts meet on the device, where the whole batch is
cropped, resized and augmented in one pass (`data.augment.augment_pairs`) and its ground-truth
pointmaps are computed. Workers shrink views much larger than the training crops need (`shrink_view`).
A background thread prepares the next batches (on a GPU, on its own CUDA stream) while the model
trains on the current one.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pointmap.data.augment import AugmentConfig, augment_pairs, resample_views
from pointmap.data.mix import DatasetSpec, MixedPairs
from pointmap.data.pairs import PairBatch
from pointmap.data.sample import ViewBatch, ViewSample
from pointmap.train.sampling import SeededPairs, StepBatchSampler

# How a source's pairs reach the training process (see `source_role`).
IN_PROCESS, PREPARED, LOADED = "in process", "prepared by workers", "loaded by workers"


def source_role(spec: DatasetSpec, dataset: object) -> str:
    """How the pairs of a source reach the training process.

    IN_PROCESS: a pool (already in memory, maybe on the GPU) or a device source that cannot split its
    work; the training process fetches the pairs itself. PREPARED: a device renderer with
    `prepare(indices)` (CPU work: scenes, random numbers) and `render(job)` (device work): DataLoader
    workers prepare each step's job, the training process renders it. LOADED: everything else (folder
    datasets, CPU renders): workers produce the pairs. CUDA tensors never enter a worker process.
    """
    if spec.in_memory > 0:
        return IN_PROCESS
    if spec.device != "cpu":
        return PREPARED if hasattr(dataset, "prepare") and hasattr(dataset, "render") else IN_PROCESS
    return LOADED


@dataclass
class RawPairs:
    """B pairs before augmentation: their 2B views (first views, then second views) and seeds."""

    views: ViewBatch
    overlap: Tensor  # (B,) float, NaN where unknown
    seeds: list[int]

    def pin_memory(self) -> RawPairs:
        """Page-locked copies (what a DataLoader with pin_memory=True calls)."""
        return RawPairs(self.views.pin_memory(), self.overlap.pin_memory(), self.seeds)

    def to(self, device: torch.device) -> RawPairs:
        """The same pairs on `device` (asynchronous from page-locked memory)."""
        return RawPairs(self.views.to(device, non_blocking=True), self.overlap.to(device, non_blocking=True),
                        self.seeds)

    @staticmethod
    def cat(parts: Sequence[RawPairs]) -> RawPairs:
        """The pairs of several parts, in order, on the first part's device."""
        if len(parts) == 1:
            return parts[0]
        count = [len(p.seeds) for p in parts]
        views = ViewBatch.cat([p.views.index(torch.arange(n)) for p, n in zip(parts, count, strict=True)]
                              + [p.views.index(torch.arange(n, 2 * n)) for p, n in zip(parts, count, strict=True)])
        overlap = torch.cat([p.overlap.to(views.image.device) for p in parts])
        return RawPairs(views, overlap, [seed for p in parts for seed in p.seeds])


def collate_raw(items: list[tuple[ViewSample, ViewSample, float | None, int, int]]) -> RawPairs | None:
    """DataLoader `collate_fn`: the pairs `(view1, view2, overlap, item_seed, batch_seed)` as RawPairs (None
    for no items, where a step draws nothing from the worker-fed sources)."""
    if not items:
        return None
    views = ViewBatch.stack([item[0] for item in items] + [item[1] for item in items])
    overlap = torch.tensor([float("nan") if item[2] is None else float(item[2]) for item in items])
    return RawPairs(views, overlap, [int(item[3]) for item in items])


def shrink_view(view: ViewSample, resolutions: Sequence[tuple[int, int]], max_zoom: float) -> ViewSample:
    """`view` downscaled (intrinsics updated) to the smallest size from which every resolution's most
    zoomed crop is still taken at full detail; unchanged if it is not larger than that.

    Folder datasets store photos of up to 1024 pixels; shrinking them in the worker that reads them
    cuts the host-to-device copy and the padding of a batch to its largest view, not the detail.
    """
    height, width = view.image.shape[-2:]
    factor = (1 + max_zoom) * max(max(h / height, w / width) for h, w in resolutions)
    if factor >= 1:
        return view
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    windows = torch.tensor([[0, 0, width, height]])
    return resample_views(ViewBatch.stack([view]), windows, size).sample(0, view.source)


@dataclass(frozen=True)
class ShrinkingCollate:
    """DataLoader `collate_fn` of worker-fed sources: `collate_raw` of the pairs after `shrink_view`."""

    resolutions: tuple[tuple[int, int], ...]
    max_zoom: float

    def __call__(self, items: list[tuple[ViewSample, ViewSample, float | None, int, int]]) -> RawPairs | None:
        shrink = [
            (shrink_view(v1, self.resolutions, self.max_zoom), shrink_view(v2, self.resolutions, self.max_zoom), *rest)
            for v1, v2, *rest in items
        ]
        return collate_raw(shrink)


def batch_resolution(resolutions: Sequence[tuple[int, int]], batch_seed: int) -> tuple[int, int]:
    """The (H, W) of the batch of `batch_seed`: the same on every rank, drawn afresh every step."""
    generator = torch.Generator().manual_seed(batch_seed)
    return tuple(resolutions[int(torch.randint(len(resolutions), (), generator=generator))])


def make_pair_batch(raw: RawPairs, size: tuple[int, int], augment: AugmentConfig | None,
                    device: torch.device) -> PairBatch:
    """Augment (or, with `augment=None`, centre-crop) raw pairs to `size` on `device`, with their GT pointmaps."""
    views = augment_pairs(raw.views.to(device, non_blocking=True), raw.seeds, size, augment)
    return PairBatch.from_views(views, raw.overlap.to(device, non_blocking=True))


@dataclass
class WorkerPart:
    """What DataLoader workers hand over for a group of consecutive micro-steps.

    Attributes:
        jobs: per PREPARED source, (its number in the mix, one prepared job for the whole group, the items'
            seeds in job order, how many of the items each micro-step takes, in order).
        loaded: per micro-step, the LOADED sources' pairs, or None where a step has none.
    """

    jobs: list[tuple[int, object, list[int], list[int]]]
    loaded: list[RawPairs | None]

    def pin_memory(self) -> WorkerPart:
        """Loaded pairs in page-locked memory (render jobs are moved by the renderer itself)."""
        return WorkerPart(self.jobs, [None if raw is None else raw.pin_memory() for raw in self.loaded])


class _WorkerParts:
    """DataLoader dataset run by the workers: the worker items of a group of micro-steps -> WorkerPart."""

    def __init__(self, mix: MixedPairs, roles: list[str], collate: ShrinkingCollate):
        self.mix, self.roles, self.collate, self.pairs = mix, roles, collate, SeededPairs(mix)

    def __getitem__(self, steps: list[list[tuple[int, int, int]]]) -> WorkerPart:
        prepared: dict[int, list[list[tuple[int, int, int]]]] = {}
        loaded = []
        for number, items in enumerate(steps):
            step_loaded = []
            for item in items:
                k = self.mix.dataset_of(item[0])
                if self.roles[k] == PREPARED:
                    prepared.setdefault(k, [[] for _ in steps])[number].append(item)
                else:
                    step_loaded.append(item)
            loaded.append(self.collate(self.pairs.__getitems__(step_loaded)) if step_loaded else None)
        jobs = []
        for k, per_step in prepared.items():
            group = [item for items in per_step for item in items]
            job = self.mix.datasets[k].prepare([index - self.mix.offsets[k] for index, _, _ in group])
            jobs.append((k, job, [seed for _, seed, _ in group], [len(items) for items in per_step]))
        return WorkerPart(jobs, loaded)


def _as_is(part: WorkerPart) -> WorkerPart:
    """The DataLoader's collate_fn: a WorkerPart is already one micro-step's worth."""
    return part


class StepBatches:
    """The training batches of micro-steps the sampler covers, in order, on `device`.

    Each batch holds the IN_PROCESS sources' pairs, then the PREPARED sources' renders, then the LOADED
    sources' pairs (see `source_role`); its content does not depend on the number of workers.

    Args:
        mix: the training mixture; specs: its datasets' specs, in the same order.
        sampler: which pairs each micro-step reads (with their seeds).
        resolutions: (H, W) crops, one drawn per batch; augment: the augmentation config.
        num_workers: DataLoader worker processes preparing renders and loading pairs (0: this process).
        device: where batches are assembled, augmented and returned.
        prefetch: batches prepared ahead in a background thread (0: none, in the caller's thread).
        render_steps: consecutive micro-steps whose PREPARED renders are prepared and rendered as one job
            (a renderer's fixed cost per call is then shared by more pairs; the pairs are the same).
    """

    def __init__(self, mix: MixedPairs, specs: Sequence[DatasetSpec], sampler: StepBatchSampler,
                 resolutions: Sequence[tuple[int, int]], augment: AugmentConfig, num_workers: int,
                 device: torch.device, prefetch: int = 2, render_steps: int = 1):
        if len(specs) != len(mix.datasets):
            raise ValueError(f"got {len(specs)} specs for {len(mix.datasets)} datasets; pass one spec per dataset")
        if render_steps < 1:
            raise ValueError(f"render_steps={render_steps}: pass 1 or more")
        self.mix, self.sampler, self.resolutions, self.augment = mix, sampler, resolutions, augment
        self.num_workers, self.device, self.prefetch = num_workers, device, prefetch
        self.render_steps = render_steps
        self.roles = [source_role(spec, dataset) for spec, dataset in zip(specs, mix.datasets, strict=True)]
        self.pairs = SeededPairs(mix)

    def split(self, items: list[tuple[int, int, int]]) -> tuple[list, list]:
        """A micro-batch's items: (fetched in this process, handed to workers), each in sampler order."""
        local, remote = [], []
        for item in items:
            (local if self.roles[self.mix.dataset_of(item[0])] == IN_PROCESS else remote).append(item)
        return local, remote

    def _worker_items(self) -> Iterator[list[list[tuple[int, int, int]]]]:
        """The workers' items, in groups of `render_steps` micro-steps (the last group may be shorter)."""
        group = []
        for items in self.sampler:
            group.append(self.split(items)[1])
            if len(group) == self.render_steps:
                yield group
                group = []
        if group:
            yield group

    def _worker_parts(self) -> Iterator[WorkerPart] | None:
        """The workers' parts of every micro-step (None if no source needs workers); the worker processes
        start here, so they fork from the caller's thread, never from the prefetch thread."""
        if all(role == IN_PROCESS for role in self.roles):
            return None
        collate = ShrinkingCollate(tuple(self.resolutions), self.augment.max_zoom)
        groups = -(-len(self.sampler) // self.render_steps)
        loader = DataLoader(_WorkerParts(self.mix, self.roles, collate),
                            sampler=_Batches(self._worker_items, groups), batch_size=None,
                            collate_fn=_as_is, num_workers=self.num_workers, pin_memory=self.device.type == "cuda")
        return iter(loader)

    def _render(self, part: WorkerPart) -> list[list[RawPairs]]:
        """Per micro-step of a group, its worker-fed parts: each source's renders, then the loaded pairs."""
        per_step: list[list[RawPairs]] = [[] for _ in part.loaded]
        for k, job, seeds, counts in part.jobs:
            rendered = self.mix.datasets[k].render(job)
            start = 0
            for number, count in enumerate(counts):
                if count:
                    pairs = zip(rendered[start : start + count], seeds[start : start + count], strict=True)
                    per_step[number].append(collate_raw([(*pair, seed, 0) for pair, seed in pairs]))
                start += count
        for number, loaded in enumerate(part.loaded):
            if loaded is not None:
                per_step[number].append(loaded)
        return per_step

    def _batches(self, parts_of_workers: Iterator[WorkerPart] | None) -> Iterator[PairBatch]:
        pending: list[list[RawPairs]] = []  # worker-fed parts of the group's remaining micro-steps
        for items in self.sampler:
            local = self.split(items)[0]
            parts = [collate_raw(self.pairs.__getitems__(local))] if local else []
            if parts_of_workers is not None:
                if not pending:
                    pending = self._render(next(parts_of_workers))
                parts.extend(pending.pop(0))
            raw = RawPairs.cat([part.to(self.device) for part in parts])
            yield make_pair_batch(raw, batch_resolution(self.resolutions, items[0][2]), self.augment, self.device)

    def __iter__(self) -> Iterator[PairBatch]:
        batches = self._batches(self._worker_parts())
        return prefetched(batches, self.prefetch, self.device) if self.prefetch > 0 else batches


class _Batches:
    """A re-iterable sampler over a generator function (what a DataLoader's sampler needs)."""

    def __init__(self, make: Callable[[], Iterator[list]], length: int):
        self.make, self.length = make, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[list]:
        return self.make()


def prefetched(batches: Iterator[PairBatch], depth: int, device: torch.device) -> Iterator[PairBatch]:
    """`batches` produced by a background thread, at most `depth` ahead; on a GPU, on its own CUDA stream.

    The batches are the same as without the thread (they are pure functions of the sampler's seeds);
    only when they are made changes. Torch releases the GIL in its kernels and CUDA waits, so the
    thread renders, loads and augments while the training loop waits on the GPU.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    cuda = device.type == "cuda"
    if cuda and device.index is None:  # the producer thread's set_device needs an index
        device = torch.device("cuda", torch.cuda.current_device())
    stream = torch.cuda.Stream(device) if cuda else None
    if cuda:
        # The side stream first waits for everything queued so far (e.g. a pool rendered on the default stream).
        stream.wait_stream(torch.cuda.current_stream(device))

    def produce() -> None:
        try:
            if cuda:
                torch.cuda.set_device(device)
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                for batch in batches:
                    done = None
                    if cuda:
                        done = torch.cuda.Event()
                        done.record(stream)
                    while not stop.is_set():
                        try:
                            ready.put((batch, done), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            ready.put((None, None))
        except BaseException as err:  # handed to the consumer, which raises it
            ready.put((err, None))

    thread = threading.Thread(target=produce, name="pointmap-batches", daemon=True)
    thread.start()
    try:
        while True:
            batch, done = ready.get()
            if batch is None:
                return
            if isinstance(batch, BaseException):
                raise batch
            if cuda:
                current = torch.cuda.current_stream(device)
                current.wait_event(done)
                for field in fields(batch):
                    # Allocated on the producer's stream: keep the memory until this stream is done with it.
                    getattr(batch, field.name).record_stream(current)
            yield batch
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting to hand over its last item
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                continue
        thread.join()
