"""Ground-truth pointmaps of a pair in view 1's frame, and batching at one resolution."""

from __future__ import annotations

import pytest
import torch

from pointmap.data.augment import AugmentConfig
from pointmap.data.pairs import PairCollate, pair_pointmaps, stack_pairs
from pointmap.data.sample import ViewSample


def _view(cam2world: torch.Tensor, depth: float = 2.0, size=(4, 6)) -> ViewSample:
    K = torch.tensor([[2.0, 0, 3.0], [0, 2.0, 2.0], [0, 0, 1]])
    return ViewSample(image=torch.zeros(3, *size), depth=torch.full(size, depth), valid=torch.ones(size, dtype=bool),
                      intrinsics=K, cam2world=cam2world, source="test")


def test_pointmaps_in_view1_frame_closed_form():
    # View 1 at the world origin rotated 90 degrees about y; view 2 one unit along world x, unrotated.
    rot_y = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    pose1 = torch.eye(4)
    pose1[:3, :3] = rot_y
    pose2 = torch.eye(4)
    pose2[0, 3] = 1.0
    pts1, pts2 = pair_pointmaps(_view(pose1), _view(pose2))
    # Pixel (x=5, y=2) of view 2: ray ((5 - 3) / 2, 0, 1) at depth 2 -> (2, 0, 2) in cam 2, (3, 0, 2) in world.
    assert pts1[2, 5].tolist() == [2.0, 0.0, 2.0]
    # World -> cam 1 is rot_y^T: (3, 0, 2) -> (-2, 0, 3).
    torch.testing.assert_close(pts2[2, 5], torch.tensor([-2.0, 0.0, 3.0]))


def test_stack_pairs_refuses_mixed_shapes():
    with pytest.raises(ValueError, match="crop them to one size"):
        stack_pairs([(_view(torch.eye(4)), _view(torch.eye(4), size=(4, 8)), 0.5)])


def test_collate_draws_one_resolution_per_batch_from_the_batch_seed():
    collate = PairCollate(((16, 16), (16, 32), (32, 16)), AugmentConfig())
    big = lambda: _view(torch.eye(4), size=(40, 40))  # noqa: E731
    resolutions = {collate.resolution(seed) for seed in range(40)}
    assert resolutions == {(16, 16), (16, 32), (32, 16)}
    batch = collate([(big(), big(), 0.5, 1, 7), (big(), big(), None, 2, 7)])
    assert batch.img1.shape == (2, 3, *collate.resolution(7)) and batch.pts2.shape == (2, *collate.resolution(7), 3)
    assert batch.overlap[0] == 0.5 and torch.isnan(batch.overlap[1])
    assert len(batch) == 2
    evaluation = PairCollate(((16, 32),))([(big(), big(), 0.5, 0, 0)])
    assert evaluation.img1.shape == (1, 3, 16, 32)
