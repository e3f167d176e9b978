"""The network reproduces the official implementation's outputs (golden data, CPU float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R
from pointmap.model.weights import build_model, load_model

# (our PairOutput field, golden array)
_OUTPUTS = (("pts1", "pts3d_1"), ("conf1", "conf_1"), ("pts2", "pts3d_2_in_1"), ("conf2", "conf_2"))


def _assert_reproduces(model: DUSt3R, case: Path) -> None:
    data = np.load(case)
    with torch.no_grad():
        out = model.predict_pair(torch.from_numpy(data["img1"]), torch.from_numpy(data["img2"]))
    for ours, theirs in _OUTPUTS:
        expected = torch.from_numpy(data[theirs])
        got = getattr(out, ours)
        assert got.dtype == torch.float32
        assert got.shape == expected.shape, f"{case.name} {ours}"
        error = (got - expected).abs().max().item()
        scale = expected.abs().max().item()
        assert error <= 1e-4 * scale, f"{case.parent.name}/{case.name} {ours}: max error {error:.3g}, scale {scale:.3g}"


@pytest.mark.parametrize("source", ["checkpoint.pth", "hf", "weights.json"])
def test_linear224_reproduces_official_outputs(golden, golden_rules, source):
    if source == "weights.json":
        model_string, state_dict = golden_rules("linear224")
        model = build_model(ModelConfig.from_official_string(model_string), state_dict)
    else:
        model = load_model(golden / "linear224" / source)
    assert model.config.head_type == "linear" and model.image_size == 224
    _assert_reproduces(model, golden / "linear224" / "case0.npz")


@pytest.fixture(scope="module")
def dpt512(golden_rules) -> DUSt3R:
    model_string, state_dict = golden_rules("dpt512")
    return build_model(ModelConfig.from_official_string(model_string), state_dict)


@pytest.mark.parametrize("case", ["case0.npz", "case1.npz"])
def test_dpt512_reproduces_official_outputs(golden, dpt512, case):
    # case1 pairs a landscape 384x512 view with a portrait 512x384 one
    assert dpt512.config.head_type == "dpt" and dpt512.image_size == 512
    _assert_reproduces(dpt512, golden / "dpt512" / case)


def test_weights_json_rebuilds_the_checkpoint_bit_for_bit(golden, golden_rules):
    _, from_rules = golden_rules("linear224")
    from_pth = load_model(golden / "linear224" / "checkpoint.pth").state_dict()
    assert from_rules.keys() == from_pth.keys()
    assert all(torch.equal(from_rules[name], from_pth[name]) for name in from_pth)
