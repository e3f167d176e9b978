"""The held-out synthetic benchmark: two-view pose and depth per overlap bucket on the engine's "val" split.

The "val" split draws scenes from odd seeds and training from even ones (`data.synthetic.dataset.scene_seed`),
so no scene evaluated here was ever trained on. Item k is dataset item k * pairs_per_scene + k % pairs_per_scene:
one pair per scene, so N pairs cover N different scenes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

from tqdm import tqdm

from pointmap.data.augment import quarter_turn
from pointmap.data.sample import ViewBatch, ViewSample
from pointmap.data.synthetic.dataset import SyntheticConfig, SyntheticPairDataset
from pointmap.data.synthetic.palette import PHOTO_SHARE
from pointmap.data.synthetic.scenes import SCENE_KINDS
from pointmap.eval.pairs import PairMethod, evaluate_pairs, summarize_pairs
from pointmap.eval.report import EvalResult


@dataclass(frozen=True)
class SyntheticEvalConfig:
    """What `evaluate_synthetic` renders and how it groups the pairs."""

    pairs: int = 64
    """Number of pairs (each from its own scene)."""
    size: tuple[int, int] = (224, 224)
    """(H, W) of the rendered images; multiples of 16, fed to the network as they are."""
    buckets: tuple[float, ...] = (0.3, 0.5, 0.7, 1.0)
    """Edges of the overlap buckets (fraction of view 1 seen by view 2); rows 30-50 %, 50-70 %, 70-100 %."""
    seed: int = 0
    """Base seed of the val split (SyntheticConfig.seed): another seed, another held-out set."""
    shadows: bool = True
    """Render cast shadows, as the training data does."""
    render_batch: int = 8
    """Pairs rendered in one batched pass."""
    device: str = "cpu"
    """Where the scenes are ray-cast (the methods run where they were built to)."""
    photo_folder: str | None = None
    """Photos that texture some of the walls, fabrics and facades (SyntheticConfig.photo_folder), e.g. photos
    never trained on, to measure what unfamiliar real textures cost; None: procedural textures only."""
    photo_share: float = PHOTO_SHARE
    """With photo_folder: the share of those materials that take a photo (SyntheticConfig.photo_share)."""
    roll_deg: float = SyntheticConfig.roll_deg
    """Standard deviation of each camera's roll about its optical axis, degrees (SyntheticConfig.roll_deg): the
    training data's 3 by default, larger to measure what tilted photos cost."""
    hfov_deg: tuple[float, float] = SyntheticConfig.hfov_deg
    """(low, high) range of each camera's horizontal field of view, degrees (SyntheticConfig.hfov_deg): the
    training data's 45-80 by default, narrower to measure what zoomed photos cost (15-45 over the 224 crop)."""
    kinds: tuple[str, ...] = SyntheticConfig.kinds
    """Scene kinds of the held-out scenes, from SCENE_KINDS: the default mixes them as training does
    (SyntheticConfig.kind_weights), any other choice weighs its kinds equally (see kind_weights)."""
    quarter_turns: int = 0
    """Quarter turns counter-clockwise of both views of every pair, cameras turned with them (0-3): 1 or 3 is how
    portrait photos stored sideways without an EXIF orientation come in (the real et set's: 1), to measure what
    that costs."""
    flash_share: float = 0.0
    """Share of the pairs photographed with a flash (SyntheticConfig.flash_share): the same cameras and scenes,
    lit by a light at each camera with the scene's own light dimmed; 0 keeps the split as every earlier result
    was measured on."""

    def __post_init__(self) -> None:
        if self.pairs < 1:
            raise ValueError(f"pairs={self.pairs}: pass 1 or more")
        if any(side % 16 for side in self.size):
            raise ValueError(f"size={self.size}: pass (H, W) multiples of 16, e.g. (224, 224) or (384, 512)")
        if list(self.buckets) != sorted(self.buckets) or len(self.buckets) < 2:
            raise ValueError(f"buckets={self.buckets}: pass at least two increasing overlap edges in [0, 1]")
        if not self.roll_deg >= 0:  # also refuses NaN
            raise ValueError(f"roll_deg={self.roll_deg}: pass a standard deviation of 0 degrees or more")
        if len(self.hfov_deg) != 2 or not 0 < self.hfov_deg[0] <= self.hfov_deg[1] < 180:  # also refuses NaN
            raise ValueError(f"hfov_deg={self.hfov_deg}: pass (low, high) degrees with 0 < low <= high < 180")
        if not 0.0 <= self.flash_share <= 1.0:  # also refuses NaN
            raise ValueError(f"flash_share={self.flash_share}: pass a share between 0 and 1")
        if self.quarter_turns not in range(4):
            raise ValueError(f"quarter_turns={self.quarter_turns}: pass 0, 1, 2 or 3")
        unknown = [kind for kind in self.kinds if kind not in SCENE_KINDS]
        if unknown or not self.kinds or len(set(self.kinds)) < len(self.kinds):
            raise ValueError(f"kinds={self.kinds}: pass distinct scene kinds from {', '.join(SCENE_KINDS)}")

    @property
    def kind_weights(self) -> tuple[float, ...]:
        """Relative frequency of each of `kinds`: the training mix for the default kinds (so the default
        held-out split stays the one every earlier result was measured on), else equal weights."""
        if tuple(self.kinds) == SyntheticConfig.kinds:
            return SyntheticConfig.kind_weights
        return (1.0,) * len(self.kinds)


