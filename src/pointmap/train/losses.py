"""The DUSt3R training objective: scale-normalised pointmap regression weighted by confidence.

Paper, Sec. 3.2: both pointmaps of a pair are divided by the mean distance of their valid points to
the origin (of view 1's frame), the prediction by its own mean and the ground truth by its own; the
per-pixel loss is the Euclidean distance between them, and the confidence-aware loss is
`C * l_regr - alpha * log C`, averaged over the valid pixels of each view and summed over the views.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LossConfig:
    alpha: float = 0.2
    """Weight of the `-log C` term that keeps confidences from collapsing to 1."""
    use_confidence: bool = True
    """False trains on the plain regression loss (confidences are then ignored)."""


def mean_distance(pts1: Tensor, pts2: Tensor, valid1: Tensor, valid2: Tensor) -> Tensor:
    """Mean distance to the origin of the valid points of both views, per pair.

    Args:
        pts1, pts2: (B, H, W, 3) pointmaps in view 1's frame (the two may differ in H, W).
        valid1, valid2: (B, H, W) bool masks of the pixels to count.
    Returns:
        (B,) the mean norm, clamped to at least 1e-8 so that dividing by it is safe.
    """
    norm_sum = (pts1.norm(dim=-1) * valid1).flatten(1).sum(1) + (pts2.norm(dim=-1) * valid2).flatten(1).sum(1)
    count = valid1.flatten(1).sum(1) + valid2.flatten(1).sum(1)
    return (norm_sum / count.clamp_min(1)).clamp_min(1e-8)


def regression_errors(
    pred1: Tensor, pred2: Tensor, gt1: Tensor, gt2: Tensor, valid1: Tensor, valid2: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-pixel Euclidean distance between the scale-normalised predicted and true pointmaps.

    Both are normalised with the ground truth's valid pixels: the prediction of an invalid pixel is
    unconstrained and must not move the scale.

    Args:
        pred1, gt1: (B, H, W, 3) view 1 in view 1's frame.
        pred2, gt2: (B, H2, W2, 3) view 2 in view 1's frame.
        valid1, valid2: (B, H, W), (B, H2, W2) bool ground-truth masks.
    Returns:
        (err1 (B, H, W), err2 (B, H2, W2)), defined everywhere; only valid pixels are meaningful.
    """
    pred_scale = mean_distance(pred1, pred2, valid1, valid2)[:, None, None, None]
    gt_scale = mean_distance(gt1, gt2, valid1, valid2)[:, None, None, None]
    err1 = (pred1 / pred_scale - gt1 / gt_scale).norm(dim=-1)
    err2 = (pred2 / pred_scale - gt2 / gt_scale).norm(dim=-1)
    return err1, err2


def _full_precision(tensor: Tensor) -> Tensor:
    """bf16 / fp16 (autocast outputs) up to float32; float32 and float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _masked_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Mean of `values` over `valid` pixels of the whole batch; 0 (with a gradient path) if none."""
    return (values * valid).sum() / valid.sum().clamp_min(1)


def pair_loss(
    pred1: Tensor,
    conf1: Tensor,
    pred2: Tensor,
    conf2: Tensor,
    gt1: Tensor,
    gt2: Tensor,
    valid1: Tensor,
    valid2: Tensor,
    config: LossConfig = LossConfig(),
) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of a batch of pairs.

    Args:
        pred1, gt1: (B, H, W, 3) view 1's pointmap in view 1's frame.
        pred2, gt2: (B, H2, W2, 3) view 2's pointmap in view 1's frame.
        conf1, conf2: (B, H, W), (B, H2, W2) predicted confidences (>= 1, the paper's `1 + exp(x)`).
        valid1, valid2: bool ground-truth masks.
    Returns:
        (loss, details): the scalar to minimise, and detached scalars `regr` (the regression error
        averaged over each view's valid pixels, summed over the two views) and `conf_loss` for logging.
    """
    valid1, valid2 = valid1.bool(), valid2.bool()
    pred1, pred2, gt1, gt2 = (_full_precision(t) for t in (pred1, pred2, gt1, gt2))
    err1, err2 = regression_errors(pred1, pred2, gt1, gt2, valid1, valid2)
    regr = _masked_mean(err1, valid1) + _masked_mean(err2, valid2)
    details = {"regr": regr.detach()}
    if not config.use_confidence:
        return regr, details
    conf1, conf2 = _full_precision(conf1), _full_precision(conf2)
    conf_term1 = conf1 * err1 - config.alpha * conf1.log()
    conf_term2 = conf2 * err2 - config.alpha * conf2.log()
    loss = _masked_mean(conf_term1, valid1) + _masked_mean(conf_term2, valid2)
    details["conf_loss"] = loss.detach()
    return loss, details
