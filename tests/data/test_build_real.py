"""Tests of the real-scene builder (pointmap.data.real): closed-form stereo and consistency checks, the
quality gates, resuming, and a synthetic room through the whole COLMAP + stereo pipeline (slow)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tomllib
import torch
from PIL import Image

from pointmap.data.real import build as build_module
from pointmap.data.real.build import SceneResult, build_real, parse_args, split_of
from pointmap.data.real.config import BuildConfig, QualityConfig, StereoConfig
from pointmap.data.real.consistency import consistent_with, pair_overlap, relative_pose
from pointmap.data.real.ingest import Frame, collect_frames, discover_scenes
from pointmap.data.real.quality import SceneQuality, judge, report_line
from pointmap.data.real.sfm_state import SfmRecord, SfmScene, read_sfm_record, read_sfm_state, write_sfm_state
from pointmap.data.real.stereo import plane_sweep, select_neighbours, sparse_depth_map

REPO = Path(__file__).resolve().parents[2]
FOCAL, HEIGHT, WIDTH = 100.0, 48, 64


@pytest.fixture
def one_thread():
    # Several test processes share two cores: one torch thread each avoids oversubscription stalls.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _K() -> torch.Tensor:
    return torch.tensor([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]], dtype=torch.float64)


def _pose(x: float) -> torch.Tensor:
    pose = torch.eye(4, dtype=torch.float64)
    pose[0, 3] = x
    return pose


def _texture(width: int, seed: int = 0) -> torch.Tensor:
    """(HEIGHT, width) grey noise with some spatial correlation, in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, HEIGHT, width, generator=generator)
    blurred = torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1, count_include_pad=False)[0, 0]
    return (blurred - blurred.min()) / (blurred.max() - blurred.min())


def test_plane_sweep_finds_a_fronto_parallel_plane(one_thread):
    # A plane at depth d seen by cameras shifted by +-b along x: each source is the reference shifted by
    # the disparity f b / d = 5 px, so every interior pixel's depth is d.
    depth, baseline, disparity = 2.0, 0.1, 5
    wide = _texture(WIDTH + 2 * disparity)
    ref = wide[:, disparity : disparity + WIDTH]
    # Camera at +b sees world x at pixel u - disparity: its image at u is the reference at u + disparity.
    right = wide[:, 2 * disparity :]
    left = wide[:, :WIDTH]
    sources = [right, left]
    source_from_ref = torch.stack([relative_pose(_pose(0), _pose(baseline)), relative_pose(_pose(0), _pose(-baseline))])
    config = StereoConfig(num_depths=32, window=5)
    estimate, score = plane_sweep(ref, _K(), sources, _K().expand(2, 3, 3), source_from_ref, 1.0, 4.0, config)
    # Where both sources' windows land inside their images at the true depth (best_of = 2 needs both),
    # with a pixel to spare, every pixel has the plane's depth. Nearer the sides a wrong plane, the only
    # one both sources see, may win: the multi-view consistency filter is there to remove those.
    both = (slice(2, -2), slice(disparity + 3, -disparity - 3))
    assert (estimate[both] > 0).all()
    assert (estimate[both] - depth).abs().max() / depth < 0.005
    assert score[both].min() >= config.min_zncc
    assert (estimate[:2] == 0).all() and (estimate[:, -2:] == 0).all()  # windows over the border


def test_plane_sweep_keeps_no_depth_on_a_blank_wall(one_thread):
    flat = torch.full((HEIGHT, WIDTH), 0.5)
    source_from_ref = relative_pose(_pose(0), _pose(0.1))[None]
    estimate, _ = plane_sweep(flat, _K(), [flat], _K()[None], source_from_ref, 1.0, 4.0, StereoConfig(num_depths=8))
    assert (estimate == 0).all()


def test_plane_sweep_rejects_bad_inputs():
    image = torch.zeros(HEIGHT, WIDTH)
    with pytest.raises(ValueError, match="at least one neighbour"):
        plane_sweep(image, _K(), [], _K()[:0], torch.zeros(0, 4, 4), 1.0, 2.0, StereoConfig())
    with pytest.raises(ValueError, match="0 < near < far"):
        plane_sweep(image, _K(), [image], _K()[None], torch.eye(4)[None], 2.0, 1.0, StereoConfig())
    with pytest.raises(ValueError, match="odd"):
        StereoConfig(window=4)


