"""Datasets named in a config, and their mixture by weight."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from pointmap.data.formats.arkitscenes import ArkitScenesPairDataset
from pointmap.data.formats.co3d import Co3dPairDataset
from pointmap.data.formats.generic import GenericPairDataset
from pointmap.data.formats.scannetpp import ScanNetppPairDataset
from pointmap.data.sample import ViewSample


class PairDataset(Protocol):
    """What every pair source provides: `len(ds)` and `ds[i] -> (view1, view2, overlap)`."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]: ...


@dataclass(frozen=True)
class DatasetSpec:
    kind: Literal["synthetic", "generic", "co3d", "arkitscenes", "scannetpp"]
    """Which reader: the synthetic engine, our folder format (docs/dataset-format.md), or a public
    dataset as DUSt3R's preprocessing lays it out (CO3Dv2, ARKitScenes, ScanNet++)."""
    weight: float = 1.0
    """Share of the training pairs drawn from this dataset, relative to the others' weights."""
    root: str = ""
    """Dataset folder (folder formats only)."""
    split: str = "train"
    """Split to read ("train", "test", ... as the format names them)."""
    size: tuple[int, int] = (224, 224)
    """(H, W) rendered by the synthetic engine (folder formats keep their stored size)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the reader (e.g. min_overlap, mask_background) or synthetic config fields."""
    in_memory: int = 0
    """A pool: use only the first N pairs, loaded once and kept in memory. 0: all pairs, read on demand;
    for the synthetic engine that is streaming, every step rendering fresh pairs in order."""
    device: str = "cpu"
    """Where the synthetic engine renders: "cuda" renders each step's pairs in one pass on the GPU, in
    the training process; "cpu" sources without a pool load in DataLoader workers (data.num_workers)."""


class InMemoryPairs:
    """The first `count` pairs of a dataset, loaded at construction (batched when it can render batches)."""

    def __init__(self, dataset: PairDataset, count: int, chunk: int = 128):
        count = min(count, len(dataset))
        render_batch = getattr(dataset, "render_batch", None)
        self.items: list[tuple[ViewSample, ViewSample, float]] = []
        for start in range(0, count, chunk):
            indices = list(range(start, min(count, start + chunk)))
            self.items += render_batch(indices) if render_batch else [dataset[i] for i in indices]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        return self.items[index]


def build_dataset(spec: DatasetSpec) -> PairDataset:
    """The pair dataset a spec names (wrapped in InMemoryPairs when `in_memory` > 0)."""
    dataset = _open_dataset(spec)
    return InMemoryPairs(dataset, spec.in_memory) if spec.in_memory > 0 else dataset


def _open_dataset(spec: DatasetSpec) -> PairDataset:
    if spec.kind == "synthetic":
        # Imported here: folder datasets must not pay for (or depend on) the synthetic engine's import.
        from pointmap.data.synthetic.dataset import SyntheticConfig, SyntheticPairDataset

        # TOML arrays arrive as lists; the config's sequence fields are tuples.
        options = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.options.items()}
        return SyntheticPairDataset(SyntheticConfig(**options), spec.split, size=tuple(spec.size),
                                    device=spec.device)
    if spec.device != "cpu":
        raise ValueError(f"dataset kind {spec.kind!r} reads files on the CPU; device = {spec.device!r} is for "
                         "kind 'synthetic' only: remove it")
    if not spec.root:
        raise ValueError(f"dataset kind {spec.kind!r} needs root = the dataset folder")
    if spec.kind == "generic":
        return GenericPairDataset(spec.root, split=spec.split, **spec.options)
    if spec.kind == "co3d":
        return Co3dPairDataset(spec.root, split=spec.split, **spec.options)
    if spec.kind == "arkitscenes":
        return ArkitScenesPairDataset(spec.root, split=spec.split, **spec.options)
    if spec.kind == "scannetpp":
        return ScanNetppPairDataset(spec.root, split=spec.split, **spec.options)
    raise ValueError(f"dataset kind {spec.kind!r}: pick synthetic, generic, co3d, arkitscenes or scannetpp")


