"""The synthetic benchmark harness: ground-truth methods score what they must, `pointmap eval synthetic` runs."""

import json
import math
from dataclasses import replace

import numpy as np
import PIL.Image
import pytest
import torch
from scipy.spatial.transform import Rotation

from pointmap.data.synthetic.dataset import SyntheticConfig, SyntheticPairDataset
from pointmap.eval import run_eval
from pointmap.eval.command import main
from pointmap.eval.methods import oracle_pairs
from pointmap.eval.pairs import (
    PAIR_COLUMNS,
    PairEstimate,
    PairTruth,
    evaluate_pairs,
    pair_truth,
    score_pair,
    summarize_pairs,
)
from pointmap.eval.report import to_markdown
from pointmap.eval.synthetic import SyntheticEvalConfig, bucket_name, held_out_items, held_out_pairs
from pointmap.geometry.cameras import depth_to_points, transform_points

TINY = (64, 64)


@pytest.fixture(scope="module")
def rendered():
    config = SyntheticEvalConfig(pairs=2, size=TINY, shadows=False)
    return [
        (f"pair{index}", bucket_name(overlap, config.buckets), view1, view2, {"overlap": overlap})
        for index, view1, view2, overlap in held_out_pairs(config, verbose=False)
    ]


def test_the_held_out_split_holds_every_pair_asked_for():
    for pairs in (2, 256):  # 256 pairs reach item 2047, past the engine's default 1000-item split
        dataset, items = held_out_items(SyntheticEvalConfig(pairs=pairs))
        assert len(items) == len(set(items)) == pairs and max(items) < len(dataset)
        assert len({dataset.scene_of(item)[1] for item in items}) == pairs  # one pair per scene


def scaled_oracle(view1, view2):
    """Ground truth in another scale: every metric is scale-free, so it scores perfectly too."""
    truth = oracle_pairs(view1, view2)
    pose = truth.cam2_to_cam1.copy()
    pose[:3, 3] *= 7
    return PairEstimate(pose, 3 * truth.depth1, 3 * truth.depth2)


def turned_oracle(view1, view2):
    """Ground truth with T_1to2's rotation off by 2 degrees and its translation exact."""
    T_1to2 = np.linalg.inv(pair_truth(view1, view2).cam2_to_cam1)
    T_1to2[:3, :3] = Rotation.from_euler("x", 2, degrees=True).as_matrix() @ T_1to2[:3, :3]
    return PairEstimate(np.linalg.inv(T_1to2))


def failing(view1, view2):
    return PairEstimate(None)


def test_held_out_pairs_come_from_the_val_split(rendered):
    assert len(rendered) == 2
    for _, group, view1, _view2, extra in rendered:
        assert "seed=" in view1.source
        seed = int(view1.source.split("seed=")[1].split("/")[0])
        assert seed % 2 == 1  # odd seeds: the split training never draws
        assert view1.image.shape == (3, *TINY)
        assert 0.3 <= extra["overlap"] <= 1.0 and group.endswith("%")


def test_ground_truth_methods_score_exactly(rendered):
    methods = {"oracle": oracle_pairs, "scaled": scaled_oracle, "turned": turned_oracle, "failing": failing}
    result = evaluate_pairs("synthetic", methods, rendered, ["30-50%", "50-70%", "70-100%"])
    rows = {(row["method"], row["group"]): row for row in result.summary}
    assert len(rows) == 4 * 4
    for name in ("oracle", "scaled"):
        row = rows[(name, "all")]
        assert row["pairs"] == 2 and row["failed"] == 0
        assert row["rot_med"] < 1e-4 and row["trans_med"] < 1e-4
        assert row["auc@5"] == pytest.approx(100, abs=1e-2)
        assert row["abs_rel"] == pytest.approx(0, abs=1e-6) and row["delta_1.25"] == 1.0
    turned = rows[("turned", "all")]
    assert turned["rot_med"] == pytest.approx(2, abs=1e-4) and turned["trans_med"] == pytest.approx(0, abs=1e-4)
    # Both pairs at 2 deg: the curve runs (0, 0) -> (2, 0.5), steps to 1, stays: area 0.5 + (t - 2).
    assert turned["auc@5"] == pytest.approx(100 * 3.5 / 5, abs=1e-3)
    assert turned["auc@10"] == pytest.approx(100 * 8.5 / 10, abs=1e-3)
    assert turned["auc@20"] == pytest.approx(100 * 18.5 / 20, abs=1e-3)
    assert turned["acc@3"] == 1.0
    assert math.isnan(turned["abs_rel"])  # no depth given: an empty cell, not a zero
    fail = rows[("failing", "all")]
    assert fail["failed"] == 2 and fail["pairs"] == 2
    assert fail["auc@20"] == 0 and fail["rot_med"] == math.inf
    assert sum(rows[("oracle", g)]["pairs"] for g in ("30-50%", "50-70%", "70-100%")) == 2


