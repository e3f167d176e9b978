"""A 640 x 480 photo at size 224 (resized to 299 x 224, x and y scaled differently, then cropped): its
intrinsics survive photo -> processed -> alignment -> every export -> read back."""

import json

import numpy as np
import pycolmap
import pytest
import torch
from PIL import Image

from pointmap.align import global_align
from pointmap.align.simulate import PredictionNoise, circle_cameras, simulate_predictions, smooth_depths
from pointmap.export import save_scene
from pointmap.export.cameras import export_cameras, read_cameras_json
from pointmap.export.gltf import frustum_vertices
from pointmap.geometry.turns import photo_roll, unturn_camera
from pointmap.images import load_images, turn_view
from pointmap.pipeline import intrinsics_to_processed

FOCAL = 502.30
# Integer pixel centres: the photo's centre is ((640 - 1) / 2, (480 - 1) / 2); COLMAP and nerfstudio count
# pixel centres from 0.5, where the same point is (320, 240).
PHOTO_K = np.array([[FOCAL, 0, 319.5], [0, FOCAL, 239.5], [0, 0, 1]])
COLMAP_PARAMS = [FOCAL, FOCAL, 320.0, 240.0]
NUM = 3


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for k in range(NUM):
        Image.new("RGB", (640, 480), (60 * k, 90, 120)).save(folder / f"photo_{k}.png")
    return load_images(sorted(folder.iterdir()), size=224, verbose=False)


def simulated(views):
    """Noise-free predictions of cameras whose processed K is the photo's K through each view's resize."""
    gen = torch.Generator().manual_seed(0)
    K = intrinsics_to_processed(views, PHOTO_K)  # (N, 3, 3)
    poses = circle_cameras(NUM, generator=gen)
    depths = smooth_depths(NUM, 224, 224, generator=gen)
    edges = [(i, j) for i in range(NUM) for j in range(NUM) if i != j]
    return simulate_predictions(poses, K, depths, edges, PredictionNoise(scale_spread=0.3), gen), K


def read_back(out):
    """(N, 4) fx, fy, cx, cy from COLMAP's cameras.bin and from transforms.json, and (N, 3, 3) cameras.json K."""
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    cameras = [model.cameras[model.images[k + 1].camera_id] for k in range(NUM)]
    assert all((c.width, c.height) == (640, 480) for c in cameras)
    colmap = np.array([c.params for c in cameras])
    frames = json.loads((out / "transforms.json").read_text())["frames"]
    nerfstudio = np.array([[f["fl_x"], f["fl_y"], f["cx"], f["cy"]] for f in frames])
    cameras_json = np.stack([entry["original"]["K"] for entry in read_cameras_json(out / "cameras.json")])
    return colmap, nerfstudio, cameras_json


def test_the_processed_pixels_are_not_square(views):
    # The bug this guards: one focal per camera in processed pixels gave fx / fy = 502.02 / 502.58.
    assert views[0].true_shape == (224, 224)
    K = intrinsics_to_processed(views, PHOTO_K)[0].double()
    assert (K[0, 0].item(), K[1, 1].item()) == pytest.approx((234.668281, 234.406667), abs=1e-5)
    assert (K[0, 2].item(), K[1, 2].item()) == pytest.approx((112.0, 111.5), abs=1e-5)


