"""Photos stored turned against their set are found by their matches and loaded again the right way up."""

from pathlib import Path

import numpy as np
import PIL.Image
import torch

from pointmap.features import match_views
from pointmap.images import load_images
from pointmap.orientation import OrientConfig, best_pair_matches, match_and_orient, unlinked_groups
from pointmap.pairs import make_pairs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NAMES = ["office_00.jpg", "office_01.jpg", "office_02.jpg", "office_03.jpg"]


def test_photos_stored_sideways_are_turned_back_with_the_matches_of_the_upright_ones(tmp_path):
    for name in NAMES:
        photo = PIL.Image.open(EXAMPLES / name)
        if name in ("office_02.jpg", "office_03.jpg"):  # portrait shots stored a quarter turn clockwise, no EXIF
            photo = photo.transpose(PIL.Image.Transpose.ROTATE_270)
        photo.save(tmp_path / name.replace(".jpg", ".png"))  # pixels kept exactly
    pairs = make_pairs(len(NAMES), "complete")
    views, matches = match_and_orient(load_images(tmp_path, size=224, verbose=False), pairs, 224, verbose=False)
    assert [view.quarter_turns for view in views] == [0, 0, 1, 1]
    upright = load_images([EXAMPLES / name for name in NAMES], size=224, verbose=False)
    for view, expected in zip(views, upright, strict=True):
        assert np.array_equal(view.img.numpy(), expected.img.numpy())
        np.testing.assert_array_equal(view.to_original, expected.to_original)
    expected = match_views(upright, pairs, verbose=False)
    assert matches.keys() == expected.keys()
    for pair, (xy_i, xy_j) in expected.items():
        assert len(xy_i) > 50  # 91 between office_00 and office_03, 51 deg apart
        np.testing.assert_allclose(matches[pair][0].numpy(), xy_i.numpy(), atol=1e-6)
        np.testing.assert_allclose(matches[pair][1].numpy(), xy_j.numpy(), atol=1e-6)


def groups(views, table: dict[tuple[int, int], int], used: list[int]):
    """`unlinked_groups` of matches of the given sizes (only their number counts here)."""
    matches = {pair: (torch.zeros(count, 2), torch.zeros(count, 2)) for pair, count in table.items()}
    return unlinked_groups(views, matches, best_pair_matches(matches, len(views)), used, OrientConfig())


def test_groups_the_strong_pairs_do_not_link_to_the_largest_are_tried_turned():
    views = load_images([EXAMPLES / name for name in NAMES], size=224, verbose=False)
    one_upside_down = {(0, 1): 400, (0, 2): 30, (0, 3): 350, (1, 2): 20, (1, 3): 380, (2, 3): 25}
    assert groups(views, one_upside_down, [0, 1, 2, 3]) == ([0, 1, 3], [[2]])
    two_and_two = {(0, 1): 400, (0, 2): 20, (0, 3): 10, (1, 2): 30, (1, 3): 15, (2, 3): 300}
    assert groups(views, two_and_two, [0, 1, 2, 3]) == ([0, 1], [[2, 3]])
    barely = {(0, 1): 60, (0, 2): 50, (0, 3): 5, (1, 2): 70, (1, 3): 8, (2, 3): 4}
    assert groups(views, barely, [0, 1, 2, 3])[1] == []  # too few matches to judge the set
    views[2].path = "clip.mp4#frame=2"  # frames of a video keep their orientation
    assert groups(views, one_upside_down, [0, 1, 2, 3])[1] == []
