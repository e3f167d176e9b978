"""Cameras refined on feature matches: an epipolar bundle adjustment of every pose and focal length.

Over every pair (i, j) with enough matches (p in image i, q in image j, processed pixels) it minimises the
Sampson distance of the match to the epipolar geometry of the two cameras,
    F_ij = K_j^-T [t_ij]x R_ij K_i^-1,   R_ij = R_j^T R_i,   t_ij = R_j^T (c_i - c_j) / ||c_i - c_j||,
under a Cauchy loss of scale `loss_scale_px`, by Levenberg-Marquardt from a few focal starts. Unknowns: each
camera's rotation and centre (the first camera of the adjustment is fixed: it sets the frame) and one focal length
per group of images taken by one camera (the same photo size and EXIF focal, in `reconstruct`), with a weak prior
towards the start (`pipeline.reconstruct` starts from each photo's likely focal, `photo_focal`; the prior matters
only where the matches leave a focal undetermined, e.g. some two-view geometries), and a weak prior holding each
used pair's baseline length near a measured one (epipolar geometry sees baseline directions, not lengths; the
lengths set the scale and keep a cluster of cameras from shrinking to a point, as six of tum-office's nine did under
a single scale gauge). The lengths come from the pair's matches triangulated against the views' depth maps
(`align.baselines`), else from the aligned scene's cameras. Points are not unknowns: Sampson's distance is the
first-order reprojection error with each match's point eliminated, so the problem has 7 unknowns per camera whatever
the number of matches, and the Jacobian is the chain rule of each match's closed-form gradient in F through F's
closed-form derivatives in the unknowns (`EpipolarProblem.jacobian`), pair by pair, and J^T W J is summed block by
block: the adjustments of a 10-photo reconstruct (8 solves) take 2.8 s on the 2-core CPU, 10.1 s with forward-mode
autodiff of F and a dense Jacobian; the skull set's 20 photos (22 solves) 14 s, 31 s with the dense Jacobian.

The network's focal can be 30 % off on real photos (tum-office: 327 px where COLMAP finds 250 in the 224
crop), and pairwise poses inherit that error; with the matches of many pairs the focal is determined (252-260
px there), as in structure from motion. One pair's matches fix a shared focal too, unless the two optical axes
meet (two-view self-calibration's degenerate case, where the prior holds it): each pair of tum-office on its own
comes out with a pose AUC@20 of 36 this way, 19 with the network's focal held (benchmarks/real_pairs.py); 45
started from and held loosely near the photo's likely focal instead of the network's (session 22).
It starts from the aligned scene's cameras, which keeps it out of the mirror-image solution an epipolar cost
also has for near-affine views, and again from the matches' own cameras (`align.pose_chain`, chained at each
focal start), for where the aligned cameras are far off. The depths are left to the global alignment, run again
with these cameras held fixed, and to `align.match_depths` (`pipeline.refine_on_matches`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pointmap.align.baselines import measured_baselines
from pointmap.align.optimize import skew
from pointmap.align.pose_chain import chained_poses, pair_poses
from pointmap.pairs import connected_components


@dataclass(frozen=True)
class BundleConfig:
    """How the cameras are refined on matches."""

    max_matches_per_pair: int = 512
    """Matches used per pair at most (evenly spaced over the matcher's list)."""
    max_matches: int = 60_000
    """Matches used in all at most (fewer per pair, down to 32, on large graphs), which bounds the Jacobian:
    (matches, 7 x cameras) in float64."""
    loss_scale_px: float = 1.0
    """Scale of the Cauchy loss on Sampson distances, in processed pixels."""
    focal_prior: float = 0.5
    """Standard deviation of the prior on log focal around its start, the photo's likely focal in `reconstruct`
    (`photo_focal`; weak: it acts where matches are silent, e.g. a single pair whose optical axes meet, whose
    epipolar geometry leaves a shared focal free). The prior is a quadratic term; the Cauchy loss is the
    matches' only (under it, a single pair's focal ran to several times the true one on synthetic renders).
    0.25 held sacre-coeur's zoomed photos (COLMAP: 2.2 x the longer side) at 1.8 x from a start of 0.9 x, and
    another camera of the set 16 deg off with them (session 22)."""
    max_iterations: int = 60
    """Most Levenberg-Marquardt steps of the best start."""
    start_iterations: int = 8
    """Steps of each start before the best one is carried on."""
    baseline_prior: float = 0.5
    """Standard deviation of the prior on each used pair's log baseline length around its measured length
    (`align.baselines`; the aligned cameras' where none is measured). Epipolar geometry sees directions only:
    without it the scale drifts, and a cluster of cameras can shrink towards one point while every direction stays
    right (tum-office: six of nine cameras did, their baselines to 4e-5 of their start, tests/fixtures). A
    quadratic term, like the focal prior."""
    focal_starts: tuple[float, ...] = (1.0, 0.7, 1.4)
    """The solver starts from the start focals times each of these and keeps the lowest cost: a focal far off
    (30 % on real photos) can leave a single start in a wrong basin."""
    max_pair_error_px: float = 2.0
    """Largest median Sampson distance of one pair's matches at the solution, processed pixels. Above it the
    pair's matches disagree with the other pairs' (false matches that an essential matrix still fits, e.g. 57
    inliers between two views of the bundled examples' office 77 deg apart, which bent the cameras to a median
    23.7 deg off): the worst such pair is left out and the cameras solved again (0.3 s a solve for 10 photos on
    a CPU), until every pair fits or leaving the worst out would unlink the images. Right pairs of real photos
    fit at 0.2-1.0 px."""


@dataclass
class BundleResult:
    """Refined cameras, and how well the matches fit before and after."""

    poses: Tensor
    """(N, 4, 4) cam2world."""
    intrinsics: Tensor
    """(N, 3, 3); fx and fy scaled together, the principal points kept."""
    pairs: int
    """Pairs used."""
    median_error_px: tuple[float, float]
    """Median Sampson distance over the used matches at the start and at the end, processed pixels."""
    rejected: list[tuple[int, int]]
    """Pairs left out because their matches did not fit the others' (`BundleConfig.max_pair_error_px`)."""


def _rotations(rotvec: Tensor) -> Tensor:
    """(N, 3, 3) rotations of axis-angle vectors (N, 3) by Rodrigues' formula, smooth at 0."""
    angle_sq = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # (N, 1, 1)
    small = angle_sq < 1e-12
    safe = torch.where(small, torch.ones_like(angle_sq), angle_sq)
    angle = safe.sqrt()
    a = torch.where(small, 1 - angle_sq / 6, torch.sin(angle) / angle)
    b = torch.where(small, 0.5 - angle_sq / 24, (1 - torch.cos(angle)) / safe)
    k = skew(rotvec)
    return torch.eye(3, dtype=rotvec.dtype) + a * k + b * (k @ k)


def _rotvec(rotation: np.ndarray) -> np.ndarray:
    """(N, 3) axis-angle vectors of rotations (N, 3, 3)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(rotation).as_rotvec()


def cauchy_cost(residuals: Tensor, scale: float, robust: int | None = None) -> Tensor:
    """sum of scale^2 / 2 log(1 + (r / scale)^2) over the first `robust` residuals (all for None): quadratic for
    small residuals, logarithmic for outliers; plus r^2 / 2 over the rest (priors, which must not be shrugged off
    as outliers)."""
    robust = len(residuals) if robust is None else robust
    quadratic = 0.5 * residuals[robust:].square().sum()
    return 0.5 * scale**2 * torch.log1p((residuals[:robust] / scale).square()).sum() + quadratic


def levenberg_marquardt(
    fun, normal_equations, params: Tensor, scale: float, iterations: int, robust: int | None = None,
    tolerance: float = 1e-7,
) -> tuple[Tensor, Tensor, float]:
    """Minimise `cauchy_cost(fun(params), scale, robust)` by Levenberg-Marquardt on iteratively reweighted
    normal equations.

    Each step weights the first `robust` residuals by the Cauchy loss at the current point
    (1 / (1 + (r / scale)^2)) and the rest by 1, takes J^T W J and J^T W r from
    `normal_equations(params, weights, residuals)` (J the Jacobian of `fun`; (U, U) and (U,)), solves
    (J^T W J + lambda diag(J^T W J)) step = -J^T W r (the unknowns are few: 7 per camera), and keeps the step
    only if the robust cost falls (then lambda / 3, else x 4 and retry). Stops after `iterations` steps, or
    when a step lowers the cost by less than `tolerance` of it.
    Returns:
        the parameters, their residuals and their cost.
    """
    residuals = fun(params)
    cost = float(cauchy_cost(residuals, scale, robust))
    if iterations == 0:
        return params, residuals, cost
    damping = 1e-4
    for _ in range(iterations):
        weights = 1 / (1 + (residuals / scale).square())
        if robust is not None:
            weights[robust:] = 1  # the quadratic terms
        normal, gradient = normal_equations(params, weights, residuals)
        diagonal = torch.diagonal(normal).clamp_min(1e-12)
        for _ in range(10):
            step = torch.linalg.solve(normal + damping * torch.diag(diagonal), -gradient)
            trial = params + step
            trial_residuals = fun(trial)
            trial_cost = float(cauchy_cost(trial_residuals, scale, robust))
            if trial_cost < cost:
                break
            damping *= 4
        else:
            return params, residuals, cost  # no step lowers the cost: a minimum
        decrease = cost - trial_cost
        params, residuals, cost = trial, trial_residuals, trial_cost
        damping = max(damping / 3, 1e-9)
        if decrease < tolerance * cost:
            break
    return params, residuals, cost


def focal_groups(cameras: list[tuple]) -> list[int]:
    """One group per distinct camera key (`pipeline.refine_on_matches`: the photo's size and its likely focal):
    images of one key are taken to share a camera (and a focal). Groups are numbered in order of appearance."""
    keys = list(dict.fromkeys(cameras))
    return [keys.index(camera) for camera in cameras]


def refine_cameras(
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]],
    poses: Tensor,
    intrinsics: Tensor,
    groups: list[int],
    fix_focals: bool = False,
    config: BundleConfig | None = None,
    depths: list[Tensor] | None = None,
) -> BundleResult | None:
    """Refine cam2world `poses` (N, 4, 4) and `intrinsics` (N, 3, 3) on `matches` (module docstring), leaving out
    pairs whose matches do not fit the others (`BundleConfig.max_pair_error_px`), worst first. It runs from
    `poses` and again from the matches' own cameras (`pose_chain.chained_poses`, their essential matrices taken at
    each of `BundleConfig.focal_starts` unless the focals are fixed) where their pairs link every camera, and keeps
    the solution that keeps the most matches, then the smaller error: where `poses` are far off, the epipolar cost
    can settle in a wrong basin though every neighbouring pair is matched (narrow views round an object are
    near-affine; the skull set of benchmarks/real_pictures.py).

    Args:
        matches: {(i, j): (xy_i, xy_j)}, (M, 2) processed pixels of verified matches (the essential matrices'
            inliers that `match_poses.repose_with_matches` keeps).
        groups: N group indices; images of one group share one focal.
        fix_focals: keep the focals as they are (known ones), refine the poses only.
        depths: N depth maps (H, W) in the units of `poses` (the aligned scene's), which set the baseline lengths
            that the prior holds (`align.baselines`); the lengths of `poses` where they are None or a pair's
            matches measure none.
    Returns:
        the refined cameras; None when the pairs do not link every camera (separate groups have no common
        frame), when the start has no epipolar geometry (non-finite residuals, e.g. coincident cameras), or when
        the result does not fit the matches (median Sampson distance over `loss_scale_px`: too few or too poor
        matches, as renders of textureless objects give).
    """
    config = config or BundleConfig()

    def refined_from(start: Tensor) -> BundleResult | None:  # adjust; leave out the worst pair while it misfits
        kept, rejected = dict(matches), []
        while True:
            solved = _adjust(kept, start, intrinsics, groups, fix_focals, config, lengths)
            if solved is None:
                return None
            result, pair_errors = solved
            worst = max(pair_errors, key=pair_errors.get)
            rest = [pair for pair in kept if pair != worst]
            if pair_errors[worst] <= config.max_pair_error_px or len(connected_components(len(poses), rest)) != 1:
                result.rejected = rejected
                return result
            del kept[worst]
            rejected.append(worst)

    def fit(result: BundleResult) -> tuple[int, float]:  # the matches kept, then the smaller error
        rejected = set(result.rejected)
        return sum(len(xy) for pair, (xy, _) in matches.items() if pair not in rejected), -result.median_error_px[1]

    relative = pair_poses(matches, intrinsics)
    centres = poses[:, :3, 3].double().cpu()
    lengths = {(i, j): float((centres[i] - centres[j]).norm()) for i, j in matches}
    if depths is not None:
        lengths |= measured_baselines(relative, matches, intrinsics, depths)
    # The chained cameras at each focal start: an essential matrix's pose turns with the focal it is taken at, and
    # from a chain at the wrong focal the adjustment can settle in a basin of its own (the skull: with 2 % noise on
    # the lengths, 2 of 8 chains at its EXIF focal ended at 55 % of pairs within 15 deg, and at 0.85 or 0.7 of it
    # the same lengths gave 99.5 %, each keeping the same pairs at a smaller error).
    chains = [chained_poses(relative, lengths, poses)]
    for factor in [] if fix_focals else [f for f in config.focal_starts if f != 1.0]:
        scaled = intrinsics.clone()
        scaled[:, 0, 0], scaled[:, 1, 1] = factor * intrinsics[:, 0, 0], factor * intrinsics[:, 1, 1]
        chains.append(chained_poses(pair_poses(matches, scaled), lengths, poses))
    results = [refined_from(start) for start in [poses] + [chain for chain in chains if chain is not None]]
    return max((result for result in results if result is not None), key=fit, default=None)


def _rotation_derivatives(rotvec: Tensor) -> Tensor:
    """(N, 3, 3, 3) derivatives of `_rotations(rotvec)` (N, 3) in each component k of its vector: [k] =
    [J e_k]x R, with J = I + (1 - cos a) / a^2 [v]x + (a - sin a) / a^3 [v]x^2 the left Jacobian of the rotation
    R = exp([v]x), a = |v|."""
    angle_sq = (rotvec * rotvec).sum(-1)[:, None, None]  # (N, 1, 1)
    small = angle_sq < 1e-12
    angle = torch.where(small, torch.ones_like(angle_sq), angle_sq).sqrt()
    b = torch.where(small, 0.5 - angle_sq / 24, (1 - torch.cos(angle)) / angle**2)
    c = torch.where(small, 1 / 6 - angle_sq / 120, (angle - torch.sin(angle)) / angle**3)
    k = skew(rotvec)
    jacobian = torch.eye(3, dtype=rotvec.dtype) + b * k + c * (k @ k)  # (N, 3, 3); column k is J e_k
    return skew(jacobian.transpose(-1, -2)) @ _rotations(rotvec)[:, None]


@dataclass
class EpipolarProblem:
    """The unknowns of one adjustment and what the pairs' epipolar geometry and priors make of them.

    The unknowns (U,) are the axis-angle vectors of cameras 1..N-1 (3 each), then their centres (3 each), then one
    log focal per group unless the focals are fixed; camera 0 keeps its start pose and sets the frame.
    """

    start_rotation: Tensor
    """(N, 3, 3) cam2world rotations at the start."""
    start_centre: Tensor
    """(N, 3) camera centres at the start."""
    K: Tensor
    """(N, 3, 3) intrinsics at the start: the principal points and each camera's fy / fx are kept."""
    group: Tensor
    """(N,) focal group of each camera."""
    log_focal0: Tensor
    """(G,) log focal of each group at the start, where its prior is centred."""
    fix_focals: bool
    first: Tensor
    """(P,) camera i of each used pair (i, j)."""
    second: Tensor
    """(P,) camera j."""
    target_baseline: Tensor
    """(P,) baseline length the prior holds each pair near."""
    focal_prior: float
    baseline_prior: float

    def start(self) -> Tensor:
        """(U,) the unknowns at the start."""
        rotvec = torch.from_numpy(_rotvec(self.start_rotation[1:].numpy())).reshape(-1)
        return torch.cat([rotvec, self.start_centre[1:].reshape(-1)] + ([] if self.fix_focals else [self.log_focal0]))

    def unpack(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, 3, 3) rotations, (N, 3) centres and (G,) log focals of the unknowns `params`."""
        count = len(self.start_rotation) - 1
        rotation = torch.cat([self.start_rotation[:1], _rotations(params[: 3 * count].reshape(count, 3))])
        centre = torch.cat([self.start_centre[:1], params[3 * count : 6 * count].reshape(count, 3)])
        log_focal = self.log_focal0 if self.fix_focals else params[6 * count :]
        return rotation, centre, log_focal

    def _intrinsics_inverse(self, log_focal: Tensor) -> Tensor:
        """(N, 3, 3) K^-1 of every camera with the focals `log_focal`."""
        fx = self.K[:, 0, 0] if self.fix_focals else log_focal[self.group].exp()
        fy = fx * self.K[:, 1, 1] / self.K[:, 0, 0]
        inverse = torch.zeros(len(fx), 3, 3, dtype=torch.float64)
        inverse[:, 0, 0], inverse[:, 1, 1], inverse[:, 2, 2] = 1 / fx, 1 / fy, 1
        inverse[:, 0, 2], inverse[:, 1, 2] = -self.K[:, 0, 2] / fx, -self.K[:, 1, 2] / fy
        return inverse

    def fundamentals(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """(P, 3, 3) fundamental matrices of the used pairs, and the priors' residuals: the focal prior (G,) or
        (0,), then the baseline prior (P,), which also sets the scale."""
        rotation, centre, log_focal = self.unpack(params)
        i, j = self.first, self.second
        baseline = (centre[i] - centre[j]).norm(dim=-1).clamp_min(1e-30)
        baseline_prior = (baseline / self.target_baseline).log() / self.baseline_prior
        R = rotation[j].transpose(-1, -2) @ rotation[i]  # (P, 3, 3) x_j = R x_i + t
        t = (rotation[j].transpose(-1, -2) @ (centre[i] - centre[j])[..., None])[..., 0]
        t = t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        inverse = self._intrinsics_inverse(log_focal)
        prior = log_focal[:0] if self.fix_focals else (log_focal - self.log_focal0) / self.focal_prior
        return inverse[j].transpose(-1, -2) @ skew(t) @ R @ inverse[i], torch.cat([prior, baseline_prior])

    def jacobian(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """F's derivatives in closed form (F = A_j^T [t]x R A_i with A = K^-1, R = R_j^T R_i and t the unit vector
        of u = R_j^T (c_i - c_j)). Each pair's F moves with its two cameras' unknowns only, so they come per pair.

        Returns:
            F (P, 3, 3) as `fundamentals` gives it; its derivatives (P, 9, L) in the L unknowns of its cameras
            (camera i's rotation vector, camera j's, their centres, then unless fixed their groups' log focals:
            L = 14 or 12); those unknowns' columns (P, L) among the U, where a fixed camera's entries are 0 at column
            0 and two cameras of one group have their focal entries at one column (to be added); and the priors'
            derivatives (G + P, U), or (P, U) with fixed focals.
        """
        count = len(self.start_rotation) - 1
        num_unknowns = len(params)
        rotation, centre, log_focal = self.unpack(params)
        d_rotation = torch.cat(  # (N, 3, 3, 3): dR_c / dv_k of camera c's vector v
            [torch.zeros(1, 3, 3, 3, dtype=torch.float64), _rotation_derivatives(params[: 3 * count].reshape(-1, 3))]
        )
        i, j = self.first, self.second
        inverse = self._intrinsics_inverse(log_focal)
        left, right = inverse[j].transpose(-1, -2), inverse[i]  # (P, 3, 3) A_j^T, A_i
        R_j_T = rotation[j].transpose(-1, -2)
        R = R_j_T @ rotation[i]
        offset = centre[i] - centre[j]  # (P, 3)
        u = (R_j_T @ offset[..., None])[..., 0]
        u_norm = u.norm(dim=-1).clamp_min(1e-12)[:, None, None]  # (P, 1, 1)
        t = u / u_norm[..., 0]
        t_skew = skew(t)
        to_unit = (torch.eye(3, dtype=torch.float64) - t[:, :, None] * t[:, None, :]) / u_norm  # dt = to_unit du
        F = left @ t_skew @ R @ right

        def through_t(du: Tensor) -> Tensor:  # (P, 3, 3) rows du / dx_k -> (P, 3, 3, 3) dF / dx_k
            dt = (to_unit[:, None] @ du[..., None])[..., 0]
            return left[:, None] @ skew(dt) @ (R @ right)[:, None]

        d_R_j_T = d_rotation[j].transpose(-1, -2)  # (P, 3, 3, 3)
        by_rotation_i = (left @ t_skew @ R_j_T)[:, None] @ d_rotation[i] @ right[:, None]
        by_rotation_j = through_t((d_R_j_T @ offset[:, None, :, None])[..., 0])
        by_rotation_j = by_rotation_j + (left @ t_skew)[:, None] @ d_R_j_T @ (rotation[i] @ right)[:, None]
        by_centre_i = through_t(rotation[j])  # du / dc_i,k = R_j^T e_k: row k of R_j
        blocks, columns = [], []
        for camera, first_column, d_pair in (
            (i, 0, by_rotation_i), (j, 0, by_rotation_j), (i, 3 * count, by_centre_i), (j, 3 * count, -by_centre_i)
        ):
            free = (camera >= 1).double()[:, None, None]
            blocks.append(d_pair.flatten(-2).transpose(1, 2) * free)  # (P, 9, 3)
            columns.append((first_column + 3 * (camera[:, None] - 1) + torch.arange(3)) * (camera[:, None] >= 1))
        d_prior = torch.zeros(len(i), num_unknowns, dtype=torch.float64)
        d_baseline = offset / (offset.square().sum(-1, keepdim=True).clamp_min(1e-60) * self.baseline_prior)
        for camera, sign in ((i, 1.0), (j, -1.0)):  # the baseline prior: d log |c_i - c_j| / dc_i = offset / |offset|^2
            rows = torch.nonzero(camera >= 1)[:, 0]
            centre_columns = 3 * count + 3 * (camera[rows, None] - 1) + torch.arange(3)  # (rows, 3)
            d_prior[rows[:, None], centre_columns] += sign * d_baseline[rows]
        if not self.fix_focals:
            # dA / dlog f = -(A - e3 e3^T): every entry but the last scales as 1 / f.
            d_inverse = inverse.clone()
            d_inverse[:, 2, 2] = 0
            blocks += [-(left @ t_skew @ R @ d_inverse[i]).flatten(-2)[..., None]]
            blocks += [-(d_inverse[j].transpose(-1, -2) @ t_skew @ R @ right).flatten(-2)[..., None]]
            columns += [6 * count + self.group[i, None], 6 * count + self.group[j, None]]
            d_focal_prior = torch.zeros(len(self.log_focal0), num_unknowns, dtype=torch.float64)
            d_focal_prior[:, 6 * count :] = torch.eye(len(self.log_focal0), dtype=torch.float64) / self.focal_prior
            d_prior = torch.cat([d_focal_prior, d_prior])
        return F, torch.cat(blocks, dim=2), torch.cat(columns, dim=1), d_prior


def _adjust(
    matches: dict[tuple[int, int], tuple[Tensor, Tensor]],
    poses: Tensor,
    intrinsics: Tensor,
    groups: list[int],
    fix_focals: bool,
    config: BundleConfig,
    lengths: dict[tuple[int, int], float],
) -> tuple[BundleResult, dict[tuple[int, int], float]] | None:
    """One adjustment on every pair of `matches` (`refine_cameras`' arguments) from `poses`, holding each pair's
    baseline near `lengths`: the result (none rejected) and each pair's median Sampson distance at the solution;
    None where `refine_cameras` says."""
    num = len(poses)
    used = sorted(matches.items())
    if num < 2 or len(connected_components(num, [pair for pair, _ in used])) != 1:
        return None
    K0 = intrinsics.double().cpu()
    # Matches padded to one (P, K, 3) block per side (K the most of any pair), so that each residual
    # evaluation is one batched product per side; `real` (P, K) marks the matches that exist.
    per_pair = min(config.max_matches_per_pair, max(32, config.max_matches // len(used)))
    counts = [min(len(xy_i), per_pair) for _, (xy_i, _) in used]
    homogeneous = torch.ones(len(used), max(counts), 3, dtype=torch.float64)
    homogeneous_2 = torch.ones_like(homogeneous)
    real = torch.zeros(len(used), max(counts), dtype=torch.bool)
    for k, (_, (xy_i, xy_j)) in enumerate(used):
        keep = np.linspace(0, len(xy_i) - 1, counts[k]).round().astype(np.int64)
        homogeneous[k, : counts[k], :2], homogeneous_2[k, : counts[k], :2] = xy_i[keep], xy_j[keep]
        real[k, : counts[k]] = True
    num_matches = int(real.sum())
    first = torch.tensor([i for (i, _), _ in used])  # (P,) the cameras of each used pair
    second = torch.tensor([j for (_, j), _ in used])

    group = torch.as_tensor(groups)
    num_groups = int(group.max()) + 1
    fx0 = K0[:, 0, 0]
    log_focal0 = torch.stack(
        [fx0[group == g].median().log() if bool((group == g).any()) else torch.tensor(0.0) for g in range(num_groups)]
    ).double()
    problem = EpipolarProblem(
        start_rotation=poses[:, :3, :3].double().cpu(),
        start_centre=poses[:, :3, 3].double().cpu(),
        K=K0,
        group=group,
        log_focal0=log_focal0,
        fix_focals=fix_focals,
        first=first,
        second=second,
        target_baseline=torch.tensor([lengths[pair] for pair, _ in used], dtype=torch.float64).clamp_min(1e-30),
        focal_prior=config.focal_prior,
        baseline_prior=config.baseline_prior,
    )

    def epipolar_terms(F: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """For F (P, 3, 3): the lines F p in image j and F^T q in image i (P, K, 3), q.Fp (P, K) and n (P, K)
        with n^2 = |(Fp)_xy|^2 + |(F^T q)_xy|^2; the Sampson distance is q.Fp / n."""
        line_2 = homogeneous @ F.transpose(-1, -2)
        line_1 = homogeneous_2 @ F
        algebraic = (homogeneous_2 * line_2).sum(-1)
        norm = (line_2[..., :2].square().sum(-1) + line_1[..., :2].square().sum(-1)).clamp_min(1e-30).sqrt()
        return line_2, line_1, algebraic, norm

    def sampson_gradient(F: Tensor) -> Tensor:
        """(P, K, 3, 3) gradient of each Sampson distance with respect to F: q p^T / n - q.Fp / (2 n^3) dn^2/dF,
        where dn^2/dF has rows x and y of 2 (Fp) p^T and columns x and y of 2 q (F^T q)^T."""
        line_2, line_1, algebraic, norm = epipolar_terms(F)
        line_2 = torch.cat([line_2[..., :2], torch.zeros_like(line_2[..., 2:])], -1)
        line_1 = torch.cat([line_1[..., :2], torch.zeros_like(line_1[..., 2:])], -1)
        d_norm_sq = 2 * line_2[..., :, None] * homogeneous[..., None, :]
        d_norm_sq = d_norm_sq + 2 * homogeneous_2[..., :, None] * line_1[..., None, :]
        outer = homogeneous_2[..., :, None] * homogeneous[..., None, :]
        return outer / norm[..., None, None] - (algebraic / (2 * norm**3))[..., None, None] * d_norm_sq

    def fun(params: Tensor) -> Tensor:
        F, prior = problem.fundamentals(params)
        _, _, algebraic, norm = epipolar_terms(F)
        return torch.cat([(algebraic / norm)[real], prior])

    def normal_equations(params: Tensor, weights: Tensor, residuals: Tensor) -> tuple[Tensor, Tensor]:
        # The chain rule through the P small matrices: F's derivatives in its pair's unknowns times each match's
        # closed-form gradient in F; then J^T W J and J^T W r block by block, each pair's (L, L) block added at
        # its unknowns' columns (a dense J would be (matches, U), with U - L zeros in every row).
        F, d_F, columns, d_prior = problem.jacobian(params)  # (P, 3, 3), (P, 9, L), (P, L), (G + P, U) or (P, U)
        rows = sampson_gradient(F).flatten(-2) @ d_F  # (P, K, L)
        match_weights = torch.zeros_like(real, dtype=torch.float64)  # (P, K), 0 where no match
        match_residuals = torch.zeros_like(real, dtype=torch.float64)
        match_weights[real], match_residuals[real] = weights[:num_matches], residuals[:num_matches]
        weighted = rows * match_weights[..., None]
        width = columns.shape[1]
        normal = torch.zeros(len(params), len(params), dtype=torch.float64)
        normal.index_put_(
            (columns[:, :, None].expand(-1, -1, width), columns[:, None, :].expand(-1, width, -1)),
            weighted.transpose(1, 2) @ rows,
            accumulate=True,
        )
        gradient = torch.zeros(len(params), dtype=torch.float64)
        gradient.index_add_(0, columns.flatten(), (weighted * match_residuals[..., None]).sum(1).flatten())
        prior_weights, prior_residuals = weights[num_matches:], residuals[num_matches:]
        normal += d_prior.T @ (prior_weights[:, None] * d_prior)
        gradient += d_prior.T @ (prior_weights * prior_residuals)
        return normal, gradient

    start = problem.start()
    start_residuals = fun(start)
    if not bool(torch.isfinite(start_residuals).all()):  # e.g. coincident cameras: no epipolar geometry
        return None
    before = float(start_residuals[:num_matches].abs().median())
    # Each start runs a few steps; the lowest cost goes on to convergence.
    candidates = []
    for factor in [1.0] if fix_focals else config.focal_starts:
        if not fix_focals:
            start[-num_groups:] = log_focal0 + float(np.log(factor))
        candidates.append(
            levenberg_marquardt(
                fun, normal_equations, start.clone(), config.loss_scale_px, config.start_iterations, num_matches
            )
        )
    best = min(candidates, key=lambda candidate: candidate[2])[0]
    solution, residuals, _ = levenberg_marquardt(
        fun, normal_equations, best, config.loss_scale_px, config.max_iterations, num_matches
    )
    distances = residuals[:num_matches].abs()  # pair by pair, `counts` of each in `used`'s order
    after = float(distances.median())
    if not bool(torch.isfinite(solution).all()) or not after <= config.loss_scale_px:
        return None
    pair_errors = {pair: float(d.median()) for (pair, _), d in zip(used, distances.split(counts), strict=True)}
    rotation, centre, log_focal = problem.unpack(solution)
    refined = poses.double().cpu().clone()
    refined[:, :3, :3], refined[:, :3, 3] = rotation, centre
    K = K0.clone()
    if not fix_focals:
        K[:, 0, 0] = log_focal[group].exp()
        K[:, 1, 1] = K[:, 0, 0] * K0[:, 1, 1] / K0[:, 0, 0]
    return BundleResult(refined.to(poses.dtype), K.to(intrinsics.dtype), len(used), (before, after), []), pair_errors
