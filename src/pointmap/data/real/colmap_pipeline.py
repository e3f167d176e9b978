"""COLMAP structure from motion through pycolmap: features, matching, incremental mapping, undistortion.

The result is read into tensors in pointmap's conventions: OpenCV axes, cam2world poses, and pixel
centres at integer coordinates (COLMAP puts the centre of the top-left pixel at (0.5, 0.5), so its
principal points and keypoints are shifted by half a pixel here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse
import torch
from PIL import Image

from pointmap.data.real.config import SfmConfig
from pointmap.data.real.sfm_state import SfmScene

_CAMERA_MODES = {"auto": "AUTO", "single": "SINGLE", "per_image": "PER_IMAGE"}


def _set_focal_priors(database: Path, focal_px: dict[str, float]) -> None:
    """Give the database's cameras the focal lengths known from EXIF (median over a shared camera)."""
    import pycolmap

    db = pycolmap.Database.open(database)
    try:
        known: dict[int, list[float]] = {}
        for image in db.read_all_images():
            if focal_px.get(image.name) is not None:
                known.setdefault(image.camera_id, []).append(focal_px[image.name])
        for camera_id, focals in known.items():
            camera = db.read_camera(camera_id)
            params = camera.params
            for index in camera.focal_length_idxs():
                params[index] = float(np.median(focals))
            camera.params = params
            camera.has_prior_focal_length = True
            db.update_camera(camera)
    finally:
        db.close()


def run_sfm(
    image_dir: Path, work_dir: Path, config: SfmConfig, sequential: bool, focal_px: dict[str, float] | None = None
):
    """Extract SIFT, match and map the images of a folder; return COLMAP's largest model.

    Args:
        image_dir: folder of the images (every file in it is used).
        work_dir: folder for database.db and sparse/ (created).
        config: SfM options.
        sequential: the images are video frames in order (used when config.matching is "auto").
        focal_px: image name -> focal length prior in pixels (from the photos' EXIF).
    Returns:
        The pycolmap.Reconstruction with the most registered images, or None when COLMAP built none.
    """
    import pycolmap

    work_dir.mkdir(parents=True, exist_ok=True)
    database = work_dir / "database.db"
    database.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = config.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = config.num_threads
    extraction.sift.max_num_features = config.max_num_features
    extraction.sift.peak_threshold = config.peak_threshold
    pycolmap.extract_features(
        database,
        image_dir,
        camera_mode=getattr(pycolmap.CameraMode, _CAMERA_MODES[config.camera_mode]),
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )
    if focal_px:
        _set_focal_priors(database, focal_px)
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = config.num_threads
    use_sequential = config.matching == "sequential" or (config.matching == "auto" and sequential)
    if use_sequential:
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = config.sequential_overlap
        pycolmap.match_sequential(
            database, matching_options=matching, pairing_options=pairing, device=pycolmap.Device.cpu
        )
    else:
        pycolmap.match_exhaustive(database, matching_options=matching, device=pycolmap.Device.cpu)
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = config.seed
    options.num_threads = config.num_threads
    options.min_model_size = 3
    options.mapper.init_min_num_inliers = config.init_min_inliers
    options.mapper.abs_pose_min_num_inliers = config.abs_pose_min_inliers
    options.mapper.init_min_tri_angle = config.init_min_tri_angle
    sparse_dir = work_dir / "sparse"
    sparse_dir.mkdir(exist_ok=True)
    models = pycolmap.incremental_mapping(database, image_dir, sparse_dir, options=options)
    if not models:
        return None
    return max(models.values(), key=lambda model: model.num_reg_images())


def undistort(model, image_dir: Path, out_dir: Path):
    """Undistort a model's registered images into PINHOLE cameras (COLMAP's image undistorter).

    Returns:
        The undistorted pycolmap.Reconstruction; its images are in out_dir / "images".
    """
    import pycolmap

    model_dir = out_dir.parent / f"{out_dir.name}-model"
    model_dir.mkdir(parents=True, exist_ok=True)
    model.write(model_dir)
    pycolmap.undistort_images(out_dir, model_dir, image_dir)
    return pycolmap.Reconstruction(out_dir / "sparse")


