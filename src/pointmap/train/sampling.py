"""Which pairs each training step reads: a pure function of (seed, step), so runs resume exactly.

Instead of epochs and a DistributedSampler, step `s`, micro-batch `m` draws a global batch of
`batch_size * world_size` pairs from the weighted mixture with a generator seeded by (seed, s, m);
rank `r` takes its slice. Resuming at step `s` replays nothing and skips nothing, mid-epoch or not,
and changing the mixture weights never needs an epoch boundary.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from pointmap.data.mix import MixedPairs
from pointmap.data.sample import ViewSample

# Stream tags keep the seeds of training, evaluation and augmentation draws apart.
TRAIN_STREAM, EVAL_STREAM = 1, 2


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integers, well mixed (numpy's SeedSequence hash)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0]) >> 1


class StepBatchSampler:
    """DataLoader `batch_sampler` yielding, per micro-batch, items `(index, item_seed, batch_seed)`.

    Args:
        mix: the weighted mixture to draw from.
        batch_size: pairs per micro-batch on this rank.
        seed: the run's seed.
        start_step, end_step: optimizer steps [start_step, end_step) to cover.
        accumulation: micro-batches per optimizer step.
        rank, world_size: this process's slice of the global batch.
    """

    def __init__(self, mix: MixedPairs, batch_size: int, seed: int, start_step: int, end_step: int,
                 accumulation: int = 1, rank: int = 0, world_size: int = 1):
        self.mix, self.batch_size, self.seed = mix, batch_size, seed
        self.start_step, self.end_step, self.accumulation = start_step, end_step, accumulation
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step) * self.accumulation

    def batch(self, step: int, micro: int) -> list[tuple[int, int, int]]:
        """The items of this rank for one micro-batch."""
        batch_seed = derive_seed(self.seed, TRAIN_STREAM, step, micro)
        generator = torch.Generator().manual_seed(batch_seed)
        indices = self.mix.sample(self.batch_size * self.world_size, generator, draw=step * self.accumulation + micro)
        first = self.rank * self.batch_size
        return [
            (index, derive_seed(batch_seed, first + i), batch_seed)
            for i, index in enumerate(indices[first : first + self.batch_size])
        ]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start_step, self.end_step):
            for micro in range(self.accumulation):
                yield self.batch(step, micro)


def eval_batches(mix: MixedPairs, batch_size: int, count: int, seed: int) -> list[list[tuple[int, int, int]]]:
    """The fixed evaluation batches: `count` batches of distinct pairs where the mix allows it."""
    generator = torch.Generator().manual_seed(derive_seed(seed, EVAL_STREAM))
    total = min(len(mix), batch_size * count)
    order = torch.randperm(len(mix), generator=generator)[:total].tolist()
    return [[(index, 0, 0) for index in order[i : i + batch_size]] for i in range(0, total, batch_size)]


class SeededPairs:
    """Map-style dataset over a mixture that passes the sampler's seeds through to the collate function."""

    def __init__(self, mix: MixedPairs):
        self.mix = mix

    def __len__(self) -> int:
        return len(self.mix)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[ViewSample, ViewSample, float, int, int]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: list[tuple[int, int, int]]) -> list[tuple[ViewSample, ViewSample, float, int, int]]:
        """A whole batch at once (the DataLoader calls this when it exists): sources render it in one pass."""
        pairs = self.mix.get_many([index for index, _, _ in items])
        return [(*pair, item_seed, batch_seed) for pair, (_, item_seed, batch_seed) in zip(pairs, items, strict=True)]
