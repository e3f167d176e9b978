"""Real training scenes with pseudo ground truth, built as MegaDepth was: COLMAP structure from motion,
plane-sweep multi-view stereo, a multi-view consistency filter, quality control (docs/real-data.md)."""

from pointmap.data.real.build import SceneResult, build_real, main
from pointmap.data.real.config import BuildConfig, QualityConfig, SfmConfig, StereoConfig

__all__ = ["BuildConfig", "QualityConfig", "SceneResult", "SfmConfig", "StereoConfig", "build_real", "main"]
