"""Pairs of views of procedural scenes with exact depth, in the training sample format."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..sample import ViewSample
from .cameras import intrinsics_from_fov, look_at, open_view, overlap
from .capture import views_to_samples
from .palette import PHOTO_SHARE
from .render import render_depth, render_views
from .sampling import (
    FIRST_NORMALS,
    FIRST_UNIFORMS,
    SECOND_NORMALS,
    SECOND_UNIFORMS,
    LayoutBatch,
    clear_eyes,
    draw_blocks,
    first_views,
    second_views,
)
from .scenes import (
    SyntheticScene,
    make_scene,
    packed_to,
    repeat_scenes,
    stack_scenes,
    to_device,
)
from .textures import load_photo_bank, photo_paths


@dataclass(frozen=True)
class SyntheticConfig:
    """What the synthetic pair dataset draws."""

    kinds: tuple[str, ...] = ("room", "objects", "street")
    """Scene kinds to mix, from SCENE_KINDS (see make_scene). "clutter" came later and is asked for by name, so
    the datasets and held-out splits of the first three kinds stay as they were."""
    kind_weights: tuple[float, ...] = (0.45, 0.3, 0.25)
    """Relative frequency of each kind."""
    train_length: int = 100_000
    """Number of training items (an epoch)."""
    val_length: int = 1_000
    """Number of validation items."""
    pairs_per_scene: int = 8
    """Consecutive items that share one scene (different cameras)."""
    min_overlap: float = 0.3
    """Smallest accepted fraction of view 1 visible in view 2."""
    max_overlap: float = 0.95
    """Largest accepted overlap (near-duplicate views teach little)."""
    first_candidates: int = 4
    """First-view candidates probed per pair; the first with an open view (see cameras.open_view) is kept."""
    candidates: int = 8
    """Second-view candidates probed per pair; the first one in the overlap range is kept (see wide_share)."""
    wide_share: float = 0.0
    """Share of items that keep instead the candidate in the overlap range that turns furthest from the first
    view: the default draw turns a median 20 deg between the two views, photos of one object or room taken
    around it 40-55 deg. 0 keeps every item's cameras as they were."""
    probe_size: tuple[int, int] = (24, 32)
    """(H, W) of the depth-only renders that measure candidate overlap."""
    hfov_deg: tuple[float, float] = (45.0, 80.0)
    """Range of horizontal fields of view."""
    roll_deg: float = 3.0
    """Standard deviation of each camera's roll about its optical axis (hand-held photos tilt; quarter turns
    of whole photos are an augmentation, AugmentConfig.quarter_turn_prob)."""
    object_orbit_m: tuple[float, float] = (1.2, 3.5)
    """(near, far) distance of the first camera from the objects' centre in "objects" scenes, metres (the second
    camera stands 0.75-1.3 times as far). Real object photos are close-ups: closer orbits are harder
    (`object_capture(distance=...)`)."""
    object_min_median_m: float = 1.0
    """In "objects" scenes, a view is kept only if its median depth lies beyond this, metres (the other kinds keep
    their own threshold, Layout.min_median_depth): close orbits (object_orbit_m under ~1.5 m) need less, as the
    objects fill the view. Cameras stay 0.3 m clear of every surface whatever this is (cameras.open_view)."""
    shadows: bool = True
    """Cast shadows of each scene's main light."""
    supersample: int = 1
    """Anti-aliasing rays per pixel side (colour only)."""
    compiled: bool = False
    """torch.compile the texture patterns (and the ray culling where Triton is missing): faster on GPUs,
    about a minute to compile once per process."""
    group_by_kind: bool = True
    """Render each scene kind of a batch as its own stack (streets hold about three times the shapes of rooms:
    one stack pads every scene to the most shapes). False: one stack for the whole batch, about a third of
    the ops and host syncs per render call, more padded shapes to skip."""
    flash_share: float = 0.0
    """Share of items photographed with a flash, as close-ups indoors often are: each view is lit by a white
    point light at its own camera (so the two views of a pair are lit differently, and light falls off with
    distance), and the scene's own light is dimmed as a flash exposure leaves it. 0 leaves every item as it was."""
    flash_exposure: tuple[float, float] = (0.6, 1.4)
    """Range of the flash light arriving at the near quarter of the view (the first quartile of its depth, where a
    flash photo's subject is), as a flash metered on the subject sets it (in units of the scenes' light: their
    ceiling lights bring about 1 to the floor). Nearer surfaces get more (inverse square), the background less."""
    flash_scene_light: tuple[float, float] = (0.02, 0.3)
    """Range of the scale of the scene's own light (lights, sky, emission) in flash items."""
    photo_folder: str | None = None
    """A folder of photos used as some surfaces' textures; None for procedural textures only."""
    photo_share: float = PHOTO_SHARE
    """With photo_folder: share of the wall, fabric, vivid and facade materials textured with a photo."""
    seed: int = 0
    """Shifts every scene and camera: another seed, another dataset."""

    def __post_init__(self) -> None:
        for name in ("wide_share", "photo_share", "flash_share"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name}={share}: pass a share between 0 and 1")