def test_known_intrinsics_come_back_exactly_in_every_export(views, tmp_path):
    preds, K = simulated(views)
    scene = global_align(preds, known_intrinsics=K, views=views, iterations=5, subsample=8, verbose=False)
    np.testing.assert_allclose(scene.original_intrinsics().numpy(), np.tile(PHOTO_K, (NUM, 1, 1)), atol=1e-4)
    out = save_scene(scene, tmp_path / "out", formats=("colmap", "nerfstudio"), max_colmap_points=500)
    colmap, nerfstudio, cameras_json = read_back(out)
    np.testing.assert_allclose(colmap, np.tile(COLMAP_PARAMS, (NUM, 1)), atol=1e-4)
    np.testing.assert_allclose(nerfstudio, np.tile(COLMAP_PARAMS, (NUM, 1)), atol=1e-4)
    np.testing.assert_allclose(cameras_json, np.tile(PHOTO_K, (NUM, 1, 1)), atol=1e-4)
    # The glTF frustum spans the processed image's edges: vertically, the photo's rows -0.5 .. 479.5,
    # i.e. y / z = -+240 / 502.3 in the camera frame.
    camera = export_cameras(scene)[0]
    corners = (frustum_vertices(camera, 1.0)[1:] - camera.cam2world[:3, 3]) @ camera.cam2world[:3, :3]
    np.testing.assert_allclose(corners[:, 1] / corners[:, 2], [-240 / FOCAL] * 2 + [240 / FOCAL] * 2, atol=1e-6)


def test_estimated_intrinsics_are_square_and_centred_in_the_photo(views, tmp_path):
    preds, _ = simulated(views)
    scene = global_align(preds, views=views, iterations=40, subsample=8, verbose=False)
    out = save_scene(scene, tmp_path / "out", formats=("colmap", "nerfstudio"), max_colmap_points=500)
    colmap, nerfstudio, cameras_json = read_back(out)
    for params in (colmap, nerfstudio):
        np.testing.assert_allclose(params[:, 0], params[:, 1], rtol=1e-6)  # fx = fy in photo pixels
        np.testing.assert_allclose(params[:, 0], FOCAL, rtol=1e-3)  # the focal itself is estimated
        np.testing.assert_allclose(params[:, 2:], np.tile([320.0, 240.0], (NUM, 1)), atol=1e-4)
    np.testing.assert_allclose(cameras_json[:, :2, 2], np.tile([319.5, 239.5], (NUM, 1)), atol=1e-4)


def test_a_photo_stored_sideways_exports_the_camera_of_its_file(views, tmp_path):
    # photo_1 stored turned a quarter clockwise (480 x 640, no EXIF), turned back before processing.
    folder = tmp_path / "stored"
    folder.mkdir()
    Image.open(views[1].path).transpose(Image.Transpose.ROTATE_270).save(folder / "photo_1.png")
    sideways = turn_view(load_images([folder / "photo_1.png"], size=224, verbose=False)[0], 1, size=224)
    turned_views = [views[0], sideways, views[2]]
    stored_K = unturn_camera(PHOTO_K, np.eye(4), 640, 480, 1)[0]  # the file's camera: 480 x 640 pixels
    K = intrinsics_to_processed(turned_views, np.stack([PHOTO_K, stored_K, PHOTO_K]))
    np.testing.assert_allclose(K, intrinsics_to_processed(views, PHOTO_K), atol=1e-4)
    preds, _ = simulated(views)
    scene = global_align(preds, known_intrinsics=K, views=turned_views, iterations=5, subsample=8, verbose=False)
    cameras = export_cameras(scene)
    np.testing.assert_allclose(cameras[1].K, stored_K, atol=1e-4)
    assert (cameras[1].width, cameras[1].height, cameras[1].quarter_turns) == (480, 640, 1)
    pose = scene.poses[1].double().numpy()
    np.testing.assert_allclose(cameras[1].cam2world, pose @ photo_roll(1), atol=1e-12)
    np.testing.assert_allclose(cameras[1].processed_cam2world, pose, atol=1e-12)
    np.testing.assert_allclose(scene.photo_poses().numpy(), np.stack([camera.cam2world for camera in cameras]))
    np.testing.assert_allclose(scene.original_intrinsics().numpy(), np.stack([camera.K for camera in cameras]))
    out = save_scene(scene, tmp_path / "out", formats=("colmap",), max_colmap_points=500)
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    image = next(image for image in model.images.values() if image.name.endswith("photo_1.png"))
    camera = model.cameras[image.camera_id]
    assert (camera.width, camera.height) == (480, 640)
    np.testing.assert_allclose(camera.params, [FOCAL, FOCAL, stored_K[0, 2] + 0.5, stored_K[1, 2] + 0.5], atol=1e-4)