def test_consistency_of_a_plane_between_shifted_cameras():
    # Both cameras see the plane z = 2 (constant depth); camera j sits 0.1 to the right, so pixel u of
    # i lands on u - 5 in j: columns 0..4 leave j's image, the others come back exactly.
    depth = torch.full((HEIGHT, WIDTH), 2.0, dtype=torch.float64)
    j_from_i = relative_pose(_pose(0), _pose(0.1))
    consistent = consistent_with(depth, _K(), depth, _K(), j_from_i, 1.0, 0.01)
    assert not consistent[:, :5].any()
    assert consistent[:, 5:].all()
    assert pair_overlap(depth, _K(), _pose(0), depth, _K(), _pose(0.1), 1.0, 0.01) == pytest.approx((WIDTH - 5) / WIDTH)
    # j believes the plane 3 % farther: the round trip comes back 3 % off in depth (and 0.15 px off in x).
    farther = depth * 1.03
    assert not consistent_with(depth, _K(), farther, _K(), j_from_i, 1.0, 0.01).any()
    assert consistent_with(depth, _K(), farther, _K(), j_from_i, 1.0, 0.05)[:, 6:].all()
    # Unknown depth (0) in j confirms nothing.
    assert pair_overlap(depth, _K(), _pose(0), torch.zeros_like(depth), _K(), _pose(0.1), 1.0, 0.01) == 0


def test_sparse_depth_map_keeps_the_nearest_point_per_pixel():
    xy = torch.tensor([[3.2, 1.9], [2.8, 2.4], [10.0, 1.0], [-1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    depth = torch.tensor([5.0, 4.0, 3.0, 2.0, -1.0], dtype=torch.float64)
    out = sparse_depth_map(xy, depth, 4, 6)
    expected = torch.zeros(4, 6)
    expected[2, 3] = 4.0  # two points round to (3, 2): the nearer wins; the others leave the image or lie behind
    assert torch.equal(out, expected)


def test_select_neighbours_prefers_shared_points_and_wide_baselines():
    covisibility = torch.tensor([[90, 50, 40, 0], [50, 80, 30, 10], [40, 30, 70, 20], [0, 10, 20, 60]])
    cam2world = torch.eye(4).repeat(4, 1, 1)
    cam2world[:, 0, 3] = torch.tensor([0.0, 0.01, 0.5, 1.0])  # camera 1 nearly coincides with camera 0
    median_depth = torch.full((4,), 2.0)
    neighbours = select_neighbours(covisibility, cam2world, median_depth, count=2, min_angle_deg=3.0)
    # Camera 0: camera 1 shares more points, but its baseline subtends 0.3 degrees (score 50 * 0.1 = 5).
    assert neighbours[0] == [2, 1]
    assert neighbours[3] == [2, 1]
    assert all(i not in n for i, n in enumerate(neighbours))


def _quality(**changes) -> SceneQuality:
    values = dict(scene="s", num_input=10, num_registered=9, reprojection_px=0.8, dense_share=0.5, valid_share=0.6,
                  num_pairs=12, mean_overlap=0.4, seconds=3.0, sfm_seconds=1.0, stereo_seconds=1.5, pairs_seconds=0.5)
    values.update(changes)
    return SceneQuality(**values)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"num_registered": 2}, "2 registered images < 3"),
        ({"num_registered": 4}, "registered 4/10 < 50%"),
        ({"reprojection_px": 2.5}, "mean reprojection error 2.50 px > 2.0 px"),
        ({"valid_share": 0.05}, "valid depth on 5.0% of pixels < 10%"),
        ({"num_pairs": 0}, "0 pairs with overlap >= 0.05 < 1"),
    ],
)
def test_quality_gates(changes, reason):
    quality = _quality(**changes)
    assert judge(quality, QualityConfig()) == reason
    line = report_line(quality, reason)
    assert line.startswith(f"s: registered {quality.num_registered}/10, reprojection")
    assert line.endswith("accepted" if reason is None else f"rejected: {reason}")


def _write_photos(folder: Path, count: int, size=(40, 30)) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        Image.new("RGB", size, (index * 20, 0, 0)).save(folder / f"img{index}.jpg")


