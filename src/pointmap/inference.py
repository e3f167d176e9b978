"""Batched pair inference with an encoder cache, streaming results to the CPU."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
