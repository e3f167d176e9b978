"""Warm-up + cosine learning rate at its landmarks."""

import pytest

from pointmap.train.schedule import learning_rate


def test_learning_rate_landmarks():
    args = dict(total_steps=111, peak=1e-3, floor=1e-5, warmup_steps=10)
    assert learning_rate(0, **args) == pytest.approx(1e-4)  # (0 + 1) / 10 of the peak
    assert learning_rate(9, **args) == pytest.approx(1e-3)
    assert learning_rate(10, **args) == pytest.approx(1e-3)  # cosine starts at the peak
    assert learning_rate(60, **args) == pytest.approx((1e-3 + 1e-5) / 2)  # half way through 100 decay steps
    assert learning_rate(110, **args) == pytest.approx(1e-5)  # last step at the floor
    assert learning_rate(500, **args) == pytest.approx(1e-5)