def test_discover_scenes_and_collect_frames(tmp_path):
    _write_photos(tmp_path / "root" / "kitchen", 2, size=(400, 300))
    _write_photos(tmp_path / "root" / "street", 1)
    (tmp_path / "root" / "notes").mkdir()
    scenes = discover_scenes([tmp_path / "root"])
    assert list(scenes) == ["kitchen", "street"]
    assert discover_scenes([tmp_path / "root" / "street"]) == {"street": tmp_path / "root" / "street"}
    with pytest.raises(ValueError, match="rename one of them"):
        discover_scenes([tmp_path / "root", tmp_path / "root" / "street"])
    with pytest.raises(ValueError, match="no photos"):
        discover_scenes([tmp_path / "root" / "notes"])
    # A 400 x 300 photo whose EXIF says 35 mm equivalent: f = 35 * 500 px / 43.27 mm = 404.5 px, and
    # 101.1 px once downscaled to 100 x 75; the photos without EXIF have no focal.
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 35
    Image.new("RGB", (400, 300), (9, 9, 9)).save(tmp_path / "root" / "kitchen" / "img9.jpg", exif=exif)
    frames = collect_frames(scenes["kitchen"], tmp_path / "work", max_size=100, every=1, verbose=False)
    assert sorted(frames) == ["img0.png", "img1.png", "img9.png"]
    assert frames["img0.png"] == Frame(str(tmp_path / "root" / "kitchen" / "img0.jpg"), None)
    assert frames["img9.png"].focal_px == pytest.approx(35 * 500 / math.hypot(36, 24) / 4)
    with Image.open(tmp_path / "work" / "img1.png") as image:
        assert image.size == (100, 75)


def test_collect_frames_keeps_every_kth_video_frame(tmp_path):
    import cv2

    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(5):
        writer.write(np.full((48, 64, 3), index * 40, np.uint8))
    writer.release()
    assert discover_scenes([tmp_path]) == {"clip": tmp_path / "clip.avi"}
    origin = collect_frames(tmp_path / "clip.avi", tmp_path / "work", max_size=32, every=2, verbose=False)
    assert origin == {f"{i:06d}.png": Frame(f"{tmp_path / 'clip.avi'}#frame={i}") for i in (0, 2, 4)}
    with Image.open(tmp_path / "work" / "000004.png") as image:
        assert image.size == (32, 24)
        assert abs(np.asarray(image).mean() - 160) < 3  # frame 4 is grey level 4 * 40 (JPEG-coded)


def test_exif_focal_priors_reach_colmap_cameras(tmp_path):
    import pycolmap

    from pointmap.data.real.colmap_pipeline import _set_focal_priors

    generator = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(generator.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "images" / name)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "SIMPLE_RADIAL"
    pycolmap.extract_features(tmp_path / "db.db", tmp_path / "images", camera_mode=pycolmap.CameraMode.PER_IMAGE,
                              reader_options=reader, device=pycolmap.Device.cpu)
    _set_focal_priors(tmp_path / "db.db", {"a.png": 50.0})
    database = pycolmap.Database.open(tmp_path / "db.db")
    cameras = {image.name: database.read_camera(image.camera_id) for image in database.read_all_images()}
    database.close()
    assert cameras["a.png"].params[0] == 50.0 and cameras["a.png"].has_prior_focal_length
    assert cameras["b.png"].params[0] == pytest.approx(1.2 * 64) and not cameras["b.png"].has_prior_focal_length


def test_build_real_resumes_and_never_keeps_rejected_scenes(tmp_path, monkeypatch):
    for name in ("good", "bad", "broken"):
        _write_photos(tmp_path / "in" / name, 1)
    out = tmp_path / "out"
    (out / "bad").mkdir(parents=True)  # a leftover folder from an interrupted run
    (out / "bad" / "cameras.json").write_text("{}")
    calls = []

    def fake_build_scene(scene, source, out_dir, config):
        calls.append(scene)
        if scene == "broken":
            raise RuntimeError("COLMAP crashed")
        if scene == "good":
            (out_dir / scene).mkdir()
            (out_dir / scene / "cameras.json").write_text("{}")
            return SceneResult(scene, str(source), "accepted", None, _quality(scene=scene))
        return SceneResult(scene, str(source), "rejected", "too blurry", _quality(scene=scene))

    monkeypatch.setattr(build_module, "build_scene", fake_build_scene)
    config = BuildConfig(verbose=False)
    first = build_real([tmp_path / "in"], out, config)
    assert calls == ["bad", "broken", "good"]
    assert [(r.scene, r.status) for r in first] == [("bad", "rejected"), ("broken", "failed"), ("good", "accepted")]
    assert first[1].reason == "RuntimeError: COLMAP crashed"
    assert not (out / "bad").exists()
    assert json.loads((out / "splits.json").read_text()) == {"train": ["good"], "val": []}
    status = json.loads((out / ".status" / "bad.json").read_text())
    assert status["status"] == "rejected" and status["quality"]["num_registered"] == 9
    calls.clear()
    second = build_real([tmp_path / "in"], out, config)
    assert calls == []
    assert second == first
    build_real([tmp_path / "in"], out, BuildConfig(verbose=False, retry_failed=True))
    assert calls == ["bad", "broken"]


