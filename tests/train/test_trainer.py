"""The trainer end to end on a tiny model and a tiny generic-format dataset (CPU)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
from train_testing import tiny_config, write_plane_dataset

from pointmap.data.mix import build_mix
from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R
from pointmap.model.weights import load_model, save_model
from pointmap.train.checkpoint import list_checkpoints, model_from_checkpoint
from pointmap.train.config import ModelSection
from pointmap.train.logs import read_metrics
from pointmap.train.schedule import learning_rate
from pointmap.train.trainer import Trainer, freeze_unused, heldout_losses


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run much faster on one thread on a shared machine (OpenMP threads wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_plane_dataset(tmp_path_factory.mktemp("planes"))


def _train_rows(run_dir):
    return {int(r["step"]): r for r in read_metrics(run_dir / "metrics.csv") if r["split"] == "train"}


def test_overfits_a_fixed_pair(dataset, tmp_path):
    # One scene, one pair in every batch: the regression error must fall well below its start.
    config = tiny_config(dataset, steps=40, eval_every=100, checkpoint_every=100)
    trainer = Trainer(config, tmp_path / "run", verbose=False)
    trainer.train_mix.datasets[0].pairs = trainer.train_mix.datasets[0].pairs[:1]
    trainer.fit()
    rows = _train_rows(tmp_path / "run")
    first, last = float(rows[1]["regr"]), float(rows[40]["regr"])
    assert last < first / 3, (first, last)


def test_run_writes_metrics_checkpoints_and_a_loadable_model(dataset, tmp_path):
    final = Trainer(tiny_config(dataset), tmp_path / "run", verbose=False).fit()
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [(int(r["step"]), r["split"]) for r in rows] == [
        (1, "train"), (2, "train"), (3, "train"), (3, "eval"), (4, "train"), (5, "train"), (6, "train"), (6, "eval")
    ]
    assert all(float(r["loss"]) == float(r["loss"]) for r in rows)  # no NaN
    shares = [float(r["data_share"]) for r in rows if r["split"] == "train"]
    assert len(shares) == 6 and all(0 <= share < 1 for share in shares)  # time waiting for batches
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step-00000003", "step-00000006"]
    model = load_model(final)
    assert model.config.enc_embed_dim == 32
    from_checkpoint = model_from_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, from_checkpoint.state_dict()[name]), name
    with pytest.raises(FileExistsError, match="resume=True"):
        Trainer(tiny_config(dataset), tmp_path / "run", resume=False, verbose=False)


def test_frozen_encoder_stays_and_weights_init_starts_from_a_saved_model(dataset, tmp_path):
    first = Trainer(tiny_config(dataset, steps=2), tmp_path / "first", verbose=False).fit()
    saved = load_model(first).state_dict()
    config = tiny_config(dataset, steps=2)
    config = dataclasses.replace(config, model=ModelSection(init="weights", weights=str(first), freeze_encoder=True))
    trainer = Trainer(config, tmp_path / "second", verbose=False)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    trainer.fit()
    after = trainer.model.state_dict()
    assert torch.equal(after["enc_blocks.0.attn.qkv.weight"], saved["enc_blocks.0.attn.qkv.weight"])
    assert torch.equal(after["patch_embed.proj.weight"], saved["patch_embed.proj.weight"])
    assert not torch.equal(after["dec_blocks.0.attn.qkv.weight"], saved["dec_blocks.0.attn.qkv.weight"])


def test_resume_after_a_kill_matches_the_uninterrupted_run(dataset, tmp_path):
    whole = tmp_path / "whole"
    Trainer(tiny_config(dataset), whole, verbose=False).fit()
    # A run killed after its step-3 checkpoint, with log rows past it already written.
    killed = tmp_path / "killed"
    shutil.copytree(whole, killed)
    shutil.rmtree(killed / "checkpoints" / "step-00000006")
    shutil.rmtree(killed / "model")
    trainer = Trainer(tiny_config(dataset), killed, verbose=False)
    assert trainer.step == 3
    trainer.fit()
    rows_whole, rows_resumed = _train_rows(whole), _train_rows(killed)
    assert sorted(rows_resumed) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert rows_resumed[step]["loss"] == rows_whole[step]["loss"]
    weights_whole, weights_resumed = load_model(whole / "model").state_dict(), load_model(killed / "model").state_dict()
    for name, tensor in weights_whole.items():
        assert torch.equal(tensor, weights_resumed[name]), name


def test_resume_without_moments_rewarms_the_learning_rate(dataset, tmp_path):
    config = tiny_config(dataset, checkpoint_optimizer="none")
    config = dataclasses.replace(config, optim=dataclasses.replace(config.optim, rewarm_steps=4))
    Trainer(config, tmp_path, verbose=False).fit()
    shutil.rmtree(tmp_path / "checkpoints" / "step-00000006")
    trainer = Trainer(config, tmp_path, verbose=False)
    assert trainer.rewarm_from == 3 and not trainer.optimizer.state
    trainer.fit()
    rows = _train_rows(tmp_path)
    optim = config.optim
    for step in (4, 5, 6):  # row `step` logs the rate of 0-based step `step - 1`
        scheduled = learning_rate(step - 1, optim.steps, optim.lr, optim.min_lr, optim.warmup_steps)
        assert float(rows[step]["lr"]) == pytest.approx(scheduled * (step - 3) / 4, rel=1e-5)


def test_parameters_without_gradients_are_frozen_for_ddp():
    config = ModelConfig(image_size=224, patch_size=8, enc_embed_dim=32, enc_depth=1, enc_num_heads=2,
                         dec_embed_dim=32, dec_depth=4, dec_num_heads=2, head_type="dpt")
    model = DUSt3R(config)
    model.spare = torch.nn.Parameter(torch.zeros(3))  # a parameter no output depends on
    unused = freeze_unused(model)
    assert "spare" in unused and not model.spare.requires_grad
    assert all(p.grad is None for p in model.parameters())
    # What DDP needs: every parameter still trained receives a gradient.
    out = model(torch.randn(2, 3, 32, 48), torch.randn(2, 3, 32, 48))
    (out.pts1.sum() + out.conf1.sum() + out.pts2.sum() + out.conf2.sum()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_init_from_a_checkpoint_folder_or_the_bundled_model(dataset, tmp_path):
    Trainer(tiny_config(dataset, steps=3), tmp_path / "first", verbose=False).fit()
    checkpoint = list_checkpoints(tmp_path / "first")[-1]
    saved = model_from_checkpoint(checkpoint).state_dict()
    config = tiny_config(dataset, steps=3)
    config = dataclasses.replace(config, model=ModelSection(init="weights", weights=str(checkpoint)))
    trainer = Trainer(config, tmp_path / "second", verbose=False)
    assert trainer.step == 0 and not trainer.optimizer.state  # the weights only: a new run
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    bundled = dataclasses.replace(config, model=ModelSection(init="weights", weights="bundled"))
    model = Trainer(bundled, tmp_path / "third", verbose=False).model
    reference = load_model()
    assert torch.equal(model.state_dict()["enc_norm.weight"], reference.state_dict()["enc_norm.weight"])
    assert model.image_size == reference.image_size == 224
    at_512 = dataclasses.replace(config, model=ModelSection(init="weights", weights="bundled", image_size=512))
    trainer = Trainer(at_512, tmp_path / "fourth", verbose=False)
    assert trainer.model.image_size == 512
    assert torch.equal(trainer.model.state_dict()["enc_norm.weight"], reference.state_dict()["enc_norm.weight"])
    assert load_model(trainer.fit()).image_size == 512  # the trained model keeps the new size rule
    with pytest.raises(ValueError, match="224 or 512"):
        Trainer(dataclasses.replace(at_512, model=ModelSection(init="weights", weights="bundled", image_size=384)),
                tmp_path / "fifth", verbose=False)


@pytest.mark.slow  # about 40 s: inductor compiles the tiny blocks on CPU
def test_compiled_blocks_train_as_the_plain_model(dataset, tmp_path):
    plain, compiled = tmp_path / "plain", tmp_path / "compiled"
    Trainer(tiny_config(dataset), plain, verbose=False).fit()
    trainer = Trainer(tiny_config(dataset, compile_blocks=True), compiled, verbose=False)
    assert all(block._compiled_call_impl is not None for block in trainer.model.enc_blocks)  # nn.Module.compile's
    trainer.fit()
    rows_plain, rows_compiled = _train_rows(plain), _train_rows(compiled)
    for step in range(1, 7):  # fused kernels round differently; six steps of AdamW keep it small
        assert float(rows_compiled[step]["loss"]) == pytest.approx(float(rows_plain[step]["loss"]), rel=1e-3), step
    weights_plain = load_model(plain / "model").state_dict()
    weights_compiled = load_model(compiled / "model").state_dict()
    assert weights_compiled.keys() == weights_plain.keys()  # no "_orig_mod." in the saved names
    for name, tensor in weights_plain.items():
        torch.testing.assert_close(weights_compiled[name], tensor, rtol=1e-3, atol=1e-4, msg=name)


def test_heldout_losses_of_saved_weights_are_the_trainers_eval(dataset, tmp_path):
    # training/heldout_loss.py's path: weights saved and loaded again, the eval sources built on their own.
    config = tiny_config(dataset)
    trainer = Trainer(config, tmp_path / "run", verbose=False)
    trainer.fit()
    logged = trainer.evaluate()
    model = load_model(save_model(trainer.model, tmp_path / "model")).eval()
    again = heldout_losses(model, build_mix(config.data.eval), config, torch.device("cpu"))
    assert logged and again == pytest.approx(logged, rel=1e-5)
    assert not model.training  # left in the mode it came in
