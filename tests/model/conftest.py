"""Fixtures for the network tests: the golden data of the official implementation, and tiny models."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from model_testing import TINY, TINY_DPT, random_model, rules_state_dict

from pointmap.model.network import DUSt3R

# CI clones the repository with shared/ beside it; POINTMAP_GOLDEN points elsewhere.
_DEFAULT_GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "golden"


@pytest.fixture(scope="session")
def golden() -> Path:
    """The golden data folder (skips the test when it is absent)."""
    path = Path(os.environ.get("POINTMAP_GOLDEN", _DEFAULT_GOLDEN)).resolve()
    if not (path / "manifest.json").is_file():
        pytest.skip(f"golden data not found at {path}; set POINTMAP_GOLDEN or clone shared/ beside the repo")
    return path


@pytest.fixture(scope="session")
def golden_rules(golden: Path) -> Callable[[str], tuple[str, dict[str, torch.Tensor]]]:
    """name ("linear224" | "dpt512") -> (constructor string, state dict) from weights.json."""
    return lambda name: rules_state_dict(golden / name / "weights.json")


@pytest.fixture
def tiny_model() -> DUSt3R:
    return random_model(TINY)


@pytest.fixture(scope="session")
def tiny_dpt() -> DUSt3R:
    """A small DPT model (the DPT head keeps its official widths, so building it takes a second)."""
    return random_model(TINY_DPT, seed=4)