def test_split_of_is_a_stable_share_of_scene_names():
    names = [f"scene{i}" for i in range(2000)]
    val = [n for n in names if split_of(n, 0.1) == "val"]
    assert 150 < len(val) < 250
    assert all(split_of(n, 0.2) == "val" for n in val)  # a larger share only adds scenes to val
    assert split_of("kitchen", 0.0) == "train" and split_of("kitchen", 1.0) == "val"


def test_parse_args_builds_the_config(capsys):
    args = parse_args(["a", "b.mp4", "--out", "o", "--num-depths", "64", "--camera-model", "OPENCV",
                       "--no-sparse-fallback", "--quiet", "--min-pair-overlap", "0.2"])
    assert (args.stage, args.inputs, args.out, args.sfm_dir) == ("all", ["a", "b.mp4"], "o", None)
    config = args.config
    assert config.stereo.num_depths == 64 and not config.stereo.sparse_fallback
    assert config.sfm.camera_model == "OPENCV" and not config.verbose
    assert config.quality.min_pair_overlap == 0.2
    # The configs' own checks become usage errors naming the value.
    for flag, value, message in (("--window", "4", "odd size"), ("--num-depths", "2", "at least 3 planes")):
        with pytest.raises(SystemExit):
            parse_args(["a", "--out", "o", flag, value])
        assert message in capsys.readouterr().err


