"""TOML configs: the shipped ones parse, nested sections get their types, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointmap.data.augment import AugmentConfig
from pointmap.data.mix import DatasetSpec
from pointmap.model.config import ModelConfig
from pointmap.train.config import TrainConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    config = load_config(path)
    assert isinstance(config, TrainConfig) and config.data.train
    assert all(isinstance(spec, DatasetSpec) for spec in config.data.train + config.data.eval)
    if config.model.init == "scratch":
        ModelConfig.from_dict(dict(config.model.config))  # the model section builds a network config


def test_tiny_cpu_values(tmp_path):
    config = load_config(CONFIGS / "tiny-cpu.toml")
    assert config.data.resolution_list() == ((64, 64),)
    assert config.data.train[0].size == (80, 80) and config.data.train[0].in_memory == 8
    assert isinstance(config.data.augment, AugmentConfig) and config.data.augment.jpeg_prob == 0.0
    assert config.optim.betas == (0.9, 0.95) and config.optim.steps == 150


def test_presets_and_errors(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[data]\nresolutions = 512\n[[data.train]]\nkind = "generic"\nroot = "x"\n')
    config = load_config(path)
    assert len(config.data.resolution_list()) == 10
    path.write_text("[optim]\nlearning_rate = 1e-4\n")
    with pytest.raises(ValueError, match=r"c.toml.optim: unknown keys \['learning_rate'\]"):
        load_config(path)
    path.write_text("[optim\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="configs/"):
        load_config(tmp_path / "missing.toml")
