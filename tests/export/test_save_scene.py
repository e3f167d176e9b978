import json

import cv2
import numpy as np
import pycolmap
import pytest
import trimesh
from conftest import FOCAL, HEIGHT, ORIGINAL_SHAPE, TO_ORIGINAL, WIDTH, build_scene, no_temp_files

from pointmap.export import save_scene
from pointmap.export.cameras import read_cameras_json
from pointmap.export.nerfstudio import OPENCV_TO_OPENGL
from pointmap.export.ply import read_ply
from pointmap.export.points import gather_points

K_PROCESSED = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
# Independent of the exporter: scale 2.5, offset (4, 6), then COLMAP's half-pixel origin.
K_COLMAP = np.array([[75.0, 0, 2.5 * 16 + 4 + 0.5], [0, 75.0, 2.5 * 12 + 6 + 0.5], [0, 0, 1]])


@pytest.fixture
def exported(scene, tmp_path):
    return scene, save_scene(scene, tmp_path / "out")


def test_every_file_is_written_without_leftovers(exported):
    _, out = exported
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for stem in ("photo_0", "photo_1", "photo_2"):
        assert {f"depth/{stem}.npy", f"depth/{stem}.png", f"confidence/{stem}.npy"} <= names
    assert {"points.ply", "scene.glb", "transforms.json", "cameras.json", "depth/README.txt"} <= names
    assert {"colmap/sparse/0/cameras.bin", "colmap/sparse/0/images.bin", "colmap/sparse/0/points3D.bin"} <= names
    assert not (out / "images").exists()  # the originals exist: nothing to copy
    assert no_temp_files(out)


def test_ply_has_one_vertex_per_kept_point(exported):
    scene, out = exported
    xyz, rgb, confidence = read_ply(out / "points.ply")
    kept = sum(int(m.sum()) for m in scene.masks)
    assert len(xyz) == kept
    assert len(xyz) < 3 * HEIGHT * WIDTH
    first = scene.masks[0].numpy()
    np.testing.assert_allclose(xyz[: first.sum()], scene.points[0].numpy()[first], atol=1e-6)
    np.testing.assert_allclose(xyz[:, 2], 5.0, atol=1e-4)  # every point lies on the plane z = 5
    assert confidence.min() > 2
    # An independent reader (trimesh) sees the same vertices and colours.
    mesh = trimesh.load(out / "points.ply")
    np.testing.assert_allclose(mesh.vertices, xyz, atol=1e-6)
    np.testing.assert_array_equal(mesh.colors[:, :3], rgb)


def test_colmap_model_reads_back_in_original_pixels(exported):
    scene, out = exported
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model.num_images() == 3 and model.num_cameras() == 3
    by_name = {image.name: image for image in model.images.values()}
    assert sorted(by_name) == ["photo_0.jpg", "photo_1.jpg", "photo_2.jpg"]
    for index in range(3):
        image = by_name[f"photo_{index}.jpg"]
        camera = model.cameras[image.camera_id]
        assert (camera.width, camera.height) == (ORIGINAL_SHAPE[1], ORIGINAL_SHAPE[0])
        assert camera.model_name == "PINHOLE"
        np.testing.assert_allclose(camera.calibration_matrix(), K_COLMAP, atol=1e-4)
        cam_from_world = np.eye(4)
        cam_from_world[:3] = image.cam_from_world().matrix()
        np.testing.assert_allclose(np.linalg.inv(cam_from_world), scene.poses[index].numpy(), atol=1e-5)
    assert model.num_points3D() == len(gather_points(scene))
    # Each point's track pixel is where the camera sees it: tracks are in original-photo pixels.
    model.update_point_3d_errors()
    assert model.compute_mean_reprojection_error() < 1e-3
    point = next(iter(model.points3D.values()))
    np.testing.assert_allclose(point.xyz[2], 5.0, atol=1e-4)


def test_colmap_points_are_subsampled(scene, tmp_path):
    out = save_scene(scene, tmp_path / "out", formats=("colmap",), max_colmap_points=50)
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    assert model.num_points3D() == 50
    assert sum(image.num_points3D for image in model.images.values()) == 50


def test_transforms_json_converts_back_to_cam2world(exported):
    scene, out = exported
    document = json.loads((out / "transforms.json").read_text())
    assert document["ply_file_path"] == "points.ply"
    for index, frame in enumerate(document["frames"]):
        cam2world = np.array(frame["transform_matrix"]) @ np.linalg.inv(OPENCV_TO_OPENGL)
        np.testing.assert_allclose(cam2world, scene.poses[index].numpy(), atol=1e-6)
        assert (frame["w"], frame["h"]) == (ORIGINAL_SHAPE[1], ORIGINAL_SHAPE[0])
        assert [frame["fl_x"], frame["fl_y"], frame["cx"], frame["cy"]] == pytest.approx(
            [K_COLMAP[0, 0], K_COLMAP[1, 1], K_COLMAP[0, 2], K_COLMAP[1, 2]], abs=1e-4
        )
        assert (out / frame["file_path"]).resolve() == (out.parent / "photos" / f"photo_{index}.jpg").resolve()
    # OpenGL: the camera looks down its -z axis, which must point at the plane (world +z here).
    assert -np.array(document["frames"][0]["transform_matrix"])[2, 2] > 0.9


