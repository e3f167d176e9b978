"""Scene graphs: which image pairs the network sees (the official complete / swin / logwin / oneref graphs)."""

from __future__ import annotations

GRAPHS = ("complete", "swin-k", "swin-k-noncyclic", "logwin-k", "logwin-k-noncyclic", "oneref-k")
"""Valid `graph` names; k is an integer (window size, or reference index for oneref)."""
_DEFAULT_WINDOW = 3


def make_pairs(n: int, graph: str = "complete") -> list[tuple[int, int]]:
    """Directed image pairs of a scene graph over images 0..n-1, both orders of every edge.

    Graphs (the official DUSt3R sets, k defaults to 3 for swin / logwin and 0 for oneref):
    - complete: every pair of images.
    - swin-k: each image i with i+1 .. i+k, wrapping around the end (loop closure) unless
      "-noncyclic" is appended.
    - logwin-k: each image i with i +- 1, 2, 4, ..., 2^(k-1), wrapping unless "-noncyclic".
    - oneref-k: image k with every other image.
    Where the official code pairs an image with itself (a cyclic window as wide as the sequence),
    that pair is left out. A single image gives [(0, 0)]: the image paired with itself, as the
    official demo does, which is how DUSt3R predicts depth from one photo.

    Returns:
        Undirected edges (i, j), i < j, in sorted order, followed by the same edges reversed (j, i).
    """
    if n < 1:
        raise ValueError(f"make_pairs got n={n} images; pass at least one image")
    kind, window, cyclic = _parse(graph)
    if n == 1:
        return [(0, 0)]
    edges: set[tuple[int, int]] = set()
    if kind == "complete":
        edges = {(i, j) for i in range(n) for j in range(i + 1, n)}
    elif kind in ("swin", "logwin"):
        offsets = range(1, window + 1) if kind == "swin" else [2**p for p in range(window)]
        for i in range(n):
            for offset in offsets:
                for j in (i + offset, i - offset) if kind == "logwin" else (i + offset,):
                    j = j % n if cyclic else j
                    if 0 <= j < n and j != i:
                        edges.add((min(i, j), max(i, j)))
    else:
        if not 0 <= window < n:
            raise ValueError(f"graph {graph!r}: reference image {window} does not exist among {n} images")
        edges = {(min(window, j), max(window, j)) for j in range(n) if j != window}
    forward = sorted(edges)
    return forward + [(j, i) for i, j in forward]


def _parse(graph: str) -> tuple[str, int, bool]:
    """'swin-5-noncyclic' -> ('swin', 5, False)."""
    parts = graph.split("-")
    kind, rest = parts[0], parts[1:]
    cyclic = True
    if rest and rest[-1] == "noncyclic" and kind in ("swin", "logwin"):
        cyclic, rest = False, rest[:-1]
    valid = kind in ("swin", "logwin", "oneref") and len(rest) <= 1 and all(p.isdigit() for p in rest)
    if not (graph == "complete" or valid):
        raise ValueError(f"unknown scene graph {graph!r}; valid graphs are {', '.join(GRAPHS)} (k an integer)")
    default = 0 if kind == "oneref" else _DEFAULT_WINDOW
    window = int(rest[0]) if rest else default
    if kind in ("swin", "logwin") and window < 1:
        raise ValueError(f"graph {graph!r}: the window must be at least 1")
    return kind, window, cyclic


def connected_components(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of images 0..n-1 under `pairs`, each sorted, largest first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        for index in (i, j):
            if not 0 <= index < n:
                raise ValueError(f"pair ({i}, {j}) names image {index}, but there are {n} images (0..{n - 1})")
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda group: (-len(group), group[0]))


def check_connected(n: int, pairs: list[tuple[int, int]]) -> None:
    """Raise ValueError naming the isolated images and the components when `pairs` leave images unlinked."""
    components = connected_components(n, pairs)
    if len(components) <= 1:
        return
    isolated = [group[0] for group in components if len(group) == 1]
    detail = f"isolated images {isolated}; " if isolated else ""
    raise ValueError(
        f"the pairs split the {n} images into {len(components)} groups ({detail}components "
        f"{components}); add pairs between the groups or use a denser graph such as 'complete'"
    )
