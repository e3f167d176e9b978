"""Weight interpolation: the ends give the two networks, the middle their mean, outputs follow the weights."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from model_testing import TINY, random_images, random_model

from pointmap.train.interpolate import interpolate_models


def _state(model):
    return model.state_dict()


def test_ends_and_middle_of_the_line():
    start, end = random_model(TINY, seed=0), random_model(TINY, seed=1)
    at_start, at_end = interpolate_models(start, end, 0.0), interpolate_models(start, end, 1.0)
    middle = interpolate_models(start, end, 0.5)
    for name, tensor in _state(start).items():
        assert torch.equal(_state(at_start)[name], tensor), name
        assert torch.equal(_state(at_end)[name], _state(end)[name]), name
        expected = (tensor + _state(end)[name]) / 2
        torch.testing.assert_close(_state(middle)[name], expected, rtol=0, atol=1e-6)
    assert not middle.training


def test_same_networks_give_the_same_outputs():
    model = random_model(TINY, seed=3)
    images = random_images(1, 224, 224)
    mixed = interpolate_models(model, random_model(TINY, seed=3), 0.3)
    with torch.no_grad():
        expected, got = model.eval()(images, images), mixed(images, images)
    torch.testing.assert_close(got.pts2, expected.pts2, rtol=1e-5, atol=1e-5)


def test_refuses_other_configs_and_weights_off_the_line():
    start = random_model(TINY, seed=0)
    other = random_model(dataclasses.replace(TINY, dec_depth=2), seed=0)
    with pytest.raises(ValueError, match="configuration"):
        interpolate_models(start, other, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_models(start, random_model(TINY, seed=1), 1.5)
