"""pointmap: dense 3D reconstruction from uncalibrated photos (DUSt3R)."""

from pointmap.align.scene import Scene
from pointmap.images import View
from pointmap.inference import PairPredictions

__all__ = ["PairPredictions", "Scene", "View"]