def test_parse_args_of_the_two_stages():
    sfm = parse_args(["photos", "--stage", "sfm", "--sfm-dir", "state", "--sfm-image-format", "jpg"])
    assert (sfm.stage, sfm.inputs, sfm.out, sfm.sfm_dir) == ("sfm", ["photos"], None, "state")
    assert sfm.config.sfm_image_format == "jpg" and sfm.config.jpeg_quality == 90
    dense = parse_args(["--stage", "dense", "--out", "data"])
    assert (dense.inputs, dense.sfm_dir) == ([], str(Path("data") / ".sfm"))
    for argv in (["--stage", "sfm", "photos"], ["--stage", "dense", "--sfm-dir", "s"], ["--out", "o"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def test_manifest_of_real_scenes_is_complete_and_clean():
    manifest = tomllib.loads((REPO / "data" / "real_scenes.toml").read_text())
    scenes = manifest["scene"]
    assert len(scenes) >= 5
    allowed = set(manifest["allowed_licences"])
    excluded = [name.lower() for name in manifest["excluded_sources"]]
    for scene in scenes:
        for key in ("name", "repository", "commit", "path", "licence", "kind"):
            assert scene.get(key), f"{scene.get('name')}: {key} missing"
        assert len(scene["commit"]) == 40 and int(scene["commit"], 16) >= 0
        assert scene["licence"] in allowed
        assert scene["kind"] in manifest["kinds"]
        text = " ".join(str(v) for v in scene.values()).lower()
        assert not any(name in text for name in excluded), scene["name"]
    assert len({s["name"] for s in scenes}) == len(scenes)


@pytest.mark.slow
def test_synthetic_room_through_the_pipeline(tmp_path, one_thread):
    from pointmap.data.formats.generic import GenericPairDataset
    from pointmap.data.real.synthetic_check import check_config, textured_room, truth_metrics, write_photos

    count = 10
    rgb, depth_gt, _, cam2world_gt = textured_room(seed=3, count=count, height=240, width=320)
    write_photos(rgb, tmp_path / "room")
    (result,) = build_real([tmp_path / "room"], tmp_path / "out", check_config("cpu"))
    assert result.status == "accepted", result.reason
    assert result.quality.num_registered == count and result.quality.reprojection_px < 0.6
    assert result.quality.sfm_seconds + result.quality.stereo_seconds <= result.quality.seconds
    metrics = truth_metrics(tmp_path / "out", "room", depth_gt, cam2world_gt)
    # Poses up to the similarity SfM leaves free (Umeyama on the camera centres), and pairwise.
    assert metrics.rotation_deg_max < 0.6
    assert metrics.relative_rotation_deg_max < 0.5
    # Depths after one scale for the scene; that scale is the camera centres' too.
    assert metrics.valid_share > 0.6
    assert metrics.depth_median_error < 0.012
    assert metrics.depth_within_5pct > 0.95
    assert metrics.scale_disagreement < 0.01
    # Neighbouring views overlap most.
    dataset = GenericPairDataset(tmp_path / "out")
    assert sorted(dataset.frames["room"]) == [f"{i:03d}" for i in range(count)]
    overlaps = {(p[1], p[2]): p[3] for p in dataset.pairs}
    assert overlaps[("000", "001")] > 0.3
    assert overlaps.get(("000", "009"), 0.0) < overlaps[("000", "001")]
    assert np.isclose(result.quality.mean_overlap, np.mean(list(overlaps.values())), atol=1e-3)


def _plane_state(count: int = 3, depth: float = 2.0, baseline: float = 0.1) -> SfmScene:
    """An SfmScene of the textured plane z = depth seen by `count` cameras spaced by `baseline` along x,
    with a 6 x 5 grid of SfM points on the plane: the dense stage's input, known in closed form."""
    generator = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 1, 120, 160, generator=generator)  # over world x in [-0.8, 0.8], y in [-0.6, 0.6]
    K = _K()
    v, u = torch.meshgrid(torch.arange(HEIGHT, dtype=torch.float64), torch.arange(WIDTH, dtype=torch.float64),
                          indexing="ij")
    grid_x, grid_y = torch.meshgrid(torch.linspace(-0.4, 0.4, 6), torch.linspace(-0.2, 0.2, 5), indexing="xy")
    points = torch.stack([grid_x.flatten(), grid_y.flatten()], -1).double()
    images, sparse_xy, sparse_depth = [], [], []
    for i in range(count):
        x = (u - K[0, 2]) * depth / FOCAL + baseline * i
        y = (v - K[1, 2]) * depth / FOCAL
        where = torch.stack([x / 0.8, y / 0.6], -1)[None].float()
        grey = torch.nn.functional.grid_sample(texture, where, mode="bilinear", align_corners=False)[0, 0]
        images.append((grey[..., None].expand(HEIGHT, WIDTH, 3) * 255).round().byte().numpy())
        xy = torch.stack([(points[:, 0] - baseline * i) * FOCAL / depth + K[0, 2],
                          points[:, 1] * FOCAL / depth + K[1, 2]], -1)
        sparse_xy.append(xy.float())
        sparse_depth.append(torch.full((len(points),), depth))
    return SfmScene(
        names=[f"{i:03d}.png" for i in range(count)],
        images=images,
        intrinsics=K.expand(count, 3, 3).clone(),
        cam2world=torch.stack([_pose(baseline * i) for i in range(count)]),
        sparse_xy=sparse_xy,
        sparse_depth=sparse_depth,
        covisibility=torch.full((count, count), len(points), dtype=torch.int64),
        num_input=count,
        reprojection_px=0.3,
    )


def _record(sfm: SfmScene, scene: str = "plane") -> SfmRecord:
    return SfmRecord(scene, "photos/plane", "done", None, sfm.num_input, sfm.num_registered, sfm.reprojection_px,
                     1.5, {name: f"photos/plane/{name}" for name in sfm.names})


def test_sfm_state_round_trip(tmp_path):
    sfm = _plane_state()
    write_sfm_state(tmp_path / "plane", _record(sfm), sfm)
    record, back = read_sfm_state(tmp_path / "plane")
    assert record == _record(sfm)
    assert back.names == sfm.names and back.num_input == 3 and back.reprojection_px == 0.3
    assert all(np.array_equal(a, b) for a, b in zip(back.images, sfm.images, strict=True))  # PNG: lossless
    for name in ("intrinsics", "cam2world", "covisibility"):
        assert torch.equal(getattr(back, name), getattr(sfm, name)), name
    assert all(torch.equal(a, b) for a, b in zip(back.sparse_xy, sfm.sparse_xy, strict=True))
    assert all(torch.equal(a, b.float()) for a, b in zip(back.sparse_depth, sfm.sparse_depth, strict=True))
    # JPEG at quality 90: smaller, and close to the original pixels.
    write_sfm_state(tmp_path / "small", _record(sfm), sfm, image_format="jpg")
    _, jpeg = read_sfm_state(tmp_path / "small")
    assert sorted(p.name for p in (tmp_path / "small" / "images").iterdir()) == ["000.jpg", "001.jpg", "002.jpg"]
    assert 0 < np.abs(jpeg.images[0].astype(float) - sfm.images[0]).mean() < 8
    # A scene COLMAP failed on has a record and nothing else; the dense stage is told where to go.
    failed = replace(_record(sfm, "broken"), status="failed", reason="no model", num_registered=0)
    write_sfm_state(tmp_path / "broken", failed)
    assert read_sfm_record(tmp_path / "broken") == failed
    assert sorted(p.name for p in (tmp_path / "broken").iterdir()) == ["sfm.json"]
    assert read_sfm_record(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="run `build-real --stage sfm`"):
        read_sfm_state(tmp_path / "broken")
    with pytest.raises(ValueError, match="needs its SfmScene"):
        write_sfm_state(tmp_path / "x", _record(sfm))


_DENSE_WITHOUT_PYCOLMAP = """
import sys
sys.modules["pycolmap"] = None  # the GPU machines have no pycolmap: any import of it fails here
from pointmap.data.real.build import main
code = main(["--stage", "dense", "--sfm-dir", sys.argv[1], "--out", sys.argv[2], "--num-depths", "24",
             "--window", "5", "--device", "cpu", "--quiet"])
assert "pycolmap" not in [name for name, module in sys.modules.items() if module is not None]
sys.exit(code)
"""


def test_dense_stage_without_pycolmap_finds_the_plane(tmp_path):
    import subprocess
    import sys

    from pointmap.data.formats.generic import GenericPairDataset

    sfm = _plane_state()
    write_sfm_state(tmp_path / "sfm" / "plane", _record(sfm), sfm)
    write_sfm_state(tmp_path / "sfm" / "broken", replace(_record(sfm, "broken"), status="failed", reason="no model"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _DENSE_WITHOUT_PYCOLMAP, str(tmp_path / "sfm"), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    status = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "out" / ".status").glob("*.json")}
    assert status["broken"]["status"] == "failed" and status["broken"]["reason"] == "no model"
    assert status["plane"]["status"] == "accepted"
    assert status["plane"]["quality"]["sfm_seconds"] == 1.5
    dataset = GenericPairDataset(tmp_path / "out")
    assert sorted(dataset.frames["plane"]) == ["000", "001", "002"]
    view = dataset.view("plane", "001")  # the middle camera: both others confirm its depths
    assert view.valid.float().mean() > 0.5
    assert (view.depth[view.valid] - 2.0).abs().max() < 0.02 * 2.0
    assert torch.equal(view.cam2world, _pose(0.1).float())


@pytest.mark.slow
def test_sfm_stage_then_dense_stage_equals_both_at_once(tmp_path, one_thread):
    from pointmap.data.real.build import build_dense, build_sfm
    from pointmap.data.real.synthetic_check import check_config, textured_room, write_photos

    rgb, *_ = textured_room(seed=3, count=6, height=240, width=320)
    write_photos(rgb, tmp_path / "room")
    config = check_config("cpu", num_depths=32)
    config = replace(config, sfm=replace(config.sfm, num_threads=1))  # one thread: COLMAP is deterministic
    (whole,) = build_real([tmp_path / "room"], tmp_path / "all", config)
    (record,) = build_sfm([tmp_path / "room"], tmp_path / "sfm", config)
    (split,) = build_dense(tmp_path / "sfm", tmp_path / "split", config)
    assert whole.status == split.status == "accepted" and record.status == "done"
    assert record.num_registered == whole.quality.num_registered == 6
    assert record.reprojection_px == whole.quality.reprojection_px
    assert split.quality.valid_share == whole.quality.valid_share > 0.2
    assert split.quality.num_pairs == whole.quality.num_pairs
    files = sorted(p.relative_to(tmp_path / "all") for p in (tmp_path / "all" / "room").rglob("*") if p.is_file())
    assert len(files) == 2 + 2 * 6  # cameras.json, pairs.csv, an image and a depth map per view
    for file in files:
        assert (tmp_path / "all" / file).read_bytes() == (tmp_path / "split" / file).read_bytes(), file
    # A second run of each stage resumes: nothing is redone.
    assert build_sfm([tmp_path / "room"], tmp_path / "sfm", config) == [record]
    assert build_dense(tmp_path / "sfm", tmp_path / "split", config) == [split]
