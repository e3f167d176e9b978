"""The kept points of a Scene as flat numpy arrays (positions, colours, confidences, where they came from)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointmap.align.scene import Scene


@dataclass
class PointCloud:
    """M points gathered from the masks of all images.

    Attributes:
        xyz: (M, 3) float32 world points.
        rgb: (M, 3) uint8 colours (grey when the scene has no colours).
        confidence: (M,) float32, >= 1.
        image_index: (M,) int64, the image each point comes from.
        pixel: (M, 2) int64 (x, y) pixel of that point in the processed image.
    """

    xyz: np.ndarray
    rgb: np.ndarray
    confidence: np.ndarray
    image_index: np.ndarray
    pixel: np.ndarray

    def __len__(self) -> int:
        return len(self.xyz)

    def subset(self, keep: np.ndarray) -> PointCloud:
        """The points selected by a boolean mask or index array `keep`."""
        return PointCloud(
            self.xyz[keep], self.rgb[keep], self.confidence[keep], self.image_index[keep], self.pixel[keep]
        )


def _numpy(tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


def colors_uint8(colors: np.ndarray) -> np.ndarray:
    """(..., 3) float colours in [0, 1] -> uint8, rounded and clipped."""
    return np.clip(np.rint(colors * 255.0), 0, 255).astype(np.uint8)


def gather_points(scene: Scene) -> PointCloud:
    """Every point of `scene` whose mask is True, image after image in row-major pixel order."""
    parts = []
    for index in range(len(scene)):
        mask = scene.masks[index].detach().cpu().numpy().astype(bool)  # (H, W)
        ys, xs = np.nonzero(mask)
        points = _numpy(scene.points[index])[ys, xs]  # (M_i, 3)
        if scene.colors is not None:
            rgb = colors_uint8(_numpy(scene.colors[index])[ys, xs])
        else:
            rgb = np.full((len(ys), 3), 128, dtype=np.uint8)
        parts.append(
            PointCloud(
                xyz=points.astype(np.float32),
                rgb=rgb,
                confidence=_numpy(scene.confidences[index])[ys, xs].astype(np.float32),
                image_index=np.full(len(ys), index, dtype=np.int64),
                pixel=np.stack([xs, ys], axis=-1).astype(np.int64),
            )
        )
    return PointCloud(*(np.concatenate([getattr(p, f) for p in parts]) for f in PointCloud.__dataclass_fields__))