def _turn(deg: float) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("y", deg, degrees=True).as_matrix()
    pose[:3, 3] = [1.0, 0.0, 0.2]
    return pose


def test_turn_ratio_of_pairs_and_its_median():
    truth = PairTruth(_turn(40))
    half = score_pair(PairEstimate(_turn(20)), truth)
    right = score_pair(PairEstimate(_turn(40)), truth)
    failed = score_pair(PairEstimate(None), truth)
    small = score_pair(PairEstimate(_turn(3)), PairTruth(_turn(10)))
    assert half["turn_ratio"] == pytest.approx(0.5) and half["rot_err"] == pytest.approx(20)
    assert math.isnan(failed["turn_ratio"]) and math.isnan(small["turn_ratio"])
    # The median over the pairs that have a ratio (0.5 and 1); failures still count in the errors.
    row = summarize_pairs([half, right, failed, small])
    assert row["turn_ratio"] == pytest.approx(0.75) and row["failed"] == 1
    assert math.isnan(summarize_pairs([small])["turn_ratio"])


def test_bucket_names():
    edges = (0.3, 0.5, 0.7, 1.0)
    assert bucket_name(0.3, edges) == "30-50%"
    assert bucket_name(0.5, edges) == "50-70%"
    assert bucket_name(1.0, edges) == "70-100%"
    assert bucket_name(0.1, edges) == "<30%"


def test_pointmap_eval_synthetic_end_to_end(tiny_model, tmp_path):
    result = run_eval("synthetic", out=tmp_path, model=tiny_model, methods=["pointmap", "sift", "colmap", "oracle"],
                      pairs=1,
                      resolution=TINY, verbose=False)
    assert [(row["method"], row["group"]) for row in result.summary] == [
        (method, group)
        for method in ("pointmap", "sift", "colmap", "oracle")
        for group in ("<30%", "30-50%", "50-70%", "70-100%", "30-100%", "all")
    ]
    rows = {row["method"]: row for row in result.summary if row["group"] == "all"}
    for row in rows.values():
        assert row["pairs"] == 1 and set(PAIR_COLUMNS) <= set(row)
    point = rows["pointmap"]
    assert point["failed"] == 0
    for key in ("rot_med", "trans_med", "abs_rel", "delta_1.25", "auc@20"):
        assert math.isfinite(point[key])
    assert rows["oracle"]["abs_rel"] == pytest.approx(0, abs=1e-6) and rows["oracle"]["auc@20"] > 99.9
    assert math.isnan(rows["sift"]["abs_rel"]) and math.isnan(rows["colmap"]["abs_rel"])
    assert rows["colmap"]["failed"] in (0, 1) and rows["colmap"]["seconds"] > 0

    table = (tmp_path / "results.md").read_text()
    assert table == to_markdown(result)
    assert table.splitlines()[2].startswith("| method | group | pairs | failed | rot_med")
    assert len([line for line in table.splitlines() if line.startswith("| pointmap")]) == 6
    covered = next(r for r in result.summary if r["method"] == "oracle" and r["group"] == "30-100%")
    assert covered["pairs"] == sum(1 for r in result.records if r["method"] == "oracle" and r["overlap"] >= 0.3)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["benchmark"] == "synthetic" and len(saved["records"]) == 4
    assert saved["settings"]["size"] == list(TINY)