def test_cameras_json_and_depth_maps(exported):
    scene, out = exported
    entries = read_cameras_json(out / "cameras.json")
    assert len(entries) == 3
    for index, entry in enumerate(entries):
        assert (entry["original"]["width"], entry["original"]["height"]) == (ORIGINAL_SHAPE[1], ORIGINAL_SHAPE[0])
        assert (entry["processed"]["width"], entry["processed"]["height"]) == (WIDTH, HEIGHT)
        np.testing.assert_allclose(entry["original"]["K"], TO_ORIGINAL @ K_PROCESSED, atol=1e-5)
        np.testing.assert_allclose(entry["processed"]["K"], K_PROCESSED, atol=1e-5)
        np.testing.assert_allclose(entry["cam2world"], scene.poses[index].numpy(), atol=1e-6)
        depth = scene.depths[index].numpy()
        np.testing.assert_array_equal(np.load(out / entry["depth"]), depth)
        np.testing.assert_array_equal(np.load(out / entry["confidence"]), scene.confidences[index].numpy())
        png = cv2.imread(str(out / entry["depth_png"]), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16 and png.shape == (HEIGHT, WIDTH) and png.max() == 65535
        scale = entry["depth_png_scale"]
        assert scale == pytest.approx(depth.max() / 65535)
        assert np.abs(png * scale - depth).max() <= scale / 2 + 1e-6 * depth.max()


def test_glb_loads_with_points_and_frustums(exported):
    scene, out = exported
    loaded = trimesh.load(out / "scene.glb")
    assert isinstance(loaded, trimesh.Scene)
    clouds = [g for g in loaded.geometry.values() if isinstance(g, trimesh.PointCloud)]
    meshes = [g for g in loaded.geometry.values() if isinstance(g, trimesh.Trimesh)]
    assert len(clouds) == 1 and len(meshes) == 3
    np.testing.assert_allclose(np.sort(clouds[0].vertices[:, 0]), np.sort(gather_points(scene).xyz[:, 0]), atol=1e-5)
    apexes = sorted(tuple(np.round(m.vertices[0], 5)) for m in meshes)  # stored in world coordinates
    centres = sorted(tuple(np.round(p[:3, 3], 5)) for p in scene.poses.numpy())
    np.testing.assert_allclose(apexes, centres, atol=1e-5)


def test_refuses_to_overwrite(exported, scene):
    _, out = exported
    before = (out / "points.ply").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="overwrite"):
        save_scene(scene, out)
    assert (out / "points.ply").stat().st_mtime_ns == before
    save_scene(scene, out, overwrite=True)
    assert no_temp_files(out)


def test_scene_without_photos_writes_its_images(tmp_path):
    scene = build_scene(tmp_path, with_views=False)
    out = save_scene(scene, tmp_path / "out")
    written = sorted(p.name for p in (out / "images").iterdir())
    assert written == ["image_0000.png", "image_0001.png", "image_0002.png"]
    rgb = cv2.imread(str(out / "images" / "image_0001.png"))[..., ::-1]
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_allclose(rgb[5, 7] / 255.0, scene.colors[1][5, 7].numpy(), atol=1 / 255)
    document = json.loads((out / "transforms.json").read_text())
    assert document["frames"][0]["file_path"] == "images/image_0000.png"
    assert (document["frames"][0]["w"], document["frames"][0]["fl_x"]) == (WIDTH, FOCAL)
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    model.update_point_3d_errors()
    assert model.compute_mean_reprojection_error() < 1e-3


def test_unknown_format_is_refused(scene, tmp_path):
    with pytest.raises(ValueError, match="unknown export formats"):
        save_scene(scene, tmp_path / "out", formats=("ply", "obj"))


def test_scene_methods_write_the_same_exports(scene, tmp_path):
    out = scene.save(tmp_path / "out")
    assert (out / "points.ply").is_file() and (out / "colmap" / "sparse" / "0" / "images.bin").is_file()
    # Exports are readable by others, like files written with a plain open().
    assert (out / "points.ply").stat().st_mode & 0o044 == 0o044
    scene.to_colmap(tmp_path / "colmap")
    model = pycolmap.Reconstruction(str(tmp_path / "colmap" / "sparse" / "0"))
    assert model.num_images() == len(scene)
