
import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.images import View
from pointmap.inference import PairPredictions
from pointmap.pipeline import (
    _single_view_scene,
    intrinsics_to_processed,
    views_to_processed_focals,
)

TO_ORIGINAL = np.array([[2.0, 0.0, 10.0], [0.0, 2.0, 4.0], [0.0, 0.0, 1.0]])


def _view(path="a.jpg") -> View:
    return View(torch.zeros(3, 16, 24), (16, 24), path, TO_ORIGINAL, (40, 60))


def test_known_calibration_to_processed_pixels():
    views = [_view(), _view()]
    assert views_to_processed_focals(views, 600.0) == [300.0, 300.0]
    assert views_to_processed_focals(views, [500.0, 700.0]) == [250.0, 350.0]
    with pytest.raises(ValueError, match="3 focal lengths for 2 images"):
        views_to_processed_focals(views, [1.0, 2.0, 3.0])
    K_original = np.array([[600.0, 0, 34.0], [0, 600.0, 20.0], [0, 0, 1]])
    K = intrinsics_to_processed(views, K_original).numpy()
    assert K.shape == (2, 3, 3)
    np.testing.assert_allclose(K[1], [[300.0, 0, 12.0], [0, 300.0, 8.0], [0, 0, 1]], atol=1e-5)
    with pytest.raises(ValueError, match="pass \\(3, 3\\) or \\(N, 3, 3\\)"):
        intrinsics_to_processed(views, np.eye(4))


def test_single_image_scene_recovers_focal_and_depth():
    height, width, focal = 16, 24, 20.0
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    depth = 2.0 + 0.05 * xs + 0.02 * ys  # a tilted plane
    pts = np.stack([(xs - width / 2) / focal * depth, (ys - height / 2) / focal * depth, depth], axis=-1)
    pts = torch.tensor(pts, dtype=torch.float32)[None]
    conf = torch.full((1, height, width), 2.0)
    preds = PairPredictions([(0, 0)], pts, pts.clone(), conf, torch.ones(1, height, width))
    scene = _single_view_scene(preds, None)
    assert scene.intrinsics[0, 0, 0].item() == pytest.approx(focal, rel=1e-4)
    np.testing.assert_allclose(scene.intrinsics[0, :2, 2].numpy(), [width / 2, height / 2])
    np.testing.assert_allclose(scene.depths[0].numpy(), depth, rtol=1e-6)
    assert torch.equal(scene.poses[0], torch.eye(4))
    assert _single_view_scene(preds, 33.0).intrinsics[0, 1, 1].item() == pytest.approx(33.0)


def test_single_image_scene_has_the_photo_centre_and_square_photo_pixels(tmp_path):
    from pointmap.images import load_images

    Image.new("RGB", (640, 480), (90, 120, 150)).save(tmp_path / "photo.png")
    (view,) = load_images([tmp_path / "photo.png"], size=224, verbose=False)
    height, width = view.true_shape
    pts = torch.ones(1, height, width, 3)
    preds = PairPredictions([(0, 0)], pts, pts.clone(), torch.ones(1, height, width), torch.ones(1, height, width))
    scene = _single_view_scene(preds, 200.0, view)
    scene.views = [view]
    K = scene.original_intrinsics()[0].numpy()
    np.testing.assert_allclose(K[:2, 2], [319.5, 239.5], atol=1e-4)  # the photo's centre, integer pixel centres
    assert K[0, 0] == pytest.approx(K[1, 1], rel=1e-6)  # square photo pixels although the resize is not uniform
    assert K[0, 0] == pytest.approx(200.0 * view.to_original[0, 0], rel=1e-6)


def tiny_model():
    from pointmap.model.config import ModelConfig
    from pointmap.model.network import DUSt3R

    torch.manual_seed(0)
    config = ModelConfig(
        image_size=224, enc_embed_dim=64, enc_depth=2, enc_num_heads=4, dec_embed_dim=48, dec_depth=2,
        dec_num_heads=4, head_type="linear",
    )
    return DUSt3R(config).eval()


def write_photos(folder, count=3, size=(96, 72)):
    """Seeded random-texture photos (W, H) = size."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{index}.png")
    return folder


def test_reconstruct_end_to_end(tmp_path):
    from pointmap.pipeline import reconstruct

    photos = write_photos(tmp_path / "photos")
    scene = reconstruct(photos, model=tiny_model(), iterations=20, min_conf=1.0, verbose=False)
    assert len(scene) == 3 and len(scene.views) == 3
    assert scene.poses.shape == (3, 4, 4)
    for view, depth, mask, color in zip(scene.views, scene.depths, scene.masks, scene.colors, strict=True):
        assert view.original_shape == (72, 96)
        assert depth.shape == mask.shape == color.shape[:2] == view.true_shape
        assert 0 <= color.min() and color.max() <= 1


def test_reconstruct_single_image_warns(tmp_path):
    from pointmap.pipeline import reconstruct

    photo = write_photos(tmp_path / "photos", count=1) / "img_0.png"
    with pytest.warns(UserWarning, match="single image"):
        scene = reconstruct([photo], model=tiny_model(), verbose=False)
    assert len(scene) == 1 and scene.intrinsics[0, 0, 0] > 0


def test_reconstruct_reports_where_its_time_went(tmp_path, capsys):
    from pointmap.pipeline import reconstruct

    photos = write_photos(tmp_path / "photos")
    reconstruct(photos, model=tiny_model(), iterations=20, min_conf=1.0, matcher=None, verbose=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("time: ")]
    assert len(lines) == 1
    stages = [part.rsplit(" ", 2)[0] for part in lines[0].removeprefix("time: ").split(", ")]
    assert stages == ["network", "alignment and cameras"]  # no matcher: no matching time
