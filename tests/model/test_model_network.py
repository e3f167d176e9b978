"""The network's pieces against closed forms and independent formulas, and its API contracts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_testing import TINY, random_images, random_model

from pointmap.model.config import ModelConfig
from pointmap.model.heads import LinearHead, postprocess
from pointmap.model.layers import RoPE2D, apply_rope
from pointmap.model.network import DUSt3R, EncodedImage
from pointmap.model.weights import load_model

_OUTPUTS = ("pts1", "conf1", "pts2", "conf2")


def _max_error(a, b) -> float:
    return max((getattr(a, name) - getattr(b, name)).abs().max().item() for name in _OUTPUTS)


def test_image_sides_must_be_multiples_of_16(tiny_model):
    with pytest.raises(ValueError, match="image of 225x300 .*multiples of 16; use load_images to resize"):
        tiny_model.encode(torch.zeros(1, 3, 225, 300))
    with pytest.raises(ValueError, match="image of 224x300 .*multiples of 16"):
        tiny_model.predict_pair(torch.zeros(1, 3, 224, 224), torch.zeros(1, 3, 224, 300))
    with pytest.raises(ValueError, match=r"img is \(3, 224, 224\); expected a \(B, 3, H, W\)"):
        tiny_model.encode(torch.zeros(3, 224, 224))


def test_mismatched_batches_are_refused(tiny_model):
    enc = tiny_model.encode(random_images(3, 32, 32))
    with pytest.raises(ValueError, match="decode got 2 view-1 and 1 view-2 encodings"):
        tiny_model.decode(enc[[0, 1]], enc[[2]])
    with pytest.raises(ValueError, match="img1 has batch 2 but img2 has 1"):
        tiny_model.predict_pair(random_images(2, 32, 32), random_images(1, 32, 32))


@torch.no_grad()
def test_encode_once_then_decode_equals_predict_pair(tiny_model):
    img1, img2 = random_images(2, 32, 48, seed=1), random_images(2, 32, 48, seed=2)
    both = tiny_model.encode(torch.cat((img1, img2)))  # what predict_pair does for equal shapes
    assert _max_error(tiny_model.decode(both[[0, 1]], both[2:]), tiny_model.predict_pair(img1, img2)) == 0.0
    portrait = random_images(2, 64, 32, seed=3)
    cached = tiny_model.decode(tiny_model.encode(img1), tiny_model.encode(portrait))
    assert _max_error(cached, tiny_model(img1, portrait)) == 0.0
    # a cache of three images serves pairs in any order; only batch-size-dependent rounding may differ
    images = torch.cat((img1, img2[:1]))
    cache = tiny_model.encode(images)
    out = tiny_model.decode(cache[torch.tensor([2, 0])], cache[[1, 2]])
    direct = tiny_model.predict_pair(images[[2, 0]], images[[1, 2]])
    assert _max_error(out, direct) <= 1e-5 * direct.pts1.abs().max().item()


@torch.no_grad()
def test_pairs_in_a_batch_do_not_interact(tiny_model):
    img1, img2 = random_images(3, 48, 32, seed=4), random_images(3, 32, 64, seed=5)
    batched = tiny_model.predict_pair(img1, img2)
    scale = max(batched.pts1.abs().max().item(), batched.pts2.abs().max().item())
    for b in range(3):
        alone = tiny_model.predict_pair(img1[b : b + 1], img2[b : b + 1])
        # rounding may depend on the batch size, nothing else may
        assert (alone.pts2 - batched.pts2[b]).abs().max() <= 1e-5 * scale
        assert (alone.conf1 - batched.conf1[b]).abs().max() <= 1e-5 * batched.conf1.max()


@torch.no_grad()
def test_views_of_different_shapes(tiny_dpt):
    # 80x112 is a 5x7 patch grid: odd on both axes, which the DPT's stride-2 branch rounds up
    landscape, portrait = random_images(1, 80, 112, seed=6), random_images(1, 112, 80, seed=7)
    out = tiny_dpt.predict_pair(landscape, portrait)
    assert out.pts1.shape == (1, 80, 112, 3) and out.conf1.shape == (1, 80, 112)
    assert out.pts2.shape == (1, 112, 80, 3) and out.conf2.shape == (1, 112, 80)
    assert out.conf1.min() >= 1.0 and out.conf2.min() >= 1.0
    assert torch.isfinite(out.pts2).all()


def test_encoded_image_indexing_and_concatenation():
    tokens = torch.arange(4 * 6 * 2, dtype=torch.float32).view(4, 6, 2)
    enc = EncodedImage(tokens, 32, 48)
    assert len(enc) == 4
    assert torch.equal(enc[[3, 1]].tokens, tokens[[3, 1]])
    assert torch.equal(enc[torch.tensor([2])].tokens, tokens[2:3])
    assert torch.equal(enc[1].tokens, tokens[1:2]) and enc[1:3].height == 32
    joined = EncodedImage.cat([enc[[0]], enc[2:]])
    assert torch.equal(joined.tokens, tokens[[0, 2, 3]]) and (joined.height, joined.width) == (32, 48)
    with pytest.raises(ValueError, match=r"shapes \[\(32, 48\), \(48, 32\)\]"):
        EncodedImage.cat([enc, EncodedImage(tokens, 48, 32)])


def test_postprocess_exp_depth_and_confidence_closed_form():
    raw = torch.tensor([[[[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, -0.5, 2.0], [0.0, 0.0, 0.0, -3.0]]]])  # (1, 1, 3, 4)
    pts, conf = postprocess(raw, ModelConfig())
    expected = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    expected[0] *= math.expm1(5.0)
    expected[1] *= math.expm1(0.5)
    assert torch.allclose(pts[0, 0], expected, rtol=1e-6)
    assert torch.allclose(conf[0, 0], torch.tensor([2.0, 1 + math.exp(2.0), 1 + math.exp(-3.0)]), rtol=1e-6)
    _, bounded = postprocess(raw, ModelConfig(conf_max=5.0))
    assert torch.allclose(bounded[0, 0], torch.tensor([2.0, 5.0, 1 + math.exp(-3.0)]), rtol=1e-6)


def test_linear_head_lays_patches_out_like_pixel_shuffle():
    generator = torch.Generator().manual_seed(0)
    head = LinearHead(dec_dim=8, patch_size=4)
    tokens = torch.randn(2, 3 * 5, 8, generator=generator)
    ours = head([tokens], 3, 5)  # (2, 12, 20, 4)
    features = head.proj(tokens).transpose(1, 2).reshape(2, 4 * 16, 3, 5)
    reference = F.pixel_shuffle(features, 4).permute(0, 2, 3, 1)
    assert ours.shape == (2, 12, 20, 4)
    assert torch.equal(ours, reference)


def _rope_reference(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, freq: float) -> torch.Tensor:
    """2D RoPE written with complex numbers: channel i and i + D/4 of each half form one rotating pair."""
    quarter = x.shape[-1] // 4
    inv_freq = freq ** (-torch.arange(quarter, dtype=torch.float64) * 2 / (2 * quarter))
    halves = []
    for half, pos in zip(x.double().chunk(2, dim=-1), (rows, cols), strict=True):
        pairs = torch.complex(half[..., :quarter], half[..., quarter:])
        turned = pairs * torch.polar(torch.ones(()).double(), pos.double()[:, None] * inv_freq)
        halves += [turned.real, turned.imag]
    return torch.cat(halves, dim=-1)


def test_rope_matches_complex_rotation_and_depends_on_relative_position():
    grid_h, grid_w, dim = 3, 5, 16
    rope = RoPE2D(100.0)
    tables = rope.tables(grid_h, grid_w, dim, torch.device("cpu"))
    assert tables is rope.tables(grid_h, grid_w, dim, torch.device("cpu"))  # computed once, then reused
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, grid_h * grid_w, dim, generator=generator)
    rows = torch.arange(grid_h).repeat_interleave(grid_w)
    cols = torch.arange(grid_w).repeat(grid_h)
    rotated = apply_rope(q, tables)
    assert torch.allclose(rotated.double(), _rope_reference(q, rows, cols, 100.0), atol=1e-5)
    assert torch.equal(rotated[..., 0, :], q[..., 0, :])  # position (0, 0) is the identity
    # the same q, k placed at every token: scores depend on (row, col) differences only
    q1 = q[:1, :1, :1].expand(1, 1, grid_h * grid_w, dim)
    k1 = torch.randn(1, 1, 1, dim, generator=generator).expand(1, 1, grid_h * grid_w, dim)
    scores = (apply_rope(q1, tables) @ apply_rope(k1, tables).transpose(-1, -2))[0, 0]
    index = torch.arange(grid_h * grid_w).view(grid_h, grid_w)
    # (0,0)->(1,2) and (1,1)->(2,3) and (2,2)->(3,4) share the offset (1, 2)
    same_offset = [scores[index[r, c], index[r + 1, c + 2]] for r, c in ((0, 0), (1, 1), (1, 2))]
    assert torch.allclose(torch.stack(same_offset), same_offset[0].expand(3), rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@torch.no_grad()
def test_autocast_runs_low_precision_close_to_float32(dtype):
    model = random_model(TINY, seed=8)
    img1, img2 = random_images(2, 32, 48, seed=9), random_images(2, 48, 32, seed=10)
    reference = model(img1, img2)
    with torch.autocast("cpu", dtype=dtype):
        fast = model(img1, img2)
        enc = model.encode(img1)
    assert enc.tokens.dtype == dtype  # the transformer ran in low precision
    for name in _OUTPUTS:
        got, want = getattr(fast, name), getattr(reference, name)
        assert got.dtype == torch.float32  # the heads and post-processing run in float32
        assert (got - want).abs().max() <= 0.05 * want.abs().max(), name


@torch.no_grad()
def test_heads_may_run_in_the_autocast_dtype(tiny_model):
    img1, img2 = random_images(1, 32, 48, seed=12), random_images(1, 48, 32, seed=13)
    reference = tiny_model(img1, img2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        exact_heads = tiny_model(img1, img2)
        tiny_model.float32_heads = False
        fast_heads = tiny_model(img1, img2)
    assert fast_heads.pts2.dtype == torch.float32 and fast_heads.conf1.dtype == torch.float32
    assert not torch.equal(fast_heads.pts2, exact_heads.pts2)  # the heads did run in bfloat16
    for name in _OUTPUTS:
        got, want = getattr(fast_heads, name), getattr(reference, name)
        assert (got - want).abs().max() <= 0.05 * want.abs().max(), name


@torch.no_grad()
def test_dtype_follows_the_model():
    model = DUSt3R(TINY, dtype=torch.float64).eval()
    out = model(random_images(1, 32, 32).double(), random_images(1, 32, 32, seed=1).double())
    assert out.pts1.dtype == torch.float64 and out.conf2.dtype == torch.float64
    assert model.image_size == 224 and model.config is TINY
    half = random_model(TINY, seed=14).to(torch.bfloat16)
    out = half(random_images(1, 32, 32), random_images(1, 32, 32, seed=1))  # float32 images
    assert out.pts1.dtype == torch.bfloat16 and torch.isfinite(out.pts2.float()).all()


@pytest.mark.parametrize("head_type", ["linear", "dpt"])
def test_training_after_inference_mode_backpropagates(head_type, tiny_dpt):
    model = random_model(TINY, seed=11) if head_type == "linear" else tiny_dpt
    img = random_images(1, 32, 32)
    with torch.inference_mode():
        model(img, img)  # fills the RoPE cache inside inference mode
    model.zero_grad(set_to_none=True)
    out = model(img, img)
    (out.pts1.square().mean() + out.conf2.mean()).backward()
    # every trainable parameter gets a gradient (DDP needs it); the parameters that never run are frozen
    assert [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    assert not model.mask_token.requires_grad
    assert model.enc_blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


@pytest.mark.gpu
def test_cuda_matches_cpu_and_autocast_stays_close(golden):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    data = np.load(golden / "linear224" / "case0.npz")
    img1, img2 = torch.from_numpy(data["img1"]).cuda(), torch.from_numpy(data["img2"]).cuda()
    model = load_model(golden / "linear224" / "checkpoint.pth", device="cuda")
    expected = torch.from_numpy(data["pts3d_2_in_1"]).cuda()
    # float32 reference: no TF32 in the patch-embedding convolution (cudnn's default), only inside this block
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        out = model(img1, img2)
        assert (out.pts2 - expected).abs().max() <= 1e-4 * expected.abs().max()
        for dtype in (torch.bfloat16, torch.float16):
            with torch.autocast("cuda", dtype=dtype):
                fast = model(img1, img2)
            assert fast.pts2.dtype == torch.float32
            assert (fast.pts2 - expected).abs().max() <= 0.05 * expected.abs().max()


@pytest.mark.slow
@torch.no_grad()
def test_compiled_blocks_match_eager():
    model = random_model(TINY, seed=15)
    img1, img2 = random_images(2, 32, 48, seed=16), random_images(2, 48, 32, seed=17)
    eager = model(img1, img2)
    compiled = model.compile_blocks()(img1, img2)
    for name in _OUTPUTS:
        got, want = getattr(compiled, name), getattr(eager, name)
        assert (got - want).abs().max() <= 1e-5 * want.abs().max(), name
