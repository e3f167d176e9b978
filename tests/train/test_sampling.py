"""Step-seeded sampling: reproducible, split across ranks, mixed by weight."""

from __future__ import annotations

import pytest
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


def test_counts_follow_the_weights_every_draw_and_average_to_them():
    mix = MixedPairs([_Range(10), _Range(20), _Range(30)], [0.5, 0.3, 0.2])
    generator = torch.Generator().manual_seed(0)
    counts = torch.tensor([mix.counts(64, generator) for _ in range(2000)])
    assert torch.all(counts.sum(1) == 64)
    # Expected 32, 19.2, 12.8: each draw rounds up or down, never further.
    assert counts[:, 0].unique().tolist() == [32]
    assert set(counts[:, 1].tolist()) == {19, 20} and set(counts[:, 2].tolist()) == {12, 13}
    assert counts.double().mean(0).tolist() == pytest.approx([32, 19.2, 12.8], abs=0.03)
    assert MixedPairs([_Range(5), _Range(5)], [1.0, 0.0]).counts(7, generator) == [7, 0]


def test_sources_are_interleaved_and_sequential_ones_read_in_order():
    mix = MixedPairs([_Range(1000), _Range(100)], [0.75, 0.25], sequential=[True, False])
    draws = [mix.sample(8, torch.Generator().manual_seed(d), draw=d) for d in range(3)]
    for d, indices in enumerate(draws):
        first = [i for i in indices if i < 1000]
        assert first == [8 * d + j for j in range(6)]  # in order from draw * count
        assert all(1000 <= i < 1100 for i in indices if i >= 1000)
        # Two pairs of the second source, one in each half of the batch (two ranks of four each).
        assert sum(i >= 1000 for i in indices[:4]) == 1 and sum(i >= 1000 for i in indices[4:]) == 1
    wrapped = mix.sample(8, torch.Generator().manual_seed(0), draw=166)  # 166 * 8 = 1328 wraps to 328
    assert [i for i in wrapped if i < 1000][:2] == [328, 329]
    with pytest.raises(ValueError, match="sequential flags"):
        MixedPairs([_Range(3)], [1.0], sequential=[True, False])
