"""The learning-rate schedule: linear warm-up, then a cosine decay to a floor."""

from __future__ import annotations

import math


def learning_rate(step: int, total_steps: int, peak: float, floor: float, warmup_steps: int) -> float:
    """Learning rate of the optimizer step `step` (0-based) of `total_steps`.

    Warm-up: `peak * (step + 1) / warmup_steps` for the first `warmup_steps` steps (never 0, so the
    first step already moves the weights); then `floor + (peak - floor) * (1 + cos(pi * t)) / 2`
    with t going from 0 to 1 over the remaining steps.
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps - 1)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