@dataclass
class CameraCandidates:
    """Candidate cameras of N items, drawn on the CPU from their random blocks (no render needed yet), and the
    items' flash light, drawn from the same blocks.

    Second-view candidates are drawn around every first-view candidate, so that the device picks both
    without a round trip to the host. Intrinsics are made here too: the device only gathers.

    Attributes:
        first_pose: (N, F, 4, 4) cam2world of the first-view candidates.
        first_k: (N, F, 3, 3) their intrinsics at the rendered size.
        first_probe_k: (N, F, 3, 3) their intrinsics at the probe size.
        second_pose: (N, F, C, 4, 4) second-view candidates around each first-view candidate.
        second_k: (N, F, C, 3, 3) their intrinsics at the rendered size.
        second_probe_k: (N, F, C, 3, 3) their intrinsics at the probe size.
        second_clear: (N, F, C) bool, whether each second eye stands clear of the obstacles.
        prefer_wide: (N,) bool, whether the item keeps its widest-turning second view (see wide_share).
        flash: (N,) the item's flash exposure (light arriving at each view's first depth quartile), 0 without one.
        scene_light: (N,) the scale of the scene's own light in the item's views, 1 without a flash.
    """

    first_pose: Tensor
    first_k: Tensor
    first_probe_k: Tensor
    second_pose: Tensor
    second_k: Tensor
    second_probe_k: Tensor
    second_clear: Tensor
    prefer_wide: Tensor
    flash: Tensor
    scene_light: Tensor

    def to(self, device: torch.device) -> CameraCandidates:
        """The candidates on `device`, moved in one copy per dtype (see scenes.packed_to)."""
        tensors = list(vars(self).values())
        if all(t.device == device for t in tensors):
            return self
        return CameraCandidates(*packed_to(tensors, device))


@dataclass
class GroupJob:
    """Items of one scene kind (or of all kinds, see SyntheticConfig.group_by_kind), prepared on the CPU
    (see SyntheticPairDataset.prepare).

    Attributes:
        positions: where the items stand in the job.
        indices: the items' dataset indices.
        scenes: the items' scenes, stacked (N scenes, repeated where items share one), without the photo bank.
        names: the items' source names, "synthetic/<kind>/seed=<seed>/pair=<p>".
        cameras: the items' candidate cameras, drawn from each item's own random numbers.
    """

    positions: list[int]
    indices: list[int]
    scenes: SyntheticScene
    names: list[str]
    cameras: CameraCandidates


@dataclass
class RenderJob:
    """A batch of items prepared for rendering: indices and one GroupJob per scene kind (or one in all, see
    SyntheticConfig.group_by_kind)."""

    indices: list[int]
    groups: list[GroupJob]


