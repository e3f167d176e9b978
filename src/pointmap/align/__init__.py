"""Global alignment: fuse pairwise pointmaps into one scene."""

from pointmap.align.config import AlignConfig
from pointmap.align.pipeline import global_align
from pointmap.align.scene import Scene

__all__ = ["AlignConfig", "Scene", "global_align"]
