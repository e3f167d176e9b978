"""Options of the real-scene builder: structure from motion, plane-sweep stereo, quality gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class SfmConfig:
    """COLMAP structure from motion through pycolmap (SIFT on CPU)."""

    camera_model: str = "SIMPLE_RADIAL"
    """COLMAP camera model of the photos; undistortion turns every camera into PINHOLE afterwards."""
    camera_mode: Literal["auto", "single", "per_image"] = "auto"
    """One camera for all photos ("single"), one each ("per_image", internet photo collections), or
    COLMAP's guess from image size and EXIF ("auto")."""
    matching: Literal["auto", "exhaustive", "sequential"] = "auto"
    """"auto": exhaustive for photo folders, sequential for video frames."""
    sequential_overlap: int = 10
    """Sequential matching: each frame is matched with this many following frames."""
    max_num_features: int = 8192
    """Most SIFT keypoints per image."""
    peak_threshold: float = 0.004
    """SIFT detection threshold; COLMAP's default 1/150 finds too few keypoints on small images."""
    init_min_inliers: int = 100
    """Inlier matches the initial pair needs (COLMAP's default; lower it for tiny images)."""
    abs_pose_min_inliers: int = 30
    """2D-3D inliers an image needs to be registered (COLMAP's default)."""
    init_min_tri_angle: float = 8.0
    """Median triangulation angle (degrees) the initial pair needs. COLMAP's 16 finds no initial pair in
    walks along a street (forward motion, small angles); 8 does, and bundle adjustment does the rest."""
    seed: int = 0
    """COLMAP's random seed (RANSAC, initial pair trials)."""
    num_threads: int = -1
    """CPU threads for COLMAP; -1 uses all."""


@dataclass(frozen=True)
class StereoConfig:
    """Plane-sweep multi-view stereo with ZNCC and a geometric-consistency filter."""

    num_neighbours: int = 4
    """Source views per reference view, the best by shared SfM points (weighted by baseline angle)."""
    min_angle_deg: float = 3.0
    """Neighbours whose baseline subtends less than this at the scene are down-weighted (video frames)."""
    num_depths: int = 192
    """Fronto-parallel planes, uniform in inverse depth between the sparse depth range's ends. Finer
    planes mean sub-pixel depths that pass the 1 px consistency test: on 768-pixel street photos 64
    planes kept 8-14 % of the pixels, 192 kept 21-30 %, 256 hardly more."""
    depth_margin: float = 0.25
    """The sparse depth range (2nd to 98th percentile) is widened by this share at both ends."""
    window: int = 7
    """ZNCC window side in pixels (odd)."""
    best_of: int = 2
    """Per plane, the mean ZNCC of the best `best_of` neighbours: robust to occlusion in the others."""
    min_zncc: float = 0.5
    """Pixels whose best aggregated ZNCC is lower keep no depth."""
    min_texture: float = 0.01
    """Pixels whose window's grey-level standard deviation (in [0, 1] units) is lower keep no depth."""
    min_consistent: int = 2
    """A depth is kept when it reprojects consistently into at least this many neighbours (MegaDepth)."""
    reprojection_px: float = 1.0
    """Forward-backward reprojection tolerance of the consistency check, in pixels."""
    depth_tolerance: float = 0.01
    """Relative depth tolerance of the consistency check (and of the pair overlap)."""
    sparse_fallback: bool = True
    """Fill pixels without dense depth with the SfM points observed there (triangulated, filtered)."""
    depth_batch: int = 8
    """Planes evaluated together (memory: depth_batch x neighbours x H x W floats)."""

    def __post_init__(self):
        if self.window < 3 or self.window % 2 == 0:
            raise ValueError(f"StereoConfig.window={self.window}: pass an odd size >= 3")
        if self.num_depths < 3:
            raise ValueError(f"StereoConfig.num_depths={self.num_depths}: pass at least 3 planes")
        for name in ("num_neighbours", "best_of", "min_consistent", "depth_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"StereoConfig.{name}={getattr(self, name)}: pass at least 1")


@dataclass(frozen=True)
class QualityConfig:
    """Gates that accept or reject a reconstructed scene."""

    min_registered: int = 3
    """Fewest registered images."""
    min_registered_share: float = 0.5
    """Fewest registered images as a share of the input images."""
    max_reprojection_px: float = 2.0
    """Largest mean reprojection error of the SfM model."""
    min_valid_share: float = 0.1
    """Smallest mean share of pixels with a kept depth."""
    min_pairs: int = 1
    """Fewest pairs with overlap >= min_pair_overlap."""
    min_pair_overlap: float = 0.05
    """Pairs with a smaller overlap are not listed."""


@dataclass(frozen=True)
class BuildConfig:
    """Everything `build_real` needs besides its inputs and output folder."""

    max_image_size: int = 1024
    """Photos are downscaled so that their longer side is at most this (pixels) before SfM."""
    video_every: int = 10
    """Keep every k-th frame of a video."""
    val_share: float = 0.1
    """Share of the scenes held out in splits.json's "val" split, chosen by a hash of the scene name (a
    scene stays in its split when more scenes are added)."""
    image_format: Literal["jpg", "png"] = "jpg"
    """Image format of the written scenes."""
    sfm_image_format: Literal["png", "jpg"] = "png"
    """Format of the undistorted images the SfM stage stores for the dense stage: PNG keeps `--stage sfm`
    then `--stage dense` identical to `--stage all`; JPEG is ~4x smaller, for shipping to a GPU machine."""
    jpeg_quality: int = 90
    """JPEG quality of the stored undistorted images (sfm_image_format "jpg")."""
    device: str | None = None
    """Device of the stereo; None: CUDA when present, else CPU."""
    keep_work: bool = False
    """Keep the COLMAP work folder (database, sparse and undistorted models) of each scene."""
    retry_failed: bool = False
    """Rebuild scenes an earlier run rejected or failed on (they are skipped and reported otherwise)."""
    verbose: bool = True
    """Progress bars and per-scene reports."""
    sfm: SfmConfig = field(default_factory=SfmConfig)
    stereo: StereoConfig = field(default_factory=StereoConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