class _PreparedJobs(torch.utils.data.Dataset):
    """Batch b -> dataset.prepare(batches[b]), for DataLoader workers."""

    def __init__(self, dataset: SyntheticPairDataset, batches: list[list[int]]):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> RenderJob:
        return self.dataset.prepare(self.batches[b])


def scene_seed(split: str, scene_index: int, base_seed: int = 0) -> int:
    """Seed of a scene: even for "train", odd for "val", so the two splits never share a scene."""
    if split not in ("train", "val"):
        raise ValueError(f"split {split!r} unknown; pass 'train' or 'val'")
    return 2 * (scene_index + base_seed * 100_000_000) + (split == "val")


class SyntheticPairDataset(torch.utils.data.Dataset):
    """Image pairs of procedural scenes with enough overlap; item i is the same for the same config.

    ds[i] -> (view1, view2, overlap): two ViewSamples with images (3, H, W) in [-1, 1], exact depth, valid
    masks (False on sky), intrinsics and cam2world; overlap is the fraction of view 1's valid pixels that
    view 2 sees. `render_batch(indices)` renders many items in one batched pass (what a GPU wants).
    """

    def __init__(self, config: SyntheticConfig, split: str = "train", size: tuple[int, int] = (224, 224), device=None):
        if len(config.kinds) != len(config.kind_weights):
            raise ValueError("SyntheticConfig: kinds and kind_weights differ in length; give one weight per kind")
        scene_seed(split, 0)  # validates split
        self.config, self.split, self.size = config, split, tuple(size)
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._photos: Tensor | None = None
        self._photo_count: int | None = None
        self._scene_cache: dict[int, SyntheticScene] = {}

    def __len__(self) -> int:
        return self.config.train_length if self.split == "train" else self.config.val_length

    def __getitem__(self, index: int) -> tuple[ViewSample, ViewSample, float]:
        return self.render_batch([index])[0]

    def scene_of(self, index: int) -> tuple[str, int]:
        """(kind, seed) of the scene item `index` is drawn from."""
        seed = scene_seed(self.split, index // self.config.pairs_per_scene, self.config.seed)
        kind = random.Random(seed).choices(self.config.kinds, self.config.kind_weights)[0]
        return kind, seed

    def _scene(self, kind: str, seed: int) -> SyntheticScene:
        """The scene (kind, seed) on the CPU, without the photo bank (only its size picks the photo
        materials): scenes are built where batches are prepared and join the bank on the device."""
        if seed not in self._scene_cache:
            if len(self._scene_cache) > 1024:
                self._scene_cache.clear()
            self._scene_cache[seed] = make_scene(
                kind, seed, device="cpu", num_photos=self._num_photos(), photo_share=self.config.photo_share
            )
        return self._scene_cache[seed]

    def _num_photos(self) -> int:
        if self._photo_count is None:
            folder = self.config.photo_folder
            self._photo_count = 0 if folder is None else len(photo_paths(folder))
        return self._photo_count

    def _photo_bank(self) -> Tensor | None:
        if self.config.photo_folder is not None and self._photos is None:
            self._photos = load_photo_bank(self.config.photo_folder, device=self.device)
        return self._photos

    def _random_blocks(self, indices: list[int], seeds: Sequence[int]) -> tuple[Tensor, ...]:
        """Each item's random numbers, from its own generator (item index, its scene's seed): first-view
        (N, F, ...) and second-view (N, C, ...) uniform and normal blocks, then (N,) whether it prefers a
        wide pair (drawn after them, so that the blocks do not depend on wide_share), then (N,) its flash
        exposure and scene light scale (drawn last: the cameras do not depend on flash_share)."""
        config = self.config
        blocks = []
        for index, seed in zip(indices, seeds, strict=True):
            generator = torch.Generator().manual_seed(seed * 1_000 + index % config.pairs_per_scene)
            first = draw_blocks(generator, config.first_candidates, FIRST_UNIFORMS, FIRST_NORMALS)
            second = draw_blocks(generator, config.candidates, SECOND_UNIFORMS, SECOND_NORMALS)
            wide = torch.rand((), generator=generator) < config.wide_share
            with_flash, exposure, dimmed = torch.rand(3, generator=generator)
            lit = with_flash < config.flash_share
            (low, high), (dim_low, dim_high) = config.flash_exposure, config.flash_scene_light
            flash = torch.where(lit, low + (high - low) * exposure, 0.0)
            scene_light = torch.where(lit, dim_low + (dim_high - dim_low) * dimmed, 1.0)
            blocks.append((*first, *second, wide, flash, scene_light))
        return tuple(torch.stack(column) for column in zip(*blocks, strict=True))

    def _choose(self, overlaps: Tensor, usable: Tensor, turn_cos: Tensor, prefer_wide: Tensor) -> Tensor:
        """(N,) index of the kept candidate per item from (N, C) probe overlaps, usability and cosines of
        the candidates' rotation angles from the first view, and (N,) whether the item prefers a wide pair."""
        overlaps = torch.where(usable, overlaps, -1.0)
        in_range = (overlaps >= self.config.min_overlap) & (overlaps <= self.config.max_overlap)
        below = torch.where(overlaps <= self.config.max_overlap, overlaps, -1.0)
        widest = torch.where(in_range, turn_cos, 2.0).argmin(-1)
        in_range_pick = torch.where(prefer_wide, widest, _first_true(in_range))
        return torch.where(in_range.any(-1), in_range_pick, below.argmax(-1))

    def render_batch(self, indices: Sequence[int]) -> list[tuple[ViewSample, ViewSample, float]]:
        """Items `indices`, rendered together: the same values as one by one (= render(prepare(indices)))."""
        return self.render(self.prepare(indices))

    def prepare(self, indices: Sequence[int]) -> RenderJob:
        """The CPU side of rendering items `indices`: scenes built and stacked, cameras' random numbers drawn.

        Items are grouped by scene kind (unless config.group_by_kind is False): a stack pads every scene
        to its largest shape count, and streets hold about three times the shapes of rooms. The job is
        plain CPU tensors, so DataLoader workers can prepare coming batches while the device renders (see
        `stream`).
        """
        for index in indices:
            if not 0 <= index < len(self):
                raise IndexError(f"synthetic {self.split} item {index} out of range; the split has {len(self)} items")
        of_item = [self.scene_of(index) for index in indices]  # (kind, seed) per item
        by_kind: dict[str, list[int]] = {}
        for position, (kind, _) in enumerate(of_item):
            by_kind.setdefault(kind if self.config.group_by_kind else "", []).append(position)
        groups = []
        for positions in by_kind.values():
            group = [indices[p] for p in positions]
            kinds, seeds = zip(*(of_item[p] for p in positions), strict=True)
            distinct = list(dict.fromkeys(seeds))
            scenes = [self._scene(kinds[seeds.index(seed)], seed) for seed in distinct]
            repeat = [distinct.index(seed) for seed in seeds]
            blocks = self._random_blocks(group, seeds)
            stacked = stack_scenes(scenes) if len(scenes) > 1 else scenes[0]
            groups.append(
                GroupJob(
                    positions=positions,
                    indices=group,
                    # Repeated here, on the CPU: on the device it would cost an index_select per tensor.
                    scenes=stacked if len(scenes) == len(group) else repeat_scenes(stacked, torch.tensor(repeat)),
                    cameras=self._candidates(LayoutBatch.of([scenes[r].layouts[0] for r in repeat]), blocks),
                    names=[
                        f"synthetic/{kind}/seed={seed}/pair={index % self.config.pairs_per_scene}"
                        for kind, seed, index in zip(kinds, seeds, group, strict=True)
                    ],
                )
            )
        return RenderJob(indices=list(indices), groups=groups)

    def render(self, job: RenderJob) -> list[tuple[ViewSample, ViewSample, float]]:
        """Render a prepared job on the dataset's device: (view1, view2, overlap) per item, in job order."""
        items: list = [None] * len(job.indices)
        rendered = [self._render_group(group) for group in job.groups]
        # Every group's overlaps read back at once: one host sync per call.
        overlaps = torch.cat([group_overlap for _, group_overlap in rendered]).tolist() if rendered else []
        positions = [position for group in job.groups for position in group.positions]
        views = [pair for group_views, _ in rendered for pair in group_views]
        for position, (view1, view2), value in zip(positions, views, overlaps, strict=True):
            items[position] = (view1, view2, value)
        return items

    def stream(self, batches: Iterable[Sequence[int]], workers: int = 4) -> Iterator[list]:
        """render_batch(b) for each batch b of indices, with `workers` processes preparing the next ones.

        Scene building and stacking is Python work of a few milliseconds per scene: done in the same
        process it would leave a GPU idle for half of the time. Workers never touch the device.
        """
        batches = [list(b) for b in batches]
        if workers == 0:
            yield from (self.render_batch(b) for b in batches)
            return
        jobs = torch.utils.data.DataLoader(
            _PreparedJobs(self, batches), batch_size=None, num_workers=workers, prefetch_factor=2
        )
        for job in jobs:
            yield self.render(job)

    def _candidates(self, layouts: LayoutBatch, blocks: tuple[Tensor, ...]) -> CameraCandidates:
        """Every candidate camera of N items (CPU): F first views, and C second views around each of them."""
        first_u, first_n, second_u, second_n, prefer_wide, flash, scene_light = blocks
        height, width = self.size
        probe_h, probe_w = self.config.probe_size
        eye, target, fov, roll = first_views(
            layouts, first_u, first_n, self.config.hfov_deg, self.config.roll_deg, self.config.object_orbit_m
        )
        poses = look_at(eye.reshape(-1, 3), target.reshape(-1, 3), roll.reshape(-1)).reshape(*fov.shape, 4, 4)
        # One second_views call per first candidate, (N, C) each: the same shapes as drawing around the
        # picked candidate only, so the same float rounding (CPU atan2 rounds by position in the batch).
        count = self.config.candidates
        second = []
        for f in range(fov.shape[1]):
            eye2, target2, fov2, roll2 = second_views(
                layouts, eye[:, f], target[:, f], second_u, second_n, self.config.hfov_deg, self.config.roll_deg
            )
            pose2 = look_at(eye2.reshape(-1, 3), target2.reshape(-1, 3), roll2.reshape(-1)).reshape(-1, count, 4, 4)
            second.append((pose2, fov2, clear_eyes(layouts.obstacles, eye2)))
        pose2, fov2, clear2 = (torch.stack(column, 1) for column in zip(*second, strict=True))

        def intrinsics(fovs: Tensor, h: int, w: int) -> Tensor:
            return intrinsics_from_fov(fovs.reshape(-1), h, w).reshape(*fovs.shape, 3, 3)

        return CameraCandidates(
            first_pose=poses,
            first_k=intrinsics(fov, height, width),
            first_probe_k=intrinsics(fov, probe_h, probe_w),
            second_pose=pose2,
            second_k=intrinsics(fov2, height, width),
            second_probe_k=intrinsics(fov2, probe_h, probe_w),
            second_clear=clear2,
            prefer_wide=prefer_wide,
            flash=flash,
            scene_light=scene_light,
        )

    def _render_group(self, group: GroupJob) -> tuple[list[tuple[ViewSample, ViewSample]], Tensor]:
        """The group's (view1, view2) per item and their overlaps (N,) on the device."""
        height, width = self.size
        probe_h, probe_w = self.config.probe_size
        batch = replace(to_device(group.scenes, self.device), photos=self._photo_bank())
        # Candidates are picked on the device (gathers, no host sync) from cameras drawn on the CPU.
        cameras = group.cameras.to(batch.device)
        rows = torch.arange(len(group.indices), device=batch.device)
        min_median = torch.tensor(
            [
                self.config.object_min_median_m if layout.kind == "objects" else layout.min_median_depth
                for layout in group.scenes.layouts
            ],
            device=batch.device,
        )

        # The first view: the first candidate that sees open space (else the first candidate).
        probe = render_depth(batch, cameras.first_probe_k, cameras.first_pose, probe_h, probe_w, self.config.compiled)
        pick = _first_true(open_view(probe, min_median=min_median[:, None]))
        pose1, k1, probe_k1 = (x[rows, pick] for x in (cameras.first_pose, cameras.first_k, cameras.first_probe_k))

        # The second view: the first candidate in the overlap range that stands clear and sees open space.
        count = self.config.candidates
        pose2, k2, probe_k2, clear2 = (
            x[rows, pick] for x in (cameras.second_pose, cameras.second_k, cameras.second_probe_k, cameras.second_clear)
        )
        probe_k = torch.cat([probe_k1[:, None], probe_k2], 1)
        probe_pose = torch.cat([pose1[:, None], pose2], 1)
        probe = render_depth(batch, probe_k, probe_pose, probe_h, probe_w, self.config.compiled)
        flat = probe[:, 1:].reshape(-1, *probe.shape[-2:])
        flat_k, flat_pose = probe_k[:, 1:].reshape(-1, 3, 3), pose2.reshape(-1, 4, 4)

        def repeat_first(x: Tensor) -> Tensor:
            return x[:, :1].expand(-1, count, *x.shape[2:]).reshape(-1, *x.shape[2:])

        first, first_k = repeat_first(probe), repeat_first(probe_k)
        first_pose = repeat_first(pose1[:, None])
        forward = overlap(first, first_k, first_pose, flat, flat_k, flat_pose)
        backward = overlap(flat, flat_k, flat_pose, first, first_k, first_pose)
        usable = clear2 & open_view(probe[:, 1:], min_median=min_median[:, None])
        # cos of each candidate's rotation angle from the first view: (trace(R1^T R2) - 1) / 2.
        turn_cos = ((pose1[:, None, :3, :3] * pose2[..., :3, :3]).sum((-2, -1)) - 1) / 2  # (N, C)
        chosen = self._choose(
            torch.minimum(forward, backward).reshape(-1, count), usable, turn_cos, cameras.prefer_wide
        )  # (N,)

        pair_pose = torch.stack([pose1, pose2[rows, chosen]], 1)  # (N, 2, 4, 4)
        pair_k = torch.stack([k1, k2[rows, chosen]], 1)
        lighting = {}
        if self.config.flash_share > 0:
            # Each view's flash intensity at 1 m brings the item's exposure to the view's first depth quartile (from
            # the probes: view 1 first, then the second-view candidates); both views share the scene's dimming.
            views_probe = torch.stack([probe[rows, 0], probe[rows, 1 + chosen]], 1).flatten(2)  # (N, 2, h * w)
            near = views_probe.where(views_probe > 0, torch.nan).nanquantile(0.25, dim=-1).nan_to_num(1.0)
            lighting = {
                "flash": cameras.flash[:, None] * (near**2 + 0.1),
                "scene_light": cameras.scene_light[:, None].expand(-1, 2),
            }
        rgb, depth = render_views(
            batch,
            pair_k,
            pair_pose,
            height,
            width,
            self.config.shadows,
            self.config.supersample,
            compiled=self.config.compiled,
            **lighting,
        )
        full_overlap = overlap(depth[:, 0], pair_k[:, 0], pair_pose[:, 0], depth[:, 1], pair_k[:, 1], pair_pose[:, 1])
        sources = [f"{name}/view={view}" for name in group.names for view in (1, 2)]
        views = views_to_samples(
            rgb.flatten(0, 1), depth.flatten(0, 1), pair_k.flatten(0, 1), pair_pose.flatten(0, 1), sources
        )
        return list(zip(views[0::2], views[1::2], strict=True)), full_overlap


def _first_true(mask: Tensor) -> Tensor:
    """(N,) index of the first True along the last axis of (N, C), 0 where none is."""
    return mask.float().argmax(-1)