def test_size_with_a_resolution_resizes_and_crops_the_renders(tiny_model, monkeypatch):
    import pointmap.eval.methods as methods

    shapes = []

    def spy(model, view1, view2, **options):
        shapes.append((view1.true_shape, view2.true_shape))
        return analyze_pair(model, view1, view2, **options)

    analyze_pair = methods.analyze_pair
    monkeypatch.setattr(methods, "analyze_pair", spy)
    run_eval("synthetic", model=tiny_model, methods=["pointmap"], pairs=1, resolution=(64, 96), verbose=False)
    run_eval("synthetic", model=tiny_model, methods=["pointmap"], pairs=1, resolution=(64, 96), size=224,
             verbose=False)
    # As rendered; then the 224 rule: shorter side to 224 (224 x 336), centre square crop.
    assert shapes == [((64, 96), (64, 96)), ((224, 224), (224, 224))]


def test_command_line_rejects_bad_input(capsys):
    assert main(["synthetic", "--methods", "sift,magic", "--pairs", "1", "--quiet"]) == 2
    assert "magic" in capsys.readouterr().err
    assert main(["synthetic", "--methods", "sift", "--resolution", "big", "--quiet"]) == 2


def _magenta_share(config: SyntheticEvalConfig) -> float:
    """Mean share of the rendered pixels that are magenta (green far below red and blue)."""
    shares = []
    for _, view1, view2, _ in held_out_pairs(config, verbose=False):
        for view in (view1, view2):
            rgb = view.image.permute(1, 2, 0).numpy() * 0.5 + 0.5  # (H, W, 3) in [0, 1]
            red_blue = np.minimum(rgb[..., 0], rgb[..., 2])
            shares.append(np.mean((rgb[..., 1] < 0.25 * red_blue) & (red_blue > 0.15)))
    return float(np.mean(shares))


def test_photo_folder_textures_the_held_out_scenes(tmp_path):
    for index in range(2):
        PIL.Image.fromarray(np.tile(np.array([255, 0, 255], np.uint8), (32, 32, 1))).save(tmp_path / f"m{index}.png")
    procedural = SyntheticEvalConfig(pairs=4, size=(48, 64))
    photos = SyntheticEvalConfig(pairs=4, size=(48, 64), photo_folder=str(tmp_path), photo_share=1.0)
    assert _magenta_share(procedural) < 0.01
    assert _magenta_share(photos) > 0.3  # every wall, fabric and facade shows the magenta photo
    with pytest.raises(ValueError, match="synthetic benchmark"):
        run_eval("synthetic-rooms", methods=["oracle"], photo_folder=tmp_path, verbose=False)


def test_default_cameras_and_kinds_keep_the_held_out_split():
    explicit = SyntheticEvalConfig(pairs=2, size=(32, 32), shadows=False, roll_deg=3.0, hfov_deg=(45.0, 80.0),
                                   kinds=("room", "objects", "street"))
    assert explicit == SyntheticEvalConfig(pairs=2, size=(32, 32), shadows=False)
    # The engine as held_out_items built it before roll_deg, hfov_deg and kinds were options.
    before = SyntheticConfig(shadows=False, seed=0, min_overlap=0.3, val_length=2 * SyntheticConfig.pairs_per_scene)
    dataset, items = held_out_items(explicit)
    assert dataset.config == before
    rendered = SyntheticPairDataset(before, split="val", size=(32, 32)).render_batch(items)
    for (_, view1, view2, overlap), (old1, old2, old_overlap) in zip(
        held_out_pairs(explicit, verbose=False), rendered, strict=True
    ):
        assert overlap == old_overlap and view1.source == old1.source
        assert torch.equal(view1.image, old1.image) and torch.equal(view2.image, old2.image)
        assert torch.equal(view2.cam2world, old2.cam2world)


