"""ModelConfig: parsing the official constructor strings and building the released architectures."""

from __future__ import annotations

import json

import pytest
import torch

from pointmap.model.config import ModelConfig
from pointmap.model.network import DUSt3R

_RELEASED = {
    "DUSt3R_ViTLarge_BaseDecoder_224_linear": (224, "linear"),
    "DUSt3R_ViTLarge_BaseDecoder_512_linear": (512, "linear"),
    "DUSt3R_ViTLarge_BaseDecoder_512_dpt": (512, "dpt"),
}


@pytest.fixture(scope="module")
def official(golden) -> dict:
    return json.loads((golden / "official_configs.json").read_text())


@pytest.mark.parametrize("name", sorted(_RELEASED))
def test_released_configs_parse(official, name):
    config = ModelConfig.from_official_string(official[name]["model"])
    image_size, head_type = _RELEASED[name]
    assert (config.image_size, config.head_type) == (image_size, head_type)
    assert (config.enc_embed_dim, config.enc_depth, config.enc_num_heads) == (1024, 24, 16)
    assert (config.dec_embed_dim, config.dec_depth, config.dec_num_heads) == (768, 12, 12)
    assert (config.patch_size, config.mlp_ratio, config.rope_freq) == (16, 4.0, 100.0)
    assert (config.depth_mode, config.conf_mode, config.conf_min, config.conf_max) == ("exp", "exp", 1.0, None)


@pytest.mark.parametrize("name", sorted(_RELEASED))
def test_meta_build_has_exactly_the_official_keys_and_shapes(official, name):
    model = DUSt3R(ModelConfig.from_official_string(official[name]["model"]), device="meta")
    ours = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    theirs = official[name]["state_dict"]
    assert sorted(set(ours) ^ set(theirs)) == []
    assert {key: shape for key, shape in ours.items() if theirs[key] != shape} == {}
    assert sum(p.numel() for p in model.parameters()) == official[name]["n_params"]


def test_default_config_is_the_released_512_dpt(official):
    released = ModelConfig.from_official_string(official["DUSt3R_ViTLarge_BaseDecoder_512_dpt"]["model"])
    assert ModelConfig() == released
    assert released.dpt_hooks == (0, 6, 9, 12)


def test_hub_config_json_matches_the_checkpoint_string(golden):
    hub = json.loads((golden / "linear224" / "hf" / "config.json").read_text())
    manifest = json.loads((golden / "manifest.json").read_text())
    assert ModelConfig.from_official_kwargs(hub) == ModelConfig.from_official_string(manifest["linear224"]["model"])


def test_dict_round_trip_and_unknown_fields():
    config = ModelConfig(head_type="linear", image_size=224, conf_max=50.0)
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match=r"unknown fields \['depth'\]"):
        ModelConfig.from_dict({**config.to_dict(), "depth": 3})


def test_croco_defaults_fill_missing_arguments():
    config = ModelConfig.from_official_string("AsymmetricCroCo3DStereo(pos_embed='RoPE100')")
    assert (config.enc_embed_dim, config.enc_depth, config.dec_embed_dim, config.dec_depth) == (768, 12, 512, 8)
    assert (config.image_size, config.head_type, config.rope_freq) == (224, "linear", 100.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "not a call like AsymmetricCroCo3DStereo"),
        ("AsymmetricCroCo3DStereo(enc_depth=__import__('os'))", "is not a literal"),
        ("AsymmetricCroCo3DStereo(enc_depth=len('abc'))", "is not a literal"),
        ("AsymmetricMASt3R(pos_embed='RoPE100')", "builds AsymmetricMASt3R, not AsymmetricCroCo3DStereo"),
        ("AsymmetricCroCo3DStereo(pos_embed='cosine')", "RoPE position embeddings only"),
        ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', head_type='dpt', dropout=0.1)", r"\['dropout'\]"),
        ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', output_mode='pts3d+desc')", "only 'pts3d'"),
        ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', depth_mode=('exp', 0, 10))", "bounded depth"),
        ("AsymmetricCroCo3DStereo(", "not a constructor call"),
        ("AsymmetricCroCo3DStereo('RoPE100')", "only keyword arguments"),
    ],
)
def test_bad_constructor_strings_are_refused_with_reasons(text, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_official_string(text)


def test_head_width_must_suit_2d_rope():
    with pytest.raises(ValueError, match="head width must be an integer multiple of 4"):
        ModelConfig(enc_embed_dim=36, enc_num_heads=6)


def test_meta_build_allocates_nothing():
    model = DUSt3R(ModelConfig(), device="meta")
    assert all(p.device == torch.device("meta") for p in model.parameters())
