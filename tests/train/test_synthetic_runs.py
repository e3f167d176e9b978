"""Training on the synthetic engine's pairs (slow: the engine renders on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_testing import NO_AUGMENT, TINY_MODEL

from pointmap.data.mix import DatasetSpec
from pointmap.model.weights import load_model
from pointmap.train.config import DataSection, ModelSection, OptimSection, RunSection, TrainConfig
from pointmap.train.logs import read_metrics
from pointmap.train.losses import LossConfig
from pointmap.train.trainer import Trainer, train_from_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.slow  # about 60 s
def test_tiny_model_overfits_eight_synthetic_pairs(tmp_path):
    spec = DatasetSpec(kind="synthetic", split="train", size=(64, 64), in_memory=8,
                       options=dict(pairs_per_scene=2, candidates=3, shadows=False, train_length=8))
    model = dict(TINY_MODEL, enc_embed_dim=64, dec_embed_dim=64, enc_num_heads=4, dec_num_heads=4, enc_depth=2,
                 dec_depth=2)
    config = TrainConfig(
        model=ModelSection(config=model),
        data=DataSection(train=(spec,), resolutions=((64, 64),), batch_size=8, augment=NO_AUGMENT),
        optim=OptimSection(steps=150, lr=3e-3, min_lr=3e-4, warmup_steps=10, weight_decay=0.0),
        loss=LossConfig(use_confidence=False),  # the plain regression loss: positive, so "falls 5x" means it
        run=RunSection(log_every=10, eval_every=10**6, checkpoint_every=10**6, cpu_threads=1),
    )
    Trainer(config, tmp_path, verbose=False).fit()
    losses = [float(r["loss"]) for r in read_metrics(tmp_path / "metrics.csv")]
    assert losses[-1] < losses[0] / 5, losses  # measured: 2.34 -> 0.27


@pytest.mark.slow  # about 70 s
def test_tiny_cpu_config_end_to_end(tmp_path):
    final = train_from_config(CONFIGS / "tiny-cpu.toml", tmp_path, verbose=False)
    rows = read_metrics(tmp_path / "metrics.csv")
    train = [float(r["loss"]) for r in rows if r["split"] == "train"]
    evals = [float(r["loss"]) for r in rows if r["split"] == "eval"]
    assert len(train) == 15 and len(evals) == 3
    assert train[-1] < train[0] / 2 and evals[-1] < evals[0]
    assert final == tmp_path / "model" and load_model(final).config.enc_embed_dim == 64
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] and (tmp_path / "train_config.json").is_file()
