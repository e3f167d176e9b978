"""Real training scenes with pseudo ground truth, built as MegaDepth was: COLMAP structure from motion,
plane-sweep multi-view stereo, a multi-view consistency filter, quality control (docs/real-data.md)."""

from pointmap.data.real.build import SceneResult, build_dense, build_real, build_sfm, main
from pointmap.data.real.config import BuildConfig, QualityConfig, SfmConfig, StereoConfig
from pointmap.data.real.sfm_state import SfmRecord, SfmScene

__all__ = [
    "BuildConfig",
    "QualityConfig",
    "SceneResult",
    "SfmConfig",
    "SfmRecord",
    "SfmScene",
    "StereoConfig",
    "build_dense",
    "build_real",
    "build_sfm",
    "main",
]
