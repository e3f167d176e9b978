"""Weight interpolation: the ends give the two networks, the middle their mean, in the networks' own dtype."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from model_testing import TINY, random_model

from pointmap.train.interpolate import interpolate_models


def test_ends_and_middle_of_the_line():
    start, end = random_model(TINY, seed=0), random_model(TINY, seed=1)
    first, last = start.state_dict(), end.state_dict()
    at_start = interpolate_models(start, end, 0.0).state_dict()
    at_end = interpolate_models(start, end, 1.0).state_dict()
    middle = interpolate_models(start, end, 0.5)
    assert not middle.training
    middle_state = middle.state_dict()
    assert middle_state.keys() == first.keys()
    for name, tensor in first.items():
        assert torch.equal(at_start[name], tensor), name
        assert torch.equal(at_end[name], last[name]), name
        torch.testing.assert_close(middle_state[name], (tensor + last[name]) / 2, rtol=0, atol=1e-6)


def test_half_networks_stay_half_and_match_the_exact_mix():
    start, end = random_model(TINY, seed=0).half(), random_model(TINY, seed=1).half()
    mixed = interpolate_models(start, end, 0.7).state_dict()
    last = end.state_dict()
    for name, tensor in start.state_dict().items():
        expected = (0.3 * tensor.float() + 0.7 * last[name].float()).half()  # rounded once, to half
        assert mixed[name].dtype == torch.float16, name
        torch.testing.assert_close(mixed[name], expected, rtol=1e-3, atol=1e-6)


def test_refuses_other_configs_and_weights_off_the_line():
    start = random_model(TINY, seed=0)
    other = random_model(dataclasses.replace(TINY, dec_depth=2), seed=0)
    with pytest.raises(ValueError, match="configuration"):
        interpolate_models(start, other, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_models(start, random_model(TINY, seed=1), 1.5)
