"""Options of the global alignment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AlignConfig:
    """How `global_align` fuses pairwise pointmaps into one scene."""

    iterations: int = 300
    """Most alternation sweeps (each: every edge similarity in closed form, then every camera and depth)."""
    tolerance: float | None = 1e-6
    """Stop early when the objective improves by less than this fraction in a sweep; None runs all sweeps."""
    subsample: int = 8
    """Pixel stride of the optimisation grid; the final depth maps are solved at full resolution."""
    conf_transform: Literal["log", "linear"] = "log"
    """Weight of a predicted point: log(conf) (the official default) or conf itself."""
    robust: bool = True
    """Minimise the paper's unsquared distance (by reweighting); False minimises squared distances."""
    fix_poses: bool = True
    """Keep the known poses fixed; False uses them only as the initialisation."""
    fix_focals: bool = True
    """Keep the known focals (or intrinsics) fixed; False uses them only as the initialisation."""
    optimize_pp: bool = False
    """Estimate each principal point too; by default it stays at the image centre (or the known one)."""
    min_conf: float = 3.0
    """Scene masks keep points whose confidence exceeds this (raw confidence, >= 1)."""
    clean: bool = True
    """Mask points that another camera sees in front of its own surface (the official clean_depth idea)."""
    clean_tolerance: float = 0.02
    """Relative depth margin of the consistency test of `clean`. The official 0.001 removes a third of the
    points of a room whose fused depths carry a 0.3 % error; 0.02 keeps those and still catches floaters."""
    chunk_size: int = 16
    """Edges moved to the device at a time in the full-resolution pass."""
    device: str = "cpu"
    """Where the optimisation runs; predictions stay where they are and are streamed in chunks."""
    verbose: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise ValueError(f"AlignConfig.iterations={self.iterations}: pass 0 or more sweeps")
        if self.subsample < 1:
            raise ValueError(f"AlignConfig.subsample={self.subsample}: pass a stride of 1 or more pixels")
        if self.chunk_size < 1:
            raise ValueError(f"AlignConfig.chunk_size={self.chunk_size}: pass 1 or more edges")
        if self.conf_transform not in ("log", "linear"):
            raise ValueError(f"AlignConfig.conf_transform={self.conf_transform!r}: pass 'log' or 'linear'")