def bucket_name(overlap: float, edges: Sequence[float]) -> str:
    """The overlap bucket "30-50%" holding `overlap` (upper edge included only for the last bucket)."""
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        if low <= overlap < high or (high == edges[-1] and overlap == high):
            return f"{round(100 * low)}-{round(100 * high)}%"
    return f"<{round(100 * edges[0])}%" if overlap < edges[0] else f">{round(100 * edges[-1])}%"


def held_out_items(config: SyntheticEvalConfig) -> tuple[SyntheticPairDataset, list[int]]:
    """The held-out split and the items of the benchmark's pairs in it: one pair per scene, so the split
    holds pairs_per_scene items per evaluated pair."""
    per_scene = SyntheticConfig.pairs_per_scene
    engine = SyntheticConfig(
        shadows=config.shadows, seed=config.seed, min_overlap=config.buckets[0], val_length=config.pairs * per_scene,
        photo_folder=config.photo_folder, photo_share=config.photo_share, roll_deg=config.roll_deg,
        hfov_deg=tuple(config.hfov_deg), kinds=config.kinds, kind_weights=config.kind_weights,
        flash_share=config.flash_share,
    )
    dataset = SyntheticPairDataset(engine, split="val", size=config.size, device=config.device)
    return dataset, [k * per_scene + k % per_scene for k in range(config.pairs)]


def held_out_pairs(
    config: SyntheticEvalConfig, verbose: bool = True
) -> Iterator[tuple[int, ViewSample, ViewSample, float]]:
    """(item, view1, view2, overlap) of the benchmark's pairs, rendered `render_batch` at a time."""
    dataset, items = held_out_items(config)
    with tqdm(total=len(items), desc="rendering held-out pairs", unit="pair", disable=not verbose) as bar:
        for start in range(0, len(items), config.render_batch):
            chunk = items[start : start + config.render_batch]
            for item, (view1, view2, overlap) in zip(chunk, dataset.render_batch(chunk), strict=True):
                if config.quarter_turns:
                    view1, view2 = turned_views([view1, view2], config.quarter_turns)
                yield item, view1, view2, overlap
            bar.update(len(chunk))


def turned_views(views: list[ViewSample], turns: int) -> list[ViewSample]:
    """Views of one shape turned `turns` quarters counter-clockwise, with their depth, intrinsics and poses."""
    batch = ViewBatch.stack(views)
    for _ in range(turns):
        batch = quarter_turn(batch)
    return [batch.sample(i, view.source) for i, view in enumerate(views)]


def evaluate_synthetic(
    methods: Mapping[str, PairMethod], config: SyntheticEvalConfig | None = None, verbose: bool = True
) -> EvalResult:
    """Every method on the same held-out pairs; a table row per method and overlap bucket, then the pairs of
    all buckets ("30-100%") and every pair ("all").

    Args:
        methods: name -> pair method (e.g. {"pointmap": PointmapPairs(model), "sift": SiftPairs()}).
        config: the pairs and buckets.
        verbose: progress bars.
    Returns:
        EvalResult with a row for every (method, bucket), empty buckets included (0 pairs), and per-pair
        records (pose errors in degrees, depth AbsRel and delta<1.25 of both views, seconds, failures).
    """
    config = config or SyntheticEvalConfig()
    groups = [bucket_name(low, config.buckets) for low in config.buckets[:-1]]
    items = (
        (view1.source.rsplit("/view=", 1)[0], bucket_name(overlap, config.buckets), view1, view2,
         {"index": index, "overlap": overlap})
        for index, view1, view2, overlap in held_out_pairs(config, verbose)
    )
    # The engine falls back to its best candidate when none reaches the lowest edge: those pairs get their
    # own "<30%" row, and the "30-100%" row is the figure of merit of pairs the buckets cover.
    below = f"<{round(100 * config.buckets[0])}%"
    covered = f"{round(100 * config.buckets[0])}-{round(100 * config.buckets[-1])}%"
    result = evaluate_pairs("synthetic", methods, items, [below, *groups])
    summary = []
    for row in result.summary:
        if row["group"] == "all":
            chosen = [r for r in result.records if r["method"] == row["method"] and r["group"] not in (below, "all")]
            summary.append({"method": row["method"], "group": covered, **summarize_pairs(chosen)})
        summary.append(row)
    result.summary = summary
    result.settings.update(asdict(config), kind_weights=config.kind_weights)
    return result
