"""A photo stored turned against its set is found by its matches and loaded again the right way up."""

from pathlib import Path

import numpy as np
import PIL.Image

from pointmap.features import match_views
from pointmap.images import load_images
from pointmap.orientation import OrientConfig, match_and_orient, poorly_matched
from pointmap.pairs import make_pairs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["room_00.jpg", "room_01.jpg", "room_02.jpg"]


def test_a_photo_stored_sideways_is_turned_back_with_the_matches_of_the_upright_one(tmp_path):
    for name in NAMES:
        photo = PIL.Image.open(EXAMPLES / name)
        if name == "room_02.jpg":  # stored a quarter turn clockwise, as a portrait shot without EXIF would be
            photo = photo.transpose(PIL.Image.Transpose.ROTATE_270)
        photo.save(tmp_path / name.replace(".jpg", ".png"))  # pixels kept exactly
    pairs = make_pairs(3, "complete")
    views, matches = match_and_orient(load_images(tmp_path, size=224, verbose=False), pairs, 224, verbose=False)
    assert [view.quarter_turns for view in views] == [0, 0, 1]
    upright = load_images([EXAMPLES / name for name in NAMES], size=224, verbose=False)
    assert np.array_equal(views[2].img.numpy(), upright[2].img.numpy())
    np.testing.assert_array_equal(views[2].to_original, upright[2].to_original)
    expected = match_views(upright, pairs, verbose=False)
    assert matches.keys() == expected.keys()
    for pair, (xy_i, xy_j) in expected.items():
        assert len(xy_i) > 100
        np.testing.assert_allclose(matches[pair][0].numpy(), xy_i.numpy(), atol=1e-6)
        np.testing.assert_allclose(matches[pair][1].numpy(), xy_j.numpy(), atol=1e-6)


def test_only_photos_far_below_a_matched_set_are_tried_turned(tmp_path):
    views = load_images([EXAMPLES / name for name in NAMES * 2][:4], size=224, verbose=False)
    config = OrientConfig()
    assert poorly_matched(views, np.array([400, 380, 30, 350]), [0, 1, 2, 3], config) == [2]
    assert poorly_matched(views, np.array([400, 380, 30, 350]), [0, 1, 3], config) == []  # 2 is in no pair
    assert poorly_matched(views, np.array([60, 50, 5, 70]), [0, 1, 2, 3], config) == []  # a set that barely matches
    views[2].path = "clip.mp4#frame=2"  # frames of a video keep their orientation
    assert poorly_matched(views, np.array([400, 380, 30, 350]), [0, 1, 2, 3], config) == []
