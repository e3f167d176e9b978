"""Loading and saving weights: every format, and clear errors for everything else."""

from __future__ import annotations

import argparse
import fractions
import json
import shutil

import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from model_testing import TINY, TINY_DPT, random_images, random_model
from safetensors.torch import save_file

from pointmap.model import weights
from pointmap.model.weights import load_model, save_model

_HUB_ID = "naver/DUSt3R_ViTLarge_BaseDecoder_224_linear"


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa)


@pytest.fixture(scope="module")
def linear224(golden):
    return load_model(golden / "linear224" / "checkpoint.pth")


def test_pth_hub_folder_and_hub_id_give_the_same_weights(golden, linear224, monkeypatch):
    served = []

    def fake_download(repo_id: str, filename: str) -> str:
        served.append((repo_id, filename))
        return str(golden / "linear224" / "hf" / filename)

    monkeypatch.setattr(weights, "hf_hub_download", fake_download)
    from_hub = load_model(_HUB_ID)
    assert served == [(_HUB_ID, "config.json"), (_HUB_ID, "model.safetensors")]
    assert _same_weights(from_hub, linear224)
    assert _same_weights(load_model(golden / "linear224" / "hf"), linear224)
    assert _same_weights(load_model(golden / "linear224" / "hf" / "model.safetensors"), linear224)
    assert not linear224.training


def test_offline_hub_id_names_the_id_and_the_local_way_out(monkeypatch):
    def offline(repo_id: str, filename: str) -> str:
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache")

    monkeypatch.setattr(weights, "hf_hub_download", offline)
    with pytest.raises(OSError, match=f"could not get '{_HUB_ID}' from the Hugging Face hub") as err:
        load_model(_HUB_ID)
    assert "LocalEntryNotFoundError" in str(err.value) and "pass a local path" in str(err.value)


@pytest.mark.parametrize("head_type", ["linear", "dpt"])
def test_save_load_round_trip_is_bit_exact(tmp_path, tiny_dpt, head_type):
    model = random_model(TINY, seed=3) if head_type == "linear" else tiny_dpt
    config = model.config
    folder = save_model(model, tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]  # no temp files left
    assert json.loads((folder / "config.json").read_text())["format"] == "pointmap.dust3r"
    loaded = load_model(folder)
    assert loaded.config == config
    assert _same_weights(loaded, model)
    img = random_images(1, 32, 48)
    with torch.no_grad():
        a, b = model(img, img), loaded(img, img)
    assert torch.equal(a.pts2, b.pts2) and torch.equal(a.conf2, b.conf2)


def test_dpt_aliases_are_restored_from_either_name(tmp_path, tiny_dpt):
    model = tiny_dpt
    state_dict = {k: v for k, v in model.state_dict().items() if ".layer_rn." not in k}
    (tmp_path / "config.json").write_text(json.dumps({"format": "pointmap.dust3r", "format_version": 1,
                                                      "config": TINY_DPT.to_dict()}))
    save_file(state_dict, tmp_path / "model.safetensors")
    loaded = load_model(tmp_path)
    head = loaded.downstream_head1.dpt.scratch
    assert head.layer_rn[2] is head.layer3_rn
    assert torch.equal(head.layer3_rn.weight, model.downstream_head1.dpt.scratch.layer3_rn.weight)
    only_alias = {k: v for k, v in model.state_dict().items() if not k.endswith("_rn.weight")}
    assert _same_weights(weights.build_model(TINY_DPT, only_alias), model)


def test_dtype_and_device_are_applied(golden):
    model = load_model(golden / "linear224" / "checkpoint.pth", device="cpu", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_truncated_pth_says_it_may_be_truncated(golden, tmp_path):
    data = (golden / "linear224" / "checkpoint.pth").read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read it as a torch checkpoint.*may be truncated"):
        load_model(truncated)


def test_truncated_safetensors_says_it_may_be_truncated(golden, tmp_path):
    folder = tmp_path / "hf"
    shutil.copytree(golden / "linear224" / "hf", folder)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) - 1000])
    with pytest.raises(ValueError, match="cannot read it as safetensors.*may be truncated"):
        load_model(folder)


def test_json_passed_as_checkpoint(golden, tmp_path):
    with pytest.raises(ValueError, match="is a JSON file, not a checkpoint"):
        load_model(golden / "linear224" / "hf" / "config.json")
    disguised = tmp_path / "model.pth"
    disguised.write_text('{"model": "AsymmetricCroCo3DStereo()"}')
    with pytest.raises(ValueError, match="is a JSON file, not a checkpoint"):
        load_model(disguised)


def _timm_vit_state_dict() -> dict[str, torch.Tensor]:
    dim = 48
    return {
        "cls_token": torch.zeros(1, 1, dim),
        "pos_embed": torch.zeros(1, 197, dim),
        "patch_embed.proj.weight": torch.zeros(dim, 3, 16, 16),
        "patch_embed.proj.bias": torch.zeros(dim),
        "blocks.0.attn.qkv.weight": torch.zeros(3 * dim, dim),
        "blocks.0.attn.qkv.bias": torch.zeros(3 * dim),
        "norm.weight": torch.ones(dim),
        "head.weight": torch.zeros(1000, dim),
    }


def test_plain_state_dict_of_another_architecture(tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(_timm_vit_state_dict(), path)
    with pytest.raises(ValueError, match=r"not an official DUSt3R checkpoint: expected a dict with 'args'.*blocks\.0"):
        load_model(path)


def test_dust3r_config_with_foreign_weights_lists_the_keys(golden, tmp_path):
    manifest = json.loads((golden / "manifest.json").read_text())
    path = tmp_path / "mixed.pth"
    args = argparse.Namespace(model=manifest["linear224"]["model"])
    torch.save({"args": args, "model": _timm_vit_state_dict()}, path)
    with pytest.raises(ValueError) as err:
        load_model(path)
    message = str(err.value)
    assert "do not fit a DUSt3R network of encoder 64x3, decoder 48x2, linear head" in message
    assert "unexpected keys: blocks.0.attn.qkv.bias, blocks.0.attn.qkv.weight, cls_token, head.weight" in message
    assert "shape mismatches: patch_embed.proj.bias (48,) (expected (64,))" in message
    n_expected = len(load_model(golden / "linear224" / "checkpoint.pth").state_dict())
    assert f"{n_expected - 2} missing keys" in message


def test_one_missing_key_is_named(golden, tmp_path):
    folder = tmp_path / "hf"
    shutil.copytree(golden / "linear224" / "hf", folder)
    state_dict = weights.load_file(folder / "model.safetensors")
    del state_dict["dec_blocks2.1.norm_y.bias"]
    save_file(state_dict, folder / "model.safetensors")
    with pytest.raises(ValueError, match=r"1 missing keys: dec_blocks2\.1\.norm_y\.bias\."):
        load_model(folder)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"args": fractions.Fraction(1, 3), "model": {}}, path)
    with pytest.raises(ValueError, match="holds Python objects other than tensors"):
        load_model(path)


def test_missing_sources(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DEFAULT_MODEL_DIR", tmp_path / "default_model")
    with pytest.raises(FileNotFoundError, match="no bundled model is installed.*pass a .pth checkpoint"):
        load_model()
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_model(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="no config.json in this folder"):
        load_model(tmp_path)
