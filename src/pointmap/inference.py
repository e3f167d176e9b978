"""Batched pair inference with an encoder cache, streaming results to the CPU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from pointmap.images import View
from pointmap.model.network import DUSt3R, EncodedImage

_AMP_NAMES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


@dataclass
class PairPredictions:
    """The network's predictions for directed edges (i, j).

    Attributes:
        edges: E directed pairs (i, j) of image indices.
        pts_i: (E, H, W, 3) image i's pointmap in i's camera frame (a list of (H, W, 3) when shapes differ).
        pts_j: (E, H, W, 3) image j's pointmap in i's camera frame.
        conf_i: (E, H, W) confidence of pts_i, >= 1.
        conf_j: (E, H, W) confidence of pts_j, >= 1.
    """

    edges: list[tuple[int, int]]
    pts_i: torch.Tensor | list[torch.Tensor]
    pts_j: torch.Tensor | list[torch.Tensor]
    conf_i: torch.Tensor | list[torch.Tensor]
    conf_j: torch.Tensor | list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.edges)

    @property
    def num_images(self) -> int:
        return 1 + max(max(i, j) for i, j in self.edges)

    def index(self, i: int, j: int) -> int:
        """Position of the directed edge (i, j) in `edges`."""
        try:
            return self.edges.index((i, j))
        except ValueError:
            raise KeyError(f"edge ({i}, {j}) was not predicted; the edges are {self.edges[:8]}...") from None

    def edge(self, i: int, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pts_i (H, W, 3) in i's frame, pts_j (H', W', 3) in i's frame, conf_i (H, W), conf_j (H', W'))."""
        k = self.index(i, j)
        return self.pts_i[k], self.pts_j[k], self.conf_i[k], self.conf_j[k]


def resolve_amp_dtype(amp_dtype: torch.dtype | str | None) -> torch.dtype | None:
    """None (float32), torch.bfloat16 / torch.float16, or their names "bf16" / "fp16"."""
    if amp_dtype is None or amp_dtype in (torch.bfloat16, torch.float16):
        return amp_dtype
    if isinstance(amp_dtype, str) and amp_dtype.lower() in _AMP_NAMES:
        return _AMP_NAMES[amp_dtype.lower()]
    if amp_dtype in ("fp32", "float32", torch.float32):
        return None
    raise ValueError(f"amp_dtype={amp_dtype!r}: pass None (float32), 'bf16' or 'fp16'")


def order_pairs(pairs: Sequence[tuple[int, int]], shapes: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Group directed pairs into decode groups of one (shape_i, shape_j), each edge next to its reverse.

    Returns:
        Lists of positions in `pairs`; a reverse edge (j, i) follows (i, j) within its group, so a batch
        decodes both directions together whenever the two images share a shape.
    """
    position = {pair: k for k, pair in enumerate(pairs)}
    groups: dict[tuple[tuple[int, int], tuple[int, int]], list[int]] = {}
    placed: set[int] = set()
    for k, (i, j) in enumerate(pairs):
        if k in placed:
            continue
        members = [k]
        reverse = position.get((j, i))
        if reverse is not None and reverse not in placed and reverse != k and shapes[i] == shapes[j]:
            members.append(reverse)
        placed.update(members)
        groups.setdefault((shapes[i], shapes[j]), []).extend(members)
    return list(groups.values())


def encode_views(
    model: DUSt3R, views: Sequence[View], batch_size: int, device: torch.device
) -> dict[tuple[int, int], tuple[EncodedImage, dict[int, int]]]:
    """Encode every view once, batched by shape.

    Returns:
        {(H, W): (encodings of all views of that shape on `device`, {view index: row})}.
    """
    by_shape: dict[tuple[int, int], list[int]] = {}
    for index, view in enumerate(views):
        by_shape.setdefault(tuple(view.true_shape), []).append(index)
    cache = {}
    for shape, indices in by_shape.items():
        chunks = [
            model.encode(torch.stack([views[k].img for k in indices[start : start + batch_size]]).to(device))
            for start in range(0, len(indices), batch_size)
        ]
        cache[shape] = (EncodedImage.cat(chunks), {k: row for row, k in enumerate(indices)})
    return cache


def infer_pairs(
    model: DUSt3R,
    views: Sequence[View],
    pairs: Sequence[tuple[int, int]],
    batch_size: int = 8,
    amp_dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    verbose: bool = True,
) -> PairPredictions:
    """Run the network on directed image pairs, encoding each image once.

    The official code encodes both images of every pair; here each image is encoded once (its tokens
    stay on `device`: 3 MB per 512 x 384 image for ViT-Large) and only the decoders and heads run per
    pair. Pairs are decoded `batch_size` at a time, grouped by shape, with (i, j) and (j, i) in the same
    batch; each batch's outputs go to the CPU at once, so device memory does not grow with the number
    of pairs.

    Args:
        model: a DUSt3R network; moved to `device` if given.
        views: images from `load_images`.
        pairs: directed pairs (i, j), e.g. from `make_pairs`.
        batch_size: pairs per decoder call (and images per encoder call).
        amp_dtype: None for float32, or torch.bfloat16 / torch.float16 ("bf16" / "fp16") autocast.
        device: where the network runs; default the model's device.
        verbose: show a progress bar.
    Returns:
        PairPredictions in the order of `pairs`, float32 on the CPU; stacked (E, H, W, ...) tensors when all
        views share one shape, lists of (H, W, ...) tensors otherwise.
    """
    if not views:
        raise ValueError("infer_pairs got no views; pass the list returned by load_images")
    if not pairs:
        raise ValueError("infer_pairs got no pairs; build them with make_pairs(len(views))")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: pass a positive number of pairs per batch")
    pairs = [(int(i), int(j)) for i, j in pairs]
    for i, j in pairs:
        if not (0 <= i < len(views) and 0 <= j < len(views)):
            raise ValueError(f"pair ({i}, {j}) names a missing image: there are {len(views)} views")
    amp = resolve_amp_dtype(amp_dtype)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    model.to(device)
    shapes = [tuple(view.true_shape) for view in views]

    outputs: list[tuple[torch.Tensor, ...] | None] = [None] * len(pairs)
    with (
        torch.no_grad(),
        torch.autocast(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None),
    ):
        cache = encode_views(model, views, batch_size, device)
        progress = tqdm(total=len(pairs), desc="pairs", unit="pair", disable=not verbose)
        for group in order_pairs(pairs, shapes):
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                enc1 = _gather(cache, shapes, [pairs[k][0] for k in batch])
                enc2 = _gather(cache, shapes, [pairs[k][1] for k in batch])
                out = model.decode(enc1, enc2)
                tensors = [t.float().cpu() for t in (out.pts1, out.pts2, out.conf1, out.conf2)]
                for row, k in enumerate(batch):
                    outputs[k] = tuple(t[row] for t in tensors)
                progress.update(len(batch))
        progress.close()

    pts_i, pts_j, conf_i, conf_j = (list(column) for column in zip(*outputs, strict=True))
    if len(set(shapes[i] for pair in pairs for i in pair)) == 1:
        pts_i, pts_j, conf_i, conf_j = (torch.stack(column) for column in (pts_i, pts_j, conf_i, conf_j))
    return PairPredictions(edges=pairs, pts_i=pts_i, pts_j=pts_j, conf_i=conf_i, conf_j=conf_j)


def _gather(cache: dict, shapes: Sequence[tuple[int, int]], indices: list[int]) -> EncodedImage:
    """Cached encodings of views `indices`, all of one shape, as one batch."""
    encoded, rows = cache[shapes[indices[0]]]
    return encoded[[rows[k] for k in indices]]