class MixedPairs:
    """Several pair datasets behind one index, sampled by weight.

    Global index `i` addresses dataset `k` at local index `i - offset[k]`; `sample` draws indices so
    that dataset `k` supplies a share `weight[k] / sum(weights)` of the pairs, whatever its length.
    A `sequential` dataset is read in order instead of at random: draw `d` of `n` pairs takes its
    items from local index `d * n` on, so a stream of renders meets every item once per pass and
    consecutive items (which share a synthetic scene) come together.
    """

    def __init__(self, datasets: list[PairDataset], weights: list[float], sequential: Sequence[bool] | None = None):
        if not datasets or len(datasets) != len(weights):
            raise ValueError(f"got {len(datasets)} datasets and {len(weights)} weights; pass one weight each")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights {weights}: need non-negative weights with a positive sum")
        self.datasets = datasets
        self.sequential = [False] * len(datasets) if sequential is None else list(sequential)
        if len(self.sequential) != len(datasets):
            raise ValueError(f"got {len(datasets)} datasets and {len(self.sequential)} sequential flags; pass one each")
        self.weights = torch.tensor(weights, dtype=torch.float64)
        self.offsets = [0]
        for ds in datasets:
            if len(ds) == 0:
                raise ValueError(f"{type(ds).__name__} is empty; remove it from the mix")
            self.offsets.append(self.offsets[-1] + len(ds))

    def __len__(self) -> int:
        return self.offsets[-1]

    def dataset_of(self, index: int) -> int:
        """Which dataset global index `index` belongs to."""
        return bisect.bisect_right(self.offsets, index) - 1

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        k = self.dataset_of(index)
        return self.datasets[k][index - self.offsets[k]]

    def get_many(self, indices: Sequence[int]) -> list[tuple[ViewSample, ViewSample, float]]:
        """Items `indices`, each dataset's share fetched together (in one render when it has `render_batch`)."""
        by_dataset: dict[int, list[tuple[int, int]]] = {}
        for position, index in enumerate(indices):
            k = self.dataset_of(index)
            by_dataset.setdefault(k, []).append((position, index - self.offsets[k]))
        items: list = [None] * len(indices)
        for k, entries in by_dataset.items():
            dataset, local = self.datasets[k], [i for _, i in entries]
            render_batch = getattr(dataset, "render_batch", None)
            fetched = render_batch(local) if render_batch else [dataset[i] for i in local]
            for (position, _), item in zip(entries, fetched, strict=True):
                items[position] = item
        return items

    def counts(self, count: int, generator: torch.Generator) -> list[int]:
        """How many of `count` pairs each dataset supplies: its share of the weights, rounded up or down
        (systematic sampling: one uniform shifts all the rounding thresholds, so the counts sum to
        `count` and average exactly to the shares)."""
        shares = (self.weights / self.weights.sum() * count).cumsum(0)
        edges = (shares + torch.rand((), generator=generator, dtype=torch.float64)).floor().long().clamp(max=count)
        edges[-1] = count
        return torch.diff(edges, prepend=edges.new_zeros(1)).tolist()

    def sample(self, count: int, generator: torch.Generator, draw: int = 0) -> list[int]:
        """`count` global indices: each dataset's number fixed by `counts`, interleaved evenly (so any
        contiguous slice, such as one rank's, holds about the same shares), random within a dataset or
        in order from `draw * count` for sequential ones."""
        counts = self.counts(count, generator)
        uniform = torch.rand(count, generator=generator, dtype=torch.float64)
        keys, indices = [], []
        for k, (dataset, n) in enumerate(zip(self.datasets, counts, strict=True)):
            position = torch.arange(n, dtype=torch.float64)
            keys.append((position + 0.5) / max(n, 1))
            if self.sequential[k]:
                local = (draw * count + position.long()) % len(dataset)
            else:
                local = (uniform[len(indices) : len(indices) + n] * len(dataset)).long()
            indices += (self.offsets[k] + local).tolist()
        order = torch.argsort(torch.cat(keys), stable=True)
        return [indices[i] for i in order.tolist()]


def build_mix(specs: Sequence[DatasetSpec]) -> MixedPairs:
    """The weighted mixture of the datasets that `specs` name; synthetic streams (no pool) are read in order."""
    sequential = [spec.kind == "synthetic" and spec.in_memory == 0 for spec in specs]
    return MixedPairs([build_dataset(spec) for spec in specs], [spec.weight for spec in specs], sequential)
