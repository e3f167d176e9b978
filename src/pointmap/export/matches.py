"""Two-view matches drawn side by side into one RGB image."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from pointmap.images import View


def _rgb(view: View) -> np.ndarray:
    """(H, W, 3) uint8 of a view's processed image."""
    img = view.img.detach().float().cpu().permute(1, 2, 0).numpy()  # (H, W, 3) in [-1, 1]
    return np.clip(np.rint((img + 1) * 127.5), 0, 255).astype(np.uint8)


def draw_matches(view1: View, view2: View, analysis, max_lines: int = 150) -> np.ndarray:
    """Both processed images side by side with lines between matched pixels.

    Args:
        view1, view2: the pair.
        analysis: a PairAnalysis: matches1, matches2 (M, 2) pixel (x, y) in each processed image.
        max_lines: draw at most this many matches, evenly spread over the list.
    Returns:
        (max(H1, H2), W1 + W2, 3) uint8 RGB.
    """
    left, right = _rgb(view1), _rgb(view2)
    canvas = np.zeros((max(left.shape[0], right.shape[0]), left.shape[1] + right.shape[1], 3), dtype=np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    matches1 = torch.as_tensor(analysis.matches1).detach().cpu().double().numpy()  # (M, 2)
    matches2 = torch.as_tensor(analysis.matches2).detach().cpu().double().numpy()  # (M, 2)
    if len(matches1) == 0:
        return canvas
    chosen = np.unique(np.linspace(0, len(matches1) - 1, min(len(matches1), max_lines)).round().astype(int))
    hsv = np.full((1, len(chosen), 3), 255, dtype=np.uint8)
    hsv[0, :, 0] = np.linspace(0, 179, len(chosen), endpoint=False)  # one hue per drawn match
    colors = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    for color, index in zip(colors.tolist(), chosen, strict=True):
        start = (int(round(matches1[index, 0])), int(round(matches1[index, 1])))
        end = (int(round(matches2[index, 0])) + left.shape[1], int(round(matches2[index, 1])))
        cv2.line(canvas, start, end, color, 1, cv2.LINE_AA)
        cv2.circle(canvas, start, 2, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, end, 2, color, -1, cv2.LINE_AA)
    return canvas
