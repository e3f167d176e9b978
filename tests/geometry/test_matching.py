import pytest
import torch
from two_view_scene import make_two_view_scene

from pointmap.geometry.cameras import invert_pose, project_points, transform_points
from pointmap.geometry.matching import nearest_neighbour_search, reciprocal_matches

HEIGHT, WIDTH = 96, 128
EXACT = "donot_use_mm_for_euclid_dist"  # the matmul form of cdist rounds and breaks ties differently


@pytest.fixture(scope="module")
def scene():
    return make_two_view_scene(HEIGHT, WIDTH, focal1=116.0, focal2=132.0)


def reprojection_error(scene, matches1, matches2):
    """Pixel distance between each match in image 2 and the true projection of its image-1 point."""
    pts = scene.pts1_in_1[matches1[:, 1], matches1[:, 0]]
    in_2 = transform_points(invert_pose(scene.cam2_to_cam1[None]), pts[None])
    return (project_points(in_2, scene.K2[None])[0] - matches2.double()).norm(dim=-1)


def test_noise_free_matches_are_correct(scene):
    matches1, matches2 = reciprocal_matches(scene.pts1_in_1, scene.pts2_in_1, subsample=4)
    assert matches1.dtype == torch.long and matches1.shape == matches2.shape
    assert len(matches1) > 500  # of 768 start pixels
    error = reprojection_error(scene, matches1, matches2)
    assert float((error < 1.0).float().mean()) >= 0.99
    # Full resolution: matches are not restricted to the start grid.
    assert bool(((matches1 % 4) != 0).any())
    assert len(torch.unique(matches1[:, 1] * WIDTH + matches1[:, 0])) == len(matches1)


def test_matches_are_reciprocal_nearest_neighbours(scene):
    matches1, matches2 = reciprocal_matches(scene.pts1_in_1.float(), scene.pts2_in_1.float(), subsample=8)
    points1 = scene.pts1_in_1.float().reshape(-1, 3)
    points2 = scene.pts2_in_1.float().reshape(-1, 3)
    index1 = matches1[:, 1] * WIDTH + matches1[:, 0]
    index2 = matches2[:, 1] * WIDTH + matches2[:, 0]
    assert torch.equal(torch.cdist(points1[index1], points2, compute_mode=EXACT).argmin(-1), index2)
    assert torch.equal(torch.cdist(points2[index2], points1, compute_mode=EXACT).argmin(-1), index1)


def test_confidence_filter(scene):
    conf2 = torch.full((HEIGHT, WIDTH), 5.0)
    conf2[:, : WIDTH // 2] = 1.5
    matches1, matches2 = reciprocal_matches(scene.pts1_in_1, scene.pts2_in_1, None, conf2, min_conf=3.0)
    assert len(matches2) > 50
    assert int(matches2[:, 0].min()) >= WIDTH // 2
    empty1, empty2 = reciprocal_matches(scene.pts1_in_1, scene.pts2_in_1, None, conf2, min_conf=10.0)
    assert empty1.shape == (0, 2) and empty2.shape == (0, 2)


def test_brute_force_and_kdtree_agree():
    gen = torch.Generator().manual_seed(0)
    points, queries = torch.rand(2000, 3, generator=gen), torch.rand(700, 3, generator=gen)
    tree = nearest_neighbour_search(points, method="kdtree")(queries)
    brute = nearest_neighbour_search(points, method="brute", chunk_size=128)(queries)
    assert torch.equal(tree, brute)
    assert torch.equal(tree, torch.cdist(queries, points, compute_mode=EXACT).argmin(-1))
    with pytest.raises(ValueError, match="pick 'auto', 'kdtree' or 'brute'"):
        nearest_neighbour_search(points, method="faiss")
