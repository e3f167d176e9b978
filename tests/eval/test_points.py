"""The DTU runner and point-cloud evaluation on a tiny fixture in DTU's 'MVS Data' layout."""

import math

import numpy as np
import PIL.Image
import pytest
import scipy.io
import trimesh
from scipy.spatial.transform import Rotation

from pointmap.eval import run_eval
from pointmap.eval.points import PointmapPoints, align_to_cameras, evaluate_points, thin_points
from pointmap.eval.runners.dtu import DtuEvalConfig, camera_from_projection, dtu_scans
from pointmap.eval.runners.eth3d import Eth3dEvalConfig, eth3d_scans

K = np.array([[400.0, 0, 32], [0, 400.0, 24], [0, 0, 1]])


def ring_cameras(num: int) -> np.ndarray:
    poses = np.tile(np.eye(4), (num, 1, 1))
    for k in range(num):
        angle = 0.3 * (k - num / 2)
        poses[k, :3, :3] = Rotation.from_euler("y", -angle).as_matrix()
        poses[k, :3, 3] = [500 * math.sin(angle), 20.0 * k, -500 * math.cos(angle)]
    return poses


@pytest.fixture(scope="module")
def dtu_root(tmp_path_factory):
    """scan1 with views 1, 25, 49 (views=3); a 10 x 10 grid of points 1 mm apart on z = 0; an ObsMask of
    4 mm voxels observing x < 11.5 mm only (all the ground truth); a ground plane keeping y > 0.5."""
    root = tmp_path_factory.mktemp("dtu")
    poses = ring_cameras(3)
    for view, cam2world in zip((1, 25, 49), poses, strict=True):
        image = root / "Rectified" / "scan1" / f"rect_{view:03d}_3_r5000.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(np.random.default_rng(view).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(image)
        world2cam = np.linalg.inv(cam2world)
        calibration = root / "Calibration" / "cal18" / f"pos_{view:03d}.txt"
        calibration.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(calibration, 3.0 * K @ world2cam[:3])  # a projection matrix is defined up to scale
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0), [0.0], indexing="ij"), -1).reshape(-1, 3)
    (root / "Points" / "stl").mkdir(parents=True)
    trimesh.PointCloud(grid).export(root / "Points" / "stl" / "stl001_total.ply")
    (root / "ObsMask").mkdir()
    mask = np.zeros((4, 3, 3), dtype=np.uint8)
    mask[:3] = 1  # x in [-0.5, 11.5) observed
    bounds = np.array([[-0.5, -0.5, -6.0], [15.5, 11.5, 6.0]])
    scipy.io.savemat(root / "ObsMask" / "ObsMask1_10.mat", {"ObsMask": mask, "BB": bounds, "Res": np.array([[4.0]])})
    scipy.io.savemat(root / "ObsMask" / "Plane1.mat", {"P": np.array([[0.0], [1.0], [0.0], [-0.5]])})
    return root, poses, grid


def test_projection_matrices_give_camera_poses(dtu_root):
    _, poses, _ = dtu_root
    np.testing.assert_allclose(camera_from_projection(2.0 * K @ np.linalg.inv(poses[1])[:3]), poses[1], atol=1e-9)


def test_dtu_reader_masks_and_plane(dtu_root):
    root, poses, grid = dtu_root
    (scan,) = dtu_scans(root, DtuEvalConfig(views=3))
    assert scan.name == "scan1" and [p.rsplit("/", 1)[1] for p in scan.paths] == [
        "rect_001_3_r5000.png", "rect_025_3_r5000.png", "rect_049_3_r5000.png"]
    np.testing.assert_allclose(scan.cam2world, poses, atol=1e-9)
    np.testing.assert_allclose(scan.load_points(), grid)
    probes = np.array([[9.0, 3.0, 0.0], [12.0, 3.0, 0.0], [-1.0, 0.0, 0.0]])
    assert scan.in_mask(probes).tolist() == [True, False, False]
    assert scan.above_ground(grid).sum() == 90  # the row y = 0 is below the plane y = 0.5
    with pytest.raises(ValueError, match="stl PLY"):
        dtu_scans(root, DtuEvalConfig(views=3, scans=(4,)))


def test_points_oracle_and_hand_computed_accuracy(dtu_root):
    root, poses, grid = dtu_root
    (scan,) = dtu_scans(root, DtuEvalConfig(views=3))
    result = run_eval("dtu", data=root, methods=["oracle"], frames=3, verbose=False)
    row = result.summary[0]
    assert row["scans"] == 1 and row["failed"] == 0 and row["chamfer"] == pytest.approx(0, abs=1e-6)

    def shifted(paths):
        # Every point 0.3 mm off in z, plus an outlier in an unobserved voxel (not scored).
        points = np.concatenate([grid + [0.0, 0.0, 0.3], [[13.0, 5.0, 3.0]]])
        return poses, points

    def half(paths):
        return poses, grid[grid[:, 0] < 5]  # the columns x = 0..4 only

    records = evaluate_points("toy", {"shifted": shifted, "half": half}, [scan], verbose=False).records
    record = records[0]
    assert record["accuracy"] == pytest.approx(0.3)  # all 100 points, against all the ground truth
    assert record["completeness"] == pytest.approx(0.3)  # the 90 points above the plane
    assert record["chamfer"] == pytest.approx(0.3)
    # Columns x = 5..9 above the plane (9 rows each) lie 1..5 mm from column 4: completeness 9 * 15 / 90.
    assert records[1]["accuracy"] == pytest.approx(0, abs=1e-9) and records[1]["completeness"] == pytest.approx(1.5)


