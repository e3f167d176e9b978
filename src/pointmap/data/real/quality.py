"""Quality control of a reconstructed scene: the figures, the verdict and the reason."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from pointmap.data.real.config import QualityConfig


@dataclass(frozen=True)
class SceneQuality:
    """Figures of one scene, as printed and stored in the scene's quality.json."""

    scene: str
    num_input: int
    """Images given to COLMAP."""
    num_registered: int
    """Images in the largest SfM model."""
    reprojection_px: float
    """Mean reprojection error of the SfM model (pixels)."""
    dense_share: float
    """Mean share of pixels per image with a multi-view consistent dense depth."""
    valid_share: float
    """Mean share of pixels per image with any kept depth (dense, or sparse fallback)."""
    num_pairs: int
    """Listed pairs (overlap >= the configured minimum)."""
    mean_overlap: float
    """Mean overlap of the listed pairs (NaN when there is none)."""
    seconds: float
    """Wall time of the whole scene."""
    sfm_seconds: float = math.nan
    """Of which COLMAP: features, matching, mapping, undistortion."""
    stereo_seconds: float = math.nan
    """Of which plane sweep, consistency filter and sparse fallback."""
    pairs_seconds: float = math.nan
    """Of which the pair overlaps."""

    def to_dict(self) -> dict:
        return asdict(self)


def judge_sfm(num_input: int, num_registered: int, reprojection_px: float, config: QualityConfig) -> str | None:
    """The reason an SfM model is rejected before any stereo, or None when it passes the SfM gates."""
    share = num_registered / max(num_input, 1)
    if num_registered < config.min_registered:
        return f"{num_registered} registered images < {config.min_registered}"
    if share < config.min_registered_share:
        return f"registered {num_registered}/{num_input} < {config.min_registered_share:.0%}"
    if reprojection_px > config.max_reprojection_px:
        return f"mean reprojection error {reprojection_px:.2f} px > {config.max_reprojection_px} px"
    return None


def judge(quality: SceneQuality, config: QualityConfig) -> str | None:
    """The reason the scene is rejected, or None when it passes every gate of `config`."""
    reason = judge_sfm(quality.num_input, quality.num_registered, quality.reprojection_px, config)
    if reason is not None:
        return reason
    if quality.valid_share < config.min_valid_share:
        return f"valid depth on {quality.valid_share:.1%} of pixels < {config.min_valid_share:.0%}"
    if quality.num_pairs < config.min_pairs:
        return f"{quality.num_pairs} pairs with overlap >= {config.min_pair_overlap} < {config.min_pairs}"
    return None


def report_line(quality: SceneQuality, reason: str | None) -> str:
    """One line for the console: figures, then 'accepted' or 'rejected: reason'."""
    verdict = "accepted" if reason is None else f"rejected: {reason}"
    return (
        f"{quality.scene}: registered {quality.num_registered}/{quality.num_input}, "
        f"reprojection {quality.reprojection_px:.2f} px, valid depth {quality.valid_share:.1%} "
        f"(dense {quality.dense_share:.1%}), {quality.num_pairs} pairs (mean overlap {quality.mean_overlap:.2f}), "
        f"{quality.seconds:.0f} s (SfM {quality.sfm_seconds:.0f} s, stereo {quality.stereo_seconds:.0f} s): {verdict}"
    )
