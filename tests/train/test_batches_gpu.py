"""The batch pipeline on CUDA: the CPU's augmentations, and the prefetch thread's side stream changes nothing."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from train_testing import write_plane_dataset

from pointmap.data.augment import AugmentConfig, augment_pairs
from pointmap.data.mix import DatasetSpec, build_mix
from pointmap.data.sample import ViewBatch
from pointmap.train.batches import StepBatches
from pointmap.train.sampling import StepBatchSampler

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_cuda_augmentation_matches_cpu(tmp_path):
    root = write_plane_dataset(tmp_path / "planes", size=(40, 48))
    mix = build_mix([DatasetSpec(kind="generic", root=str(root), split="train")])
    pairs = [mix[i] for i in range(4)]
    views = ViewBatch.stack([p[0] for p in pairs] + [p[1] for p in pairs])
    config = AugmentConfig(noise_prob=0.5, blur_prob=0.5, jpeg_prob=0.5)
    on_cpu = augment_pairs(views, [11, 12, 13, 14], (32, 32), config)
    on_gpu = augment_pairs(views.to("cuda"), [11, 12, 13, 14], (32, 32), config)
    torch.testing.assert_close(on_gpu.intrinsics.cpu(), on_cpu.intrinsics)
    assert torch.equal(on_gpu.valid.cpu(), on_cpu.valid)
    # JPEG rounds to 8-bit levels: a level may flip where CPU and GPU sums differ in the last bit.
    assert (on_gpu.image.cpu() - on_cpu.image).abs().mean() < 1e-3


def test_prefetch_on_a_side_stream_gives_the_same_batches(tmp_path):
    root = write_plane_dataset(tmp_path / "planes", size=(40, 48))
    specs = (DatasetSpec(kind="generic", root=str(root), split="train", in_memory=5, weight=3.0),
             DatasetSpec(kind="generic", root=str(root), split="train"))
    mix = build_mix(specs)
    runs = []
    for prefetch in (0, 2):
        sampler = StepBatchSampler(mix, batch_size=8, seed=1, start_step=0, end_step=4)
        stream = StepBatches(mix, specs, sampler, ((24, 24),), AugmentConfig(), 1, torch.device("cuda"), prefetch)
        runs.append([{f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)} for batch in stream])
    # Exactly equal; overlap is NaN where a dataset does not know it (torch.equal never held there).
    for plain, fetched in zip(*runs, strict=True):
        for name, tensor in plain.items():
            assert tensor.is_cuda, name
            torch.testing.assert_close(tensor, fetched[name], atol=0, rtol=0, equal_nan=True, msg=name)
