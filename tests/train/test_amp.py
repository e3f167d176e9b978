"""bf16 autocast of the training forward pass against the float32 reference."""

from __future__ import annotations

import dataclasses

import torch
from train_testing import TINY_MODEL, plane_view

from pointmap.data.pairs import stack_pairs
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R
from pointmap.train.config import OptimSection, TrainConfig
from pointmap.train.trainer import batch_loss


def test_bf16_loss_and_gradients_track_float32():
    torch.manual_seed(0)
    model = DUSt3R(ModelConfig.from_dict(TINY_MODEL))
    view1 = plane_view((0.0, 0.0, 0.0), (0.3, 0.0, 0.95), 2.0)
    view2 = plane_view((0.4, 0.1, 0.0), (0.3, 0.0, 0.95), 2.0)
    batch = stack_pairs([(view1, view2, 0.8), (view2, view1, 0.8)])
    reference = TrainConfig()
    bf16 = dataclasses.replace(reference, optim=OptimSection(amp="bf16"))
    losses, grads = [], []
    for config in (reference, bf16):
        model.zero_grad()
        loss, _ = batch_loss(model, batch, config)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert abs(losses[1] - losses[0]) < 0.02 * abs(losses[0])
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.98, cosine
