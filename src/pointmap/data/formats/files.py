"""File codecs shared by the dataset formats: RGB images and 16-bit depth PNGs <-> tensors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pointmap.io_utils import atomic_path


def read_rgb(path: Path) -> Tensor:
    """(3, H, W) float32 in [-1, 1] from any image Pillow reads (converted to RGB)."""
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: Pillow cannot read it ({err}); the dataset needs JPEG or PNG images") from err
    return torch.from_numpy(rgb).permute(2, 0, 1) / 127.5 - 1


def write_rgb(path: Path, image: Tensor, quality: int = 95) -> None:
    """Write a (3, H, W) [-1, 1] image atomically; the format follows the suffix (.jpg or .png)."""
    rgb = ((image.detach().float().cpu().permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
    pil = Image.fromarray(rgb.numpy().astype(np.uint8))
    options = {"quality": quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    with atomic_path(path) as tmp:
        pil.save(tmp, **options)


def read_png16(path: Path) -> np.ndarray:
    """(H, W) uint16 array of a 16-bit single-channel PNG."""
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ValueError(f"{path}: OpenCV cannot read it; expected a 16-bit single-channel PNG")
    if data.dtype != np.uint16 or data.ndim != 2:
        raise ValueError(f"{path}: got {data.dtype} with shape {data.shape}; expected a 16-bit single-channel PNG")
    return data


def write_png16(path: Path, data: np.ndarray) -> None:
    """Write an (H, W) uint16 array as a 16-bit PNG, atomically."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(data.astype(np.uint16))):
            raise OSError(f"{path}: OpenCV could not write the PNG")


def read_mask(path: Path) -> np.ndarray:
    """(H, W) uint8 array of a grey-level mask image."""
    data = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if data is None:
        raise ValueError(f"{path}: OpenCV cannot read the mask; expected an 8-bit PNG")
    return data