def read_sfm_scene(undistorted, image_dir: Path, num_input: int, reprojection_px: float) -> SfmScene:
    """Tensors of an undistorted model: images, K, cam2world, sparse depths and covisibility.

    Args:
        undistorted: pycolmap.Reconstruction with PINHOLE cameras.
        image_dir: folder of its undistorted images.
        num_input: images given to COLMAP (registered or not).
        reprojection_px: mean reprojection error of the distorted model.
    """
    image_ids = sorted(undistorted.reg_image_ids(), key=lambda i: undistorted.images[i].name)
    index_of = {image_id: index for index, image_id in enumerate(image_ids)}
    point_ids = list(undistorted.point3D_ids())
    point_index = {point_id: index for index, point_id in enumerate(point_ids)}
    xyz = np.array([undistorted.points3D[p].xyz for p in point_ids], dtype=np.float64).reshape(-1, 3)
    seen_rows, seen_cols = [], []
    names, images, intrinsics, cam2world, sparse_xy, sparse_depth = [], [], [], [], [], []
    for image_id in image_ids:
        image = undistorted.images[image_id]
        camera = undistorted.cameras[image.camera_id]
        K = np.array(camera.calibration_matrix(), dtype=np.float64)
        K[:2, 2] -= 0.5  # COLMAP's pixel centres are at +0.5
        world2cam = np.eye(4)
        world2cam[:3] = image.cam_from_world().matrix()
        observed = [(p.xy, point_index[p.point3D_id]) for p in image.points2D if p.has_point3D()]
        xy = np.array([o[0] for o in observed], dtype=np.float64).reshape(-1, 2) - 0.5
        rows = np.array([o[1] for o in observed], dtype=np.int64)
        seen_rows.append(np.full(len(rows), index_of[image_id]))
        seen_cols.append(rows)
        depth = xyz[rows] @ world2cam[2, :3] + world2cam[2, 3]
        with Image.open(image_dir / image.name) as pil:
            images.append(np.asarray(pil.convert("RGB")))
        names.append(image.name)
        intrinsics.append(K)
        cam2world.append(np.linalg.inv(world2cam))
        sparse_xy.append(torch.from_numpy(xy.astype(np.float32)))
        sparse_depth.append(torch.from_numpy(depth.astype(np.float32)))
    # Image x point incidence (sparse: scenes have 1e5+ points); its Gram matrix counts shared points.
    rows, cols = np.concatenate(seen_rows), np.concatenate(seen_cols)
    seen = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(image_ids), len(point_ids)))
    covisibility = torch.from_numpy(np.rint((seen @ seen.T).toarray()).astype(np.int64))
    return SfmScene(
        names=names,
        images=images,
        intrinsics=torch.from_numpy(np.stack(intrinsics)),
        cam2world=torch.from_numpy(np.stack(cam2world)),
        sparse_xy=sparse_xy,
        sparse_depth=sparse_depth,
        covisibility=covisibility,
        num_input=num_input,
        reprojection_px=reprojection_px,
    )


@contextlib.contextmanager
def _colmap_logs(verbose: bool) -> Iterator[None]:
    """COLMAP's INFO log (thousands of lines per scene) only when verbose; warnings and errors always."""
    import pycolmap

    previous = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = previous if verbose else max(previous, 1)
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


def reconstruct_sparse(
    image_dir: Path, work_dir: Path, config: SfmConfig, sequential: bool, verbose: bool = True,
    focal_px: dict[str, float] | None = None,
) -> SfmScene | None:
    """SfM, undistortion and read-back of one folder of images; None when COLMAP builds no model."""
    num_input = sum(1 for p in image_dir.iterdir() if p.is_file())
    with _colmap_logs(verbose):
        model = run_sfm(image_dir, work_dir, config, sequential, focal_px)
        if model is None:
            return None
        reprojection_px = float(model.compute_mean_reprojection_error())
        undistorted = undistort(model, image_dir, work_dir / "dense")
    return read_sfm_scene(undistorted, work_dir / "dense" / "images", num_input, reprojection_px)
