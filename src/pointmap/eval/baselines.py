"""Classical baselines on the benchmarks' inputs: SIFT + RANSAC essential matrix (OpenCV) for pairs,
COLMAP (pycolmap: SIFT, exhaustive matching, incremental mapping) for multi-view sequences.

The pair baseline gets the ground-truth intrinsics (as on ScanNet-1500); COLMAP, like pointmap on
multi-view sets, is uncalibrated: one SIMPLE_PINHOLE camera per image, focal refined from COLMAP's default.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from pointmap.data.sample import ViewSample
from pointmap.eval.methods import sample_to_rgb8
from pointmap.eval.pairs import PairEstimate


@dataclass(frozen=True)
class SiftConfig:
    """Options of the SIFT + essential-matrix baseline (SuperGlue's and LoFTR's classical reference)."""

    max_features: int = 4000
    """Most SIFT keypoints per image."""
    ratio: float = 0.8
    """Lowe's ratio test on the two nearest descriptors."""
    threshold_px: float = 1.0
    """RANSAC inlier threshold in pixels (divided by the mean focal in normalised coordinates)."""
    confidence: float = 0.99999
    """RANSAC confidence."""
    min_matches: int = 5
    """Fewer ratio-test matches than this is a failure (five points fix an essential matrix)."""


