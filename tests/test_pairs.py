import itertools

import pytest

from pointmap.pairs import GRAPHS, check_connected, connected_components, make_pairs


def undirected(pairs):
    return {(min(i, j), max(i, j)) for i, j in pairs}


def circular(i, j, n):
    return min(abs(i - j), n - abs(i - j))


def test_hand_worked_graphs():
    assert undirected(make_pairs(4, "complete")) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert undirected(make_pairs(6, "swin-1-noncyclic")) == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}
    assert undirected(make_pairs(6, "swin-1")) == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5)}
    assert undirected(make_pairs(5, "oneref-2")) == {(0, 2), (1, 2), (2, 3), (2, 4)}
    assert undirected(make_pairs(9, "logwin-2-noncyclic")) == {(i, i + 1) for i in range(8)} | {
        (i, i + 2) for i in range(7)
    }
    # A cyclic window as wide as the sequence: the official code also emits (i, i); we leave those out.
    assert undirected(make_pairs(3, "swin-3")) == {(0, 1), (0, 2), (1, 2)}
    # Defaults: window 3, reference 0.
    assert make_pairs(7, "swin") == make_pairs(7, "swin-3")
    assert make_pairs(7, "logwin-noncyclic") == make_pairs(7, "logwin-3-noncyclic")
    assert make_pairs(4, "oneref") == make_pairs(4, "oneref-0")


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_window_graphs_match_their_definition(n, k):
    everything = list(itertools.combinations(range(n), 2))
    assert undirected(make_pairs(n, f"swin-{k}")) == {(i, j) for i, j in everything if circular(i, j, n) <= k}
    assert undirected(make_pairs(n, f"swin-{k}-noncyclic")) == {(i, j) for i, j in everything if j - i <= k}
    offsets = [2**p for p in range(k)]
    assert undirected(make_pairs(n, f"logwin-{k}-noncyclic")) == {(i, j) for i, j in everything if j - i in offsets}
    cyclic_distances = {min(o % n, n - o % n) for o in offsets if o % n}
    assert undirected(make_pairs(n, f"logwin-{k}")) == {
        (i, j) for i, j in everything if circular(i, j, n) in cyclic_distances
    }


@pytest.mark.parametrize("graph", ["complete", "swin-2", "swin-4-noncyclic", "logwin-3", "oneref-1"])
def test_symmetrised_without_duplicates_in_a_fixed_order(graph):
    pairs = make_pairs(9, graph)
    half = len(pairs) // 2
    forward, backward = pairs[:half], pairs[half:]
    assert forward == sorted(forward) and all(i < j for i, j in forward)
    assert backward == [(j, i) for i, j in forward]
    assert len(set(pairs)) == len(pairs)
    assert make_pairs(9, graph) == pairs


def test_single_image_pairs_with_itself():
    assert make_pairs(1) == [(0, 0)]
    check_connected(1, make_pairs(1))


def test_graph_sizes():
    assert len(make_pairs(10, "complete")) == 2 * 45
    assert len(make_pairs(10, "swin-2")) == 2 * 20
    assert len(make_pairs(10, "oneref-3")) == 2 * 9
    assert len(make_pairs(10, "logwin-3-noncyclic")) == 2 * (9 + 8 + 6)


def test_bad_graph_names_list_the_valid_ones():
    for name in ("star", "swin-x", "oneref-noncyclic", "complete-3", "swin-2-3"):
        with pytest.raises(ValueError, match=f"unknown scene graph '{name}'; valid graphs are complete, swin-k"):
            make_pairs(5, name)
    assert "oneref-k" in GRAPHS
    with pytest.raises(ValueError, match="reference image 7 does not exist among 5 images"):
        make_pairs(5, "oneref-7")
    with pytest.raises(ValueError, match="window must be at least 1"):
        make_pairs(5, "swin-0")
    with pytest.raises(ValueError, match="n=0"):
        make_pairs(0)


def test_check_connected_names_isolated_images_and_components():
    pairs = [(0, 1), (1, 0), (2, 3), (3, 2)]
    assert connected_components(6, pairs) == [[0, 1], [2, 3], [4], [5]]
    with pytest.raises(ValueError, match=r"into 4 groups \(isolated images \[4, 5\]; components \[\[0, 1\], \[2, 3\]"):
        check_connected(6, pairs)
    with pytest.raises(ValueError, match=r"components \[\[0, 1\], \[2, 3\]\]"):
        check_connected(4, pairs)
    check_connected(4, pairs + [(1, 2)])
    for graph in ("complete", "swin-1-noncyclic", "logwin-1", "oneref-3"):
        check_connected(7, make_pairs(7, graph))
    with pytest.raises(ValueError, match=r"pair \(0, 9\) names image 9, but there are 4 images"):
        check_connected(4, [(0, 9)])
