"""pointmap: dense 3D reconstruction from uncalibrated photos (DUSt3R)."""

from pointmap.align import AlignConfig, Scene, global_align
from pointmap.images import View, load_images
from pointmap.inference import PairPredictions, infer_pairs
from pointmap.model.weights import load_model, save_model
from pointmap.pairs import make_pairs
from pointmap.pipeline import reconstruct
from pointmap.two_view import PairAnalysis, analyze_pair, monocular_depth

__all__ = [
    "AlignConfig",
    "PairAnalysis",
    "PairPredictions",
    "Scene",
    "View",
    "analyze_pair",
    "global_align",
    "infer_pairs",
    "load_images",
    "load_model",
    "make_pairs",
    "monocular_depth",
    "reconstruct",
    "save_model",
]
