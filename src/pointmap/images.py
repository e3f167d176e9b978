"""Load photos and video frames as network-ready views (the official 224 / 512 resize-and-crop rules)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class View:
    """One preprocessed image.

    Attributes:
        img: (3, H, W) float32 in [-1, 1], H and W multiples of 16.
        true_shape: (H, W) of `img`.
        path: the file (or "video.mp4#frame=12") it came from.
        to_original: (3, 3) float64 matrix mapping processed pixels (x, y, 1) to original-photo pixels.
        original_shape: (H, W) of the original photo, after EXIF orientation.
    """

    img: torch.Tensor
    true_shape: tuple[int, int]
    path: str
    to_original: np.ndarray
    original_shape: tuple[int, int]
