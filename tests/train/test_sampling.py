"""Step-seeded sampling: reproducible, split across ranks, mixed by weight."""

from __future__ import annotations

import torch

from pointmap.data.mix import MixedPairs
from pointmap.train.sampling import StepBatchSampler, eval_batches


class _Range:
    """A stand-in dataset whose items are their own indices."""

    def __init__(self, length: int):
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return index


def test_mixture_follows_the_weights_not_the_lengths():
    mix = MixedPairs([_Range(10), _Range(1000)], [3.0, 1.0])
    indices = torch.tensor(mix.sample(8000, torch.Generator().manual_seed(0)))
    share_small = (indices < 10).float().mean().item()
    assert abs(share_small - 0.75) < 0.02
    assert indices.max() < 1010 and mix[1005] == 995 and mix[3] == 3


def test_batches_are_pure_functions_of_seed_and_step_and_ranks_split_the_global_batch():
    mix = MixedPairs([_Range(50), _Range(70)], [1.0, 1.0])
    whole = StepBatchSampler(mix, batch_size=6, seed=3, start_step=0, end_step=5, accumulation=2)
    resumed = StepBatchSampler(mix, batch_size=6, seed=3, start_step=2, end_step=5, accumulation=2)
    assert len(whole) == 10 and list(whole)[4:] == list(resumed)
    assert list(whole) != list(StepBatchSampler(mix, 6, seed=4, start_step=0, end_step=5, accumulation=2))
    ranks = [StepBatchSampler(mix, 3, seed=3, start_step=0, end_step=5, accumulation=2, rank=r, world_size=2)
             for r in range(2)]
    for step_batch, (a, b) in zip(whole, zip(*ranks, strict=True), strict=True):
        assert [item[0] for item in a + b] == [item[0] for item in step_batch]  # same pairs, split in two
        assert len({item[2] for item in a + b}) == 1  # one batch seed: one resolution on every rank
        assert len({item[1] for item in a + b}) == 6  # every pair its own augmentation seed


def test_eval_batches_are_fixed_and_distinct():
    mix = MixedPairs([_Range(10)], [1.0])
    batches = eval_batches(mix, batch_size=4, count=5, seed=0)
    flat = [item[0] for batch in batches for item in batch]
    assert [len(b) for b in batches] == [4, 4, 2] and sorted(flat) == list(range(10))
    assert batches == eval_batches(mix, batch_size=4, count=5, seed=0)


class _Batched(_Range):
    """A stand-in for a source that renders many items in one pass."""

    def __init__(self, length: int):
        super().__init__(length)
        self.calls: list[list[int]] = []

    def render_batch(self, indices: list[int]) -> list[int]:
        self.calls.append(list(indices))
        return [1000 + i for i in indices]


def test_get_many_keeps_the_order_and_renders_each_source_once():
    batched = _Batched(20)
    mix = MixedPairs([_Range(10), batched], [1.0, 1.0])
    assert mix.get_many([12, 3, 25, 0]) == [1002, 3, 1015, 0]
    assert batched.calls == [[2, 15]]