def _camera_tilts(config: SyntheticEvalConfig) -> torch.Tensor:
    """|world-up component of each camera's x axis| (sine of its roll for a level look) over every view."""
    return torch.stack([
        view.cam2world[2, 0].abs() for _, view1, view2, _ in held_out_pairs(config, verbose=False)
        for view in (view1, view2)
    ])


def test_roll_deg_tilts_the_held_out_cameras():
    default = _camera_tilts(SyntheticEvalConfig(pairs=4, size=(32, 32), shadows=False))
    tilted = _camera_tilts(SyntheticEvalConfig(pairs=4, size=(32, 32), shadows=False, roll_deg=30.0))
    # A 3 deg spread: the median |roll| is 0.67 sigma = 2 deg; a 30 deg spread: 20 deg.
    assert default.max() < math.sin(math.radians(10))
    assert tilted.median() > math.sin(math.radians(5))
    with pytest.raises(ValueError, match="roll_deg=-1"):
        SyntheticEvalConfig(roll_deg=-1.0)


def _focals(config: SyntheticEvalConfig) -> torch.Tensor:
    """fx of every held-out view, pixels."""
    return torch.stack([
        view.intrinsics[0, 0] for _, view1, view2, _ in held_out_pairs(config, verbose=False)
        for view in (view1, view2)
    ])


def test_hfov_deg_narrows_the_held_out_cameras():
    width = 32
    focals = _focals(SyntheticEvalConfig(pairs=4, size=(32, width), shadows=False, hfov_deg=(20.0, 25.0)))
    # A pinhole whose image spans hfov across its width: fx = (W / 2) / tan(hfov / 2).
    fov = torch.rad2deg(2 * torch.atan((width / 2) / focals.double()))
    assert len(fov) == 8 and fov.min() >= 20.0 - 1e-3 and fov.max() <= 25.0 + 1e-3
    assert _focals(SyntheticEvalConfig(pairs=4, size=(32, width), shadows=False)).max() < focals.min()
    for bad in ((50.0, 20.0), (0.0, 30.0), (30.0, 180.0), (float("nan"), 30.0)):
        with pytest.raises(ValueError, match="hfov_deg="):
            SyntheticEvalConfig(hfov_deg=bad)


def test_kinds_choose_the_held_out_scenes():
    config = SyntheticEvalConfig(pairs=2, size=(32, 32), shadows=False, kinds=("clutter",))
    sources = [view.source for _, view1, view2, _ in held_out_pairs(config, verbose=False) for view in (view1, view2)]
    assert len(sources) == 4 and all("synthetic/clutter/" in source for source in sources)
    dataset, items = held_out_items(SyntheticEvalConfig(pairs=256, kinds=("street", "clutter")))
    assert dataset.config.kind_weights == (1.0, 1.0)
    share = np.mean([dataset.scene_of(item)[0] == "clutter" for item in items])
    assert 0.4 < share < 0.6  # equal weights: half of 256 scenes, within 3 binomial standard deviations
    with pytest.raises(ValueError, match="clutter"):  # the message lists the kinds there are
        SyntheticEvalConfig(kinds=("nope",))


