"""Ground-truth pointmaps of a pair in view 1's frame, and batching at one resolution."""

from __future__ import annotations

import pytest
import torch

from pointmap.data.pairs import pair_pointmaps, stack_pairs
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


def test_stack_pairs_batches_the_pairs_with_their_pointmaps_and_unknown_overlap_as_nan():
    shifted = torch.eye(4)
    shifted[:3, 3] = torch.tensor([0.5, -1.0, 2.0])
    near, far = _view(torch.eye(4)), _view(shifted, depth=3.0)
    batch = stack_pairs([(near, far, 0.5), (far, near, None)])
    assert len(batch) == 2 and batch.img1.shape == (2, 3, 4, 6) and batch.pts2.shape == (2, 4, 6, 3)
    assert batch.overlap[0] == 0.5 and torch.isnan(batch.overlap[1])
    # Pixel (x=5, y=2) of `far`: ray (1, 0, 1) at depth 3 -> (3, 0, 3) in its frame, shifted to (3.5, -1, 5).
    torch.testing.assert_close(batch.pts2[0, 2, 5], torch.tensor([3.5, -1.0, 5.0]))
    # The same pixel of `near` at depth 2 is (2, 0, 2), seen from `far` as (1.5, 1, 0).
    torch.testing.assert_close(batch.pts2[1, 2, 5], torch.tensor([1.5, 1.0, 0.0]))
    torch.testing.assert_close(batch.pts1[1], pair_pointmaps(far, near)[0])
    assert torch.equal(batch.cam2world1[1], shifted) and torch.equal(batch.intrinsics2[0], far.intrinsics)
