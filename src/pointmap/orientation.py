"""Photos stored turned against the rest of their set, found by their feature matches and turned back.

A photo saved sideways or upside down without an EXIF orientation matches its set poorly: neither the
network nor XFeat is rotation-invariant. The photos are linked by their strongly matched pairs; every group
so linked, other than the largest, is matched again turned by one, two and three quarter turns (its
best-matched photo against the largest group's best-matched photos), and the turn that multiplies its matches
is applied to the whole group: a single photo held upside down, or the portrait shots of a set without
EXIF orientations. Frames of a video are never turned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from torch import Tensor

from pointmap.features import (
    MatchConfig,
    ViewFeatures,
    XFeatMatcher,
    extract_features,
    match_features,
    match_pairs,
    unordered_pairs,
    view_features,
)
from pointmap.images import View, turn_view
from pointmap.pairs import connected_components

Matches = dict[tuple[int, int], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class OrientConfig:
    """When a photo is tried turned, and when the turn is kept."""

    strong_share: float = 0.25
    """A pair links its photos when it has at least this share of the matches of the median photo's best
    pair (and `min_matches`)."""
    min_matches: int = 100
    """Least matches in the median photo's best pair for the set to be judged at all, in a linking pair, and
    in a turned photo's best pair for the turn to be kept."""
    gain: float = 3.0
    """A turn is kept when it multiplies the epipolar inliers of the best pair of the group's photo with the
    largest group by this, and two of its pairs with the largest group have `min_matches` inliers or more."""
    partners: int = 5
    """A group's photo is tried turned against this many of the largest group's best-matched photos."""


def best_pair_matches(matches: Matches, count: int) -> np.ndarray:
    """(count,) int: the most matches of any pair of each view (0 for views in no pair)."""
    best = np.zeros(count, dtype=np.int64)
    for (i, j), (xy_i, _) in matches.items():
        best[i] = max(best[i], len(xy_i))
        best[j] = max(best[j], len(xy_i))
    return best


def verified_count(xy_first: Tensor, xy_second: Tensor, threshold_px: float = 1.0) -> int:
    """Matches (M, 2) of two views (processed pixels) that a fundamental matrix holds within `threshold_px`
    (OpenCV MAGSAC): the count that raw matches of repeated textures cannot inflate as easily."""
    if len(xy_first) < 8:
        return 0
    try:
        _, inliers = cv2.findFundamentalMat(
            xy_first.numpy(), xy_second.numpy(), cv2.USAC_MAGSAC, threshold_px, 0.999, 10_000
        )
    except cv2.error:  # MAGSAC asserts when no model fits, e.g. all matches on a line
        return 0
    return 0 if inliers is None else int(inliers.sum())


def _matches_of(
    first: int, second: int, matches: Matches, features: dict[int, ViewFeatures], matcher: XFeatMatcher
) -> tuple[Tensor, Tensor]:
    """The matches of views `first` and `second`: those of `matches` when the pair was matched, else new ones."""
    pair = (min(first, second), max(first, second))
    return matches[pair] if pair in matches else match_features(features[first], features[second], matcher)


def unlinked_groups(
    views: list[View], matches: Matches, best: np.ndarray, used: list[int], config: OrientConfig
) -> tuple[list[int], list[list[int]]]:
    """The largest group of the views among `used` that strong pairs (`OrientConfig.strong_share`) link, and
    the other groups of photo files, each a list of view indices; no groups when the median photo's best pair
    (`best`, from `best_pair_matches`) has under `min_matches` (a set that barely matches, e.g. textureless, is
    not judged)."""
    typical = float(np.median(best[used])) if used else 0.0
    if typical < config.min_matches:
        return used, []
    strong = max(config.min_matches, config.strong_share * typical)
    linked = [pair for pair, (xy, _) in matches.items() if len(xy) >= strong]
    groups = [group for group in connected_components(len(views), linked) if group[0] in used]
    largest = max(groups, key=len)
    others = [group for group in groups if group is not largest and all(Path(views[k].path).is_file() for k in group)]
    return largest, others


def match_and_orient(
    views: list[View],
    pairs: list[tuple[int, int]],
    size: int,
    config: OrientConfig | None = None,
    match_config: MatchConfig | None = None,
    verbose: bool = True,
) -> tuple[list[View], Matches]:
    """Matches of every unordered pair among `pairs` (`features.match_views`), with the photos stored turned
    against the rest found and loaded again turned back (`images.turn_view`, by the resize rule of `size`).

    Returns:
        The views (turned ones replaced, `View.quarter_turns` set) and {(i, j): (xy_i, xy_j)}, i < j, each (M, 2)
        float64 in processed-image pixels of the returned views.
    """
    config = config or OrientConfig()
    matcher = XFeatMatcher(match_config)
    unordered = unordered_pairs(pairs)
    used = sorted({k for pair in unordered for k in pair})
    features = extract_features(views, used, matcher, verbose)
    matches = match_pairs(features, unordered, matcher, verbose)
    best = best_pair_matches(matches, len(views))
    largest, others = unlinked_groups(views, matches, best, used, config)
    partners = sorted(largest, key=lambda k: -best[k])[: config.partners]
    views = list(views)
    for group in others:
        photo = max(group, key=lambda k: best[k])
        stored = max(verified_count(*_matches_of(photo, k, matches, features, matcher)) for k in partners)
        view, found, counts, tried = _best_turn(views, photo, {k: features[k] for k in partners}, size, matcher)
        two_witnesses = len(counts) >= 2 and counts[1] >= config.min_matches
        if counts[0] < config.gain * stored or not two_witnesses:
            continue
        if verbose:
            names = ", ".join(Path(views[k].path).name for k in group)
            print(
                f"{names}: turned {90 * view.quarter_turns} deg counter-clockwise to match the other photos "
                f"({stored} -> {counts[0]} epipolar inliers in the best pair of {Path(view.path).name})"
            )
        for k in group:
            views[k] = view if k == photo else turn_view(views[k], view.quarter_turns, size)
            features[k] = found if k == photo else view_features(views[k], matcher)
        for i, j in unordered:
            if i in group or j in group:  # the photo's pairs with its partners were matched while turns were tried
                matches[(i, j)] = (
                    tried[(i, j)] if (i, j) in tried else match_features(features[i], features[j], matcher)
                )
    return views, matches


def _best_turn(
    views: list[View], photo: int, partners: dict[int, ViewFeatures], size: int, matcher: XFeatMatcher
) -> tuple[View, ViewFeatures, list[int], Matches]:
    """The quarter turn (1-3) of view `photo` with the most epipolar inliers (`verified_count`) against its best
    partner: the turned view, its features, its inlier counts with the `partners` (view index -> features), most
    first, and its matches with them keyed (i, j), i < j, as `features.match_pairs` makes them."""
    tried = []
    for turns in (1, 2, 3):
        turned = turn_view(views[photo], turns, size)
        found = view_features(turned, matcher)
        matched = {
            (min(photo, k), max(photo, k)): match_features(*((found, other) if photo < k else (other, found)), matcher)
            for k, other in partners.items()
        }
        counts = sorted((verified_count(*pair) for pair in matched.values()), reverse=True)
        tried.append((turned, found, counts, matched))
    return max(tried, key=lambda entry: entry[2])
