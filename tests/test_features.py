"""XFeat + LighterGlue matches between a photo and a warped copy land where the warp puts them."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from pointmap.features import MatchConfig, match_image, match_views
from pointmap.images import load_images

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_matches_follow_a_known_warp(tmp_path):
    photo = PIL.Image.open(EXAMPLES / "office_00.jpg").convert("RGB")
    # Output pixel (x, y) shows input pixel A (x, y, 1): 6 degrees of turn, 10 % zoom in, a shift.
    angle = np.radians(6.0)
    A = np.array([[0.9 * np.cos(angle), -0.9 * np.sin(angle), 40.0], [0.9 * np.sin(angle), 0.9 * np.cos(angle), 10.0]])
    warped = photo.transform(photo.size, PIL.Image.Transform.AFFINE, tuple(A.reshape(-1)), PIL.Image.Resampling.BICUBIC)
    photo.save(tmp_path / "a.png")
    warped.save(tmp_path / "b.png")
    views = load_images([tmp_path / "a.png", tmp_path / "b.png"], size=224, verbose=False)
    matches = match_views(views, [(0, 1), (1, 0)], MatchConfig(long_side=480), verbose=False)
    assert list(matches) == [(0, 1)]
    xy_a, xy_b = matches[(0, 1)]  # processed pixels
    assert len(xy_a) > 100

    def to_photo(view, xy):
        return np.c_[xy.numpy(), np.ones(len(xy))] @ np.asarray(view.to_original).T

    # PIL's affine maps output pixel corners, pixel centres sit at +0.5: shift in and out of that convention.
    in_b = to_photo(views[1], xy_b)[:, :2] + 0.5
    expected_a = np.c_[in_b, np.ones(len(in_b))] @ A.T - 0.5
    error = np.linalg.norm(expected_a - to_photo(views[0], xy_a)[:, :2], axis=1)  # photo pixels
    assert np.median(error) < 1.5
    assert np.mean(error < 4) > 0.9


def test_frames_without_a_file_match_on_the_processed_image(tmp_path):
    PIL.Image.open(EXAMPLES / "office_00.jpg").save(tmp_path / "a.png")
    view = load_images([tmp_path / "a.png"], size=224, verbose=False)[0]
    view.path = "clip.mp4#frame=3"
    image, to_processed = match_image(view, 640)
    assert image.size == (view.true_shape[1], view.true_shape[0])
    assert np.array_equal(to_processed, np.eye(3))
    expected = ((view.img.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    assert np.abs(np.asarray(image).astype(int) - expected.astype(int)).max() <= 1


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="long_side"):
        MatchConfig(long_side=10)