def test_command_line_refuses_bad_cameras_and_kinds(capsys, tmp_path):
    assert main(["synthetic", "--methods", "oracle", "--roll-deg", "-1", "--quiet"]) == 2
    assert "roll_deg=-1" in capsys.readouterr().err
    assert main(["synthetic", "--methods", "oracle", "--kinds", "room,nope", "--quiet"]) == 2
    assert "room, objects, street, clutter" in capsys.readouterr().err
    assert main(["scannet1500", "--data", str(tmp_path), "--methods", "oracle", "--roll-deg", "5", "--quiet"]) == 2
    assert "synthetic benchmark" in capsys.readouterr().err
    assert main(["synthetic", "--methods", "oracle", "--hfov", "50,20", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "hfov_deg=(50.0, 20.0)" in err and len(err.strip().splitlines()) == 1
    assert main(["synthetic", "--methods", "oracle", "--hfov", "abc", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--hfov 'abc'" in err and len(err.strip().splitlines()) == 1
    assert main(["scannet1500", "--data", str(tmp_path), "--methods", "oracle", "--hfov", "15,45", "--quiet"]) == 2
    assert "hfov_deg: options of the synthetic benchmark" in capsys.readouterr().err
    with pytest.raises(ValueError, match="hfov_deg: options of the synthetic benchmark"):
        run_eval("synthetic-rooms", methods=["oracle"], hfov_deg=(15.0, 45.0), verbose=False)
    with pytest.raises(ValueError, match="kinds: options of the synthetic benchmark"):
        run_eval("synthetic-rooms", methods=["oracle"], kinds=["clutter"], verbose=False)


def _world_points(view) -> torch.Tensor:
    """(H, W, 3) world point of every pixel, from the view's depth, intrinsics and pose."""
    return transform_points(view.cam2world[None], depth_to_points(view.depth[None], view.intrinsics[None]))[0]


def test_quarter_turns_turn_the_held_out_pairs_with_their_cameras():
    plain = list(held_out_pairs(SyntheticEvalConfig(pairs=2, size=(32, 48), shadows=False), verbose=False))
    turned = list(held_out_pairs(SyntheticEvalConfig(pairs=2, size=(32, 48), shadows=False, quarter_turns=1),
                                 verbose=False))
    for (_, *views, _), (_, *turned_views, _) in zip(plain, turned, strict=True):
        for view, turned_view in zip(views, turned_views, strict=True):
            assert turned_view.image.shape == (3, 48, 32)  # portrait now
            assert torch.equal(turned_view.image, torch.rot90(view.image, 1, (-2, -1)))
            assert turned_view.source == view.source  # the pair's scene, for grouping
            # Every pixel still sees the same world point: depth, intrinsics and pose turned together.
            valid = turned_view.valid
            expected = torch.rot90(_world_points(view), 1, (0, 1))
            torch.testing.assert_close(_world_points(turned_view)[valid], expected[valid], atol=1e-4, rtol=1e-4)
        # The pair's relative pose is the same motion seen from turned cameras: the same angle.
        relative = [torch.linalg.inv(a.cam2world) @ b.cam2world for a, b in (views, turned_views)]
        angles = [torch.rad2deg(torch.arccos(((r[:3, :3].trace() - 1) / 2).clamp(-1, 1))) for r in relative]
        assert angles[0] > 1 and angles[1] == pytest.approx(float(angles[0]), abs=1e-3)
    with pytest.raises(ValueError, match="quarter_turns=4"):
        SyntheticEvalConfig(quarter_turns=4)
    with pytest.raises(ValueError, match="quarter_turns: options of the synthetic benchmark"):
        run_eval("synthetic-rooms", methods=["oracle"], quarter_turns=1, verbose=False)


def test_flash_share_lights_the_same_held_out_pairs_differently():
    config = SyntheticEvalConfig(pairs=2, size=(32, 48), shadows=False)
    plain = list(held_out_pairs(config, verbose=False))
    flashed = list(held_out_pairs(replace(config, flash_share=1.0), verbose=False))
    for (item, *views, overlap), (flash_item, *flash_views, flash_overlap) in zip(plain, flashed, strict=True):
        assert (item, overlap) == (flash_item, flash_overlap)
        for view, flash_view in zip(views, flash_views, strict=True):
            assert torch.equal(view.depth, flash_view.depth) and torch.equal(view.cam2world, flash_view.cam2world)
            assert (view.image - flash_view.image).abs().mean() > 0.01
    with pytest.raises(ValueError, match="flash_share=1.5"):
        SyntheticEvalConfig(flash_share=1.5)
    with pytest.raises(ValueError, match="flash_share: options of the synthetic benchmark"):
        run_eval("synthetic-rooms", methods=["oracle"], flash_share=1.0, verbose=False)
