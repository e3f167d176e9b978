"""Photos stored turned against the rest of their set, found by their feature matches and turned back.

A photo saved sideways or upside down without an EXIF orientation matches its set poorly: neither the
network nor XFeat is rotation-invariant. Such a photo's best pair has a small share of the matches of
the set's typical photo; it is matched again turned by one, two and three quarter turns against the
best-matched photos, and the turn that multiplies its matches is kept. Frames of a video are never turned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

Matches = dict[tuple[int, int], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class OrientConfig:
    """When a photo is tried turned, and when the turn is kept."""

    poor_share: float = 0.25
    """A photo is tried turned when its best pair has fewer matches than this share of the median of the
    photos' best pairs."""
    min_matches: int = 100
    """Least matches in the median photo's best pair for the set to be judged at all, and in a turned
    photo's best pair for the turn to be kept."""
    gain: float = 3.0
    """A turn is kept when its best pair has at least this many times the matches of the photo as stored."""
    partners: int = 5
    """A photo tried turned is matched against this many of its best-matched pair partners."""


def best_pair_matches(matches: Matches, count: int) -> np.ndarray:
    """(count,) int: the most matches of any pair of each view (0 for views in no pair)."""
    best = np.zeros(count, dtype=np.int64)
    for (i, j), (xy_i, _) in matches.items():
        best[i] = max(best[i], len(xy_i))
        best[j] = max(best[j], len(xy_i))
    return best


def poorly_matched(views: list[View], best: np.ndarray, used: list[int], config: OrientConfig) -> list[int]:
    """The views among `used` (views in some pair) of photo files whose best pair falls under
    `config.poor_share` of the median of the used views' best pairs."""
    typical = float(np.median(best[used])) if used else 0.0
    if typical < config.min_matches:
        return []
    return [k for k in used if best[k] < config.poor_share * typical and Path(views[k].path).is_file()]


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
    views = list(views)
    for k in poorly_matched(views, best, used, config):
        partners = sorted({i + j - k for i, j in unordered if k in (i, j)}, key=lambda other: -best[other])
        turned = _best_turn(views[k], [features[other] for other in partners[: config.partners]], size, matcher)
        if turned is None:
            continue
        view, found, turned_best = turned
        if turned_best < max(config.min_matches, config.gain * best[k]):
            continue
        if verbose:
            print(
                f"{Path(view.path).name}: turned {90 * view.quarter_turns} deg counter-clockwise to match the other"
                f" photos ({best[k]} -> {turned_best} matches in its best pair)"
            )
        views[k], features[k] = view, found
        for i, j in unordered:
            if k in (i, j):
                matches[(i, j)] = match_features(features[i], features[j], matcher)
    return views, matches


def _best_turn(
    view: View, partners: list[ViewFeatures], size: int, matcher: XFeatMatcher
) -> tuple[View, ViewFeatures, int] | None:
    """The quarter turn (1-3) of `view` whose best match count against `partners` is largest: the turned
    view, its features and that count; None without partners."""
    if not partners:
        return None
    tried = []
    for turns in (1, 2, 3):
        turned = turn_view(view, turns, size)
        found = view_features(turned, matcher)
        tried.append((turned, found, max(len(match_features(found, other, matcher)[0]) for other in partners)))
    return max(tried, key=lambda entry: entry[2])
