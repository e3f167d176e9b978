"""The training sample: one view of a scene with its ground-truth geometry."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ViewSample:
    """One posed view with ground-truth depth (OpenCV camera axes).

    Attributes:
        image: (3, H, W) float32 in [-1, 1].
        depth: (H, W) float32 z-depth in scene units; 0 where unknown.
        valid: (H, W) bool, True where `depth` is ground truth.
        intrinsics: (3, 3) float32 K in pixels of `image`.
        cam2world: (4, 4) float32 camera-to-world pose.
        source: where the view came from, e.g. "synthetic/room/seed=12/cam=3" or a file path.
    """

    image: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor
    intrinsics: torch.Tensor
    cam2world: torch.Tensor
    source: str


@dataclass
class ViewBatch:
    """N views of possibly different sizes, padded at the bottom and right to one (H, W).

    The image is padded by repeating its last row and column (so filters near the true border see no
    black), depth with 0 and valid with False; `sizes` keeps each view's true (H, W).

    Attributes:
        image: (N, 3, H, W) float in [-1, 1].
        depth: (N, H, W) z-depth; 0 where unknown.
        valid: (N, H, W) bool.
        intrinsics: (N, 3, 3) K in pixels of each view's image.
        cam2world: (N, 4, 4) camera-to-world poses (OpenCV axes).
        sizes: (N, 2) int64 true (H, W) of every view.
    """

    image: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor
    intrinsics: torch.Tensor
    cam2world: torch.Tensor
    sizes: torch.Tensor

    def __len__(self) -> int:
        return self.image.shape[0]

    @staticmethod
    def stack(views: list[ViewSample]) -> ViewBatch:
        """The views as one batch on the device of the first one."""
        if not views:
            raise ValueError("ViewBatch.stack got no views; pass at least one ViewSample")
        return ViewBatch.cat([_single(view) for view in views])

    @staticmethod
    def cat(batches: list[ViewBatch]) -> ViewBatch:
        """Batches concatenated along N, each padded to the largest (H, W); on the first batch's device."""
        if not batches:
            raise ValueError("ViewBatch.cat got no batches; pass at least one ViewBatch")
        height = max(b.image.shape[-2] for b in batches)
        width = max(b.image.shape[-1] for b in batches)
        device = batches[0].image.device
        padded = [b.to(device).pad_to(height, width) for b in batches]
        return ViewBatch(**{name: torch.cat([getattr(b, name) for b in padded]) for name in _FIELDS})

    def pad_to(self, height: int, width: int) -> ViewBatch:
        """The same views padded at the bottom and right to (height, width)."""
        pad_h, pad_w = height - self.image.shape[-2], width - self.image.shape[-1]
        if pad_h < 0 or pad_w < 0:
            raise ValueError(f"pad_to({height}, {width}) is smaller than the batch's {tuple(self.image.shape[-2:])}")
        if pad_h == pad_w == 0:
            return self
        pad = (0, pad_w, 0, pad_h)
        return ViewBatch(
            image=torch.nn.functional.pad(self.image, pad, mode="replicate"),
            depth=torch.nn.functional.pad(self.depth, pad),
            valid=torch.nn.functional.pad(self.valid, pad),
            intrinsics=self.intrinsics,
            cam2world=self.cam2world,
            sizes=self.sizes,
        )

    def index(self, rows: torch.Tensor) -> ViewBatch:
        """The views `rows` (an index tensor), in that order."""
        return ViewBatch(**{name: getattr(self, name)[rows.to(getattr(self, name).device)] for name in _FIELDS})

    def sample(self, row: int, source: str) -> ViewSample:
        """View `row` as a ViewSample, cut to its true size; `source` names where it came from."""
        height, width = self.sizes[row].tolist()
        return ViewSample(image=self.image[row, :, :height, :width], depth=self.depth[row, :height, :width],
                          valid=self.valid[row, :height, :width], intrinsics=self.intrinsics[row],
                          cam2world=self.cam2world[row], source=source)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ViewBatch:
        """The same views on `device` (`sizes` stays on the CPU: it drives Python-side choices)."""
        moved = {name: getattr(self, name).to(device, non_blocking=non_blocking) for name in _FIELDS[:-1]}
        return ViewBatch(**moved, sizes=self.sizes)

    def pin_memory(self) -> ViewBatch:
        """Page-locked copies (what a DataLoader with pin_memory=True calls), for asynchronous copies to a GPU."""
        return ViewBatch(**{name: getattr(self, name).pin_memory() for name in _FIELDS[:-1]}, sizes=self.sizes)


_FIELDS = ("image", "depth", "valid", "intrinsics", "cam2world", "sizes")


def _single(view: ViewSample) -> ViewBatch:
    height, width = view.image.shape[-2:]
    return ViewBatch(image=view.image[None], depth=view.depth[None], valid=view.valid[None].bool(),
                     intrinsics=view.intrinsics[None].float(), cam2world=view.cam2world[None].float(),
                     sizes=torch.tensor([[height, width]]))
