"""Shared fixtures of the evaluation tests."""

import pytest
import torch

from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R


@pytest.fixture(scope="session")
def tiny_model():
    """A random DUSt3R small enough for CPU tests (the harness is under test, not the weights)."""
    torch.manual_seed(0)
    config = ModelConfig(image_size=224, enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=48,
                         dec_depth=2, dec_num_heads=4, head_type="linear")
    return DUSt3R(config).eval()