def test_alignment_and_thinning():
    gt = ring_cameras(4)
    moved = np.eye(4)
    moved[:3, :3] = 2.0 * Rotation.from_rotvec([0.1, 0.7, -0.3]).as_matrix()
    moved[:3, 3] = [1.0, 2.0, 3.0]
    similarity = align_to_cameras(np.linalg.inv(moved) @ gt, gt)
    np.testing.assert_allclose(similarity, moved, atol=1e-9)
    with pytest.raises(ValueError, match="3 or more"):
        align_to_cameras(gt[:2], gt[:2])
    points = np.array([[0.01, 0.0, 0.0], [0.05, 0.1, 0.1], [0.25, 0.0, 0.0], [0.0, 0.0, -0.01]])
    np.testing.assert_allclose(thin_points(points, 0.2), points[[0, 2, 3]])


def test_pointmap_reconstructs_a_scan(tiny_model, dtu_root):
    root, _, _ = dtu_root
    (scan,) = dtu_scans(root, DtuEvalConfig(views=3))
    result = evaluate_points("dtu", {"pointmap": PointmapPoints(tiny_model)}, [scan], verbose=False)
    (record,) = result.records
    assert record["error"] is None and not record["failed"]
    # A random network's cloud may lie beyond DTU's 20 mm bound everywhere: inf then, never NaN or 0.
    assert all(record[key] > 0 and not math.isnan(record[key]) for key in ("accuracy", "completeness", "chamfer"))
    assert result.summary[0]["scans"] == 1


@pytest.fixture(scope="module")
def eth3d_root(tmp_path_factory):
    """Scene "courtyard": 4 images with COLMAP text poses; two scans, the second moved by its MeshLab matrix."""
    root = tmp_path_factory.mktemp("eth3d")
    scene = root / "courtyard"
    poses = ring_cameras(4)
    lines = ["# Image list with two lines of data per image:"]
    for k, cam2world in enumerate(poses):
        name = f"dslr_images_undistorted/DSC_{k:04d}.JPG"
        image = scene / "images" / name
        image.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(np.random.default_rng(k).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(image)
        world2cam = np.linalg.inv(cam2world)
        qx, qy, qz, qw = Rotation.from_matrix(world2cam[:3, :3]).as_quat()
        lines += [" ".join(map(str, [k + 1, qw, qx, qy, qz, *world2cam[:3, 3], 1, name])), "10.0 20.0 -1"]
    (scene / "dslr_calibration_undistorted").mkdir()
    (scene / "dslr_calibration_undistorted" / "images.txt").write_text("\n".join(lines) + "\n")
    evaluation = scene / "dslr_scan_eval"
    evaluation.mkdir()
    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(4.0), [0.0], indexing="ij"), -1).reshape(-1, 3)
    trimesh.PointCloud(grid).export(evaluation / "scan1.ply")
    trimesh.PointCloud(grid - [0.0, 0.0, 2.0]).export(evaluation / "scan2.ply")  # moved back up by its matrix
    lift = np.eye(4)
    lift[2, 3] = 2.0
    meshes = [
        f'  <MLMesh label="{name}" filename="{name}">\n   <MLMatrix44>\n{" ".join(map(str, matrix.reshape(-1)))}\n'
        "</MLMatrix44>\n  </MLMesh>"
        for name, matrix in (("scan1.ply", np.eye(4)), ("scan2.ply", lift))
    ]
    project = ["<!DOCTYPE MeshLabDocument>", "<MeshLabProject>", " <MeshGroup>", *meshes, " </MeshGroup>",
               "</MeshLabProject>"]
    (evaluation / "scan_alignment.mlp").write_text("\n".join(project) + "\n")
    return root, poses, np.concatenate([grid, grid])


def test_eth3d_reader_and_scores(eth3d_root):
    root, poses, points = eth3d_root
    (scan,) = eth3d_scans(root, Eth3dEvalConfig(views=3))
    assert [p.rsplit("/", 1)[1] for p in scan.paths] == ["DSC_0000.JPG", "DSC_0002.JPG", "DSC_0003.JPG"]
    np.testing.assert_allclose(scan.cam2world, poses[[0, 2, 3]], atol=1e-9)
    np.testing.assert_allclose(scan.load_points(), points, atol=1e-9)
    result = run_eval("eth3d", data=root, methods=["oracle"], frames=3, verbose=False)
    row = result.summary[0]
    assert row["f1"] == 1.0 and row["chamfer"] == pytest.approx(0, abs=1e-6)
    assert result.columns[-4:] == ("precision", "recall", "f1", "seconds")

    def far(paths):
        return scan.cam2world, np.concatenate([points[:20], points[:20] + [0.0, 0.0, 0.03]])

    (record,) = evaluate_points("toy", {"far": far}, [scan], density=0.005, max_dist=None, tolerance=0.02,
                                verbose=False).records
    # Half the predicted points sit 3 cm off (beyond 2 cm): precision 1/2; every true point is matched.
    assert record["precision"] == pytest.approx(0.5) and record["recall"] == 1.0
    assert record["f1"] == pytest.approx(2 / 3)