def sift_matches(gray1: np.ndarray, gray2: np.ndarray, config: SiftConfig) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) float64 pixel (x, y) of ratio-test SIFT matches in two uint8 grey images."""
    sift = cv2.SIFT_create(nfeatures=config.max_features)
    keys1, desc1 = sift.detectAndCompute(gray1, None)
    keys2, desc2 = sift.detectAndCompute(gray2, None)
    if desc1 is None or desc2 is None or len(keys1) < 2 or len(keys2) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc1, desc2, k=2)
    good = [pair[0] for pair in knn if len(pair) == 2 and pair[0].distance < config.ratio * pair[1].distance]
    pts1 = np.array([keys1[m.queryIdx].pt for m in good], dtype=np.float64).reshape(-1, 2)
    pts2 = np.array([keys2[m.trainIdx].pt for m in good], dtype=np.float64).reshape(-1, 2)
    return pts1, pts2


def essential_pose(
    pts1: np.ndarray, pts2: np.ndarray, K1: np.ndarray, K2: np.ndarray, config: SiftConfig
) -> np.ndarray | None:
    """(4, 4) cam2_to_cam1 with a unit-length baseline from pixel matches and intrinsics, or None on failure.

    The matches are normalised by each camera's K, an essential matrix is fitted with RANSAC, and of its
    candidate solutions the one whose cheirality check keeps the most inliers wins.
    """
    if len(pts1) < config.min_matches:
        return None
    norm1 = cv2.undistortPoints(pts1.reshape(-1, 1, 2), K1, None).reshape(-1, 2)
    norm2 = cv2.undistortPoints(pts2.reshape(-1, 1, 2), K2, None).reshape(-1, 2)
    mean_focal = np.mean([K1[0, 0], K1[1, 1], K2[0, 0], K2[1, 1]])
    E, inliers = cv2.findEssentialMat(
        norm1, norm2, np.eye(3), method=cv2.RANSAC, prob=config.confidence, threshold=config.threshold_px / mean_focal
    )
    if E is None or inliers is None:
        return None
    best, best_count = None, 0
    for candidate in np.split(E, len(E) // 3):
        count, R, t, _ = cv2.recoverPose(candidate, norm1, norm2, np.eye(3), 1e9, mask=inliers.copy())
        if count > best_count:
            best, best_count = (R, t[:, 0]), count
    if best is None:
        return None
    # recoverPose gives x2 = R x1 + t (camera 1 to camera 2); invert for camera 2's pose in camera 1.
    T_1to2 = np.eye(4)
    T_1to2[:3, :3], T_1to2[:3, 3] = best
    return np.linalg.inv(T_1to2)


class SiftPairs:
    """SIFT + RANSAC essential matrix with the ground-truth intrinsics; no dense depth."""

    def __init__(self, config: SiftConfig | None = None):
        self.config = config or SiftConfig()

    def __call__(self, view1: ViewSample, view2: ViewSample) -> PairEstimate:
        start = time.perf_counter()
        gray1, gray2 = (cv2.cvtColor(sample_to_rgb8(v), cv2.COLOR_RGB2GRAY) for v in (view1, view2))
        pts1, pts2 = sift_matches(gray1, gray2, self.config)
        K1, K2 = (v.intrinsics.double().cpu().numpy() for v in (view1, view2))
        pose = essential_pose(pts1, pts2, K1, K2, self.config)
        return PairEstimate(cam2_to_cam1=pose, seconds=time.perf_counter() - start)


class ColmapPairs:
    """COLMAP on the two images of a pair, uncalibrated (each its own SIMPLE_PINHOLE camera); no dense depth.

    COLMAP's two-view reconstruction is its incremental mapper's initial pair: a failure to register both
    images fails the pair.
    """

    def __init__(self, seed: int = 0):
        self.seed = seed

    def __call__(self, view1: ViewSample, view2: ViewSample) -> PairEstimate:
        start = time.perf_counter()
        cam2world = colmap_poses([sample_to_rgb8(view1), sample_to_rgb8(view2)], seed=self.seed)
        pose = None if np.isnan(cam2world).any() else np.linalg.inv(cam2world[0]) @ cam2world[1]
        return PairEstimate(cam2_to_cam1=pose, seconds=time.perf_counter() - start)


def colmap_poses(images: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """COLMAP's cam2world poses of a sequence (SIFT, exhaustive matching, incremental mapping).

    Args:
        images: N (H, W, 3) uint8 RGB images; each gets its own SIMPLE_PINHOLE camera, focal estimated.
        seed: the random seed of COLMAP's two-view verification and of its mapper.
    Returns:
        (N, 4, 4) cam2world (OpenCV axes, COLMAP's world frame and scale) of the largest model; NaN
        rows for images COLMAP did not register (all NaN when it builds no model).
    """
    import pycolmap

    # COLMAP logs every step, and a failed model as an error; the benchmark counts failures itself.
    previous_level = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3  # FATAL only
    try:
        return _colmap_poses(pycolmap, images, seed)
    finally:
        pycolmap.logging.minloglevel = previous_level


def _colmap_poses(pycolmap, images: Sequence[np.ndarray], seed: int) -> np.ndarray:
    poses = np.full((len(images), 4, 4), np.nan)
    with tempfile.TemporaryDirectory(prefix="pointmap-colmap-") as work:
        root = Path(work)
        image_dir = root / "images"
        image_dir.mkdir()
        names = [f"{index:05d}.png" for index in range(len(images))]
        for name, image in zip(names, images, strict=True):
            PIL.Image.fromarray(image).save(image_dir / name)
        database = root / "database.db"
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = "SIMPLE_PINHOLE"
        # One thread in each stage: with more, the same images and seed give slightly different models run to
        # run, and now and then one fewer registered image.
        extraction, matching = pycolmap.FeatureExtractionOptions(), pycolmap.FeatureMatchingOptions()
        extraction.num_threads = matching.num_threads = 1
        pycolmap.extract_features(database, image_dir, camera_mode=pycolmap.CameraMode.PER_IMAGE,
                                  reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
        verification = pycolmap.TwoViewGeometryOptions()
        verification.ransac.random_seed = seed  # its default (-1) seeds every run differently
        pycolmap.match_exhaustive(database, matching_options=matching, verification_options=verification,
                                  device=pycolmap.Device.cpu)
        options = pycolmap.IncrementalPipelineOptions()
        options.random_seed = seed
        options.num_threads = 1
        # Every track of a two-image model is a two-view track, which COLMAP drops by default.
        options.triangulation.ignore_two_view_tracks = len(images) > 2
        reconstructions = pycolmap.incremental_mapping(database, image_dir, root / "sparse", options=options)
        if not reconstructions:
            return poses
        model = max(reconstructions.values(), key=lambda r: r.num_reg_images())
        index_of = {name: index for index, name in enumerate(names)}
        for image in model.images.values():
            if image.has_pose:
                world2cam = np.eye(4)
                world2cam[:3] = image.cam_from_world().matrix()
                poses[index_of[image.name]] = np.linalg.inv(world2cam)
    return poses

