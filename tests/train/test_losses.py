"""The training loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from pointmap.train.losses import LossConfig, mean_distance, pair_loss, regression_errors


def _maps(*points):
    """(1, 1, N, 3) pointmap from N xyz triples."""
    return torch.tensor(points, dtype=torch.float64).reshape(1, 1, -1, 3)


def _case():
    # Pixel 1 of each view is invalid and holds wild values that must not matter.
    gt1, gt2 = _maps((0, 0, 2), (50, 50, 50)), _maps((0, 0, 4), (-9, 9, 9))
    pred1, pred2 = _maps((0, 0, 1), (7, 7, 7)), _maps((3, 4, 0), (1e3, 0, 0))
    valid = torch.tensor([[[True, False]]])
    return pred1, pred2, gt1, gt2, valid


def test_mean_distance_counts_only_valid_pixels_of_both_views():
    pts1, pts2 = _maps((3, 4, 0), (100, 0, 0)), _maps((0, 0, 1), (0, 100, 0))
    valid = torch.tensor([[[True, False]]])
    assert mean_distance(pts1, pts2, valid, valid).item() == pytest.approx(3.0)  # (5 + 1) / 2


def test_regression_errors_hand_values():
    pred1, pred2, gt1, gt2, valid = _case()
    err1, err2 = regression_errors(pred1, pred2, gt1, gt2, valid, valid)
    # gt scale (2 + 4) / 2 = 3 -> (0,0,2/3), (0,0,4/3); pred scale (1 + 5) / 2 = 3 -> (0,0,1/3), (1,4/3,0)
    assert err1[0, 0, 0].item() == pytest.approx(1 / 3)
    assert err2[0, 0, 0].item() == pytest.approx(math.sqrt(41) / 3)


def test_pair_loss_hand_values_and_invariance_to_prediction_scale():
    pred1, pred2, gt1, gt2, valid = _case()
    conf1 = torch.full((1, 1, 2), 2.0, dtype=torch.float64)
    conf2 = torch.full((1, 1, 2), 3.0, dtype=torch.float64)
    loss, details = pair_loss(pred1, conf1, pred2, conf2, gt1, gt2, valid, valid, LossConfig(alpha=0.2))
    expected = 2 * (1 / 3) - 0.2 * math.log(2) + 3 * math.sqrt(41) / 3 - 0.2 * math.log(3)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert details["regr"].item() == pytest.approx(1 / 3 + math.sqrt(41) / 3, rel=1e-6)
    scaled, _ = pair_loss(7 * pred1, conf1, 7 * pred2, conf2, 0.1 * gt1, 0.1 * gt2, valid, valid)
    assert scaled.item() == pytest.approx(expected, rel=1e-6)
    plain, _ = pair_loss(pred1, conf1, pred2, conf2, gt1, gt2, valid, valid, LossConfig(use_confidence=False))
    assert plain.item() == pytest.approx(details["regr"].item())


def test_confidence_gradient_vanishes_at_alpha_over_error():
    # d/dC (C l - alpha log C) = l - alpha / C = 0 at C = alpha / l.
    pred1, pred2, gt1, gt2, valid = _case()
    err1 = 1 / 3
    conf1 = torch.full((1, 1, 2), 0.2 / err1 + 0.0, dtype=torch.float64, requires_grad=True)  # 0.6 (< 1 on purpose)
    conf2 = torch.full((1, 1, 2), 2.0, dtype=torch.float64, requires_grad=True)
    loss, _ = pair_loss(pred1, conf1, pred2, conf2, gt1, gt2, valid, valid)
    loss.backward()
    assert conf1.grad[0, 0, 0].item() == pytest.approx(0.0, abs=1e-12)
    assert conf1.grad[0, 0, 1].item() == 0.0  # invalid pixel
    assert conf2.grad[0, 0, 0].item() == pytest.approx(math.sqrt(41) / 3 - 0.2 / 2)


def test_no_valid_pixel_gives_zero_loss_not_nan():
    pred1, pred2, gt1, gt2, _ = _case()
    none = torch.zeros(1, 1, 2, dtype=torch.bool)
    conf = torch.ones(1, 1, 2, dtype=torch.float64)
    loss, details = pair_loss(pred1, conf, pred2, conf, gt1, gt2, none, none)
    assert loss.item() == 0.0 and details["regr"].item() == 0.0
