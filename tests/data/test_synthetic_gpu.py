"""The synthetic engine on CUDA gives the CPU's depth and (nearly) its pixels."""

import pytest
import torch

from pointmap.data.synthetic import SyntheticConfig, SyntheticPairDataset, make_scene, render_views, room_capture
from pointmap.data.synthetic.cameras import intrinsics_from_fov, look_at

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_cuda_render_matches_cpu():
    K = intrinsics_from_fov(torch.tensor([60.0, 70.0]), 48, 64)
    pose = look_at(torch.tensor([[0.4, -0.8, 1.5], [-0.3, -0.2, 1.3]]), torch.tensor([[-0.5, 2.0, 0.8]] * 2))
    for kind in ("room", "objects", "street"):
        rgb_cpu, depth_cpu = render_views(make_scene(kind, 3), K, pose, 48, 64)
        rgb_gpu, depth_gpu = render_views(make_scene(kind, 3, device="cuda"), K, pose, 48, 64)
        assert rgb_gpu.is_cuda and depth_gpu.is_cuda
        # Float rounding differs between devices: allow a few pixels on shape edges to differ.
        assert ((depth_gpu.cpu() - depth_cpu).abs() > 1e-3).float().mean() < 0.01
        assert ((rgb_gpu.cpu() - rgb_cpu).abs() > 0.02).float().mean() < 0.02


def test_cuda_dataset_and_capture():
    config = SyntheticConfig(pairs_per_scene=2)
    view1, view2, value = SyntheticPairDataset(config, "train", (64, 64), device="cuda").render_batch([0, 1, 2])[2]
    assert view1.image.is_cuda and view1.depth.is_cuda and view2.cam2world.is_cuda
    assert 0 <= value <= 1
    views = room_capture(0, 4, 48, 64, device="cuda")
    assert all(v.image.is_cuda and v.valid.all() for v in views)


def test_triton_cast_matches_the_torch_path():
    from pointmap.data.synthetic.primitives import cast_rays
    from pointmap.data.synthetic.render import camera_rays
    from pointmap.data.synthetic.scenes import stack_scenes

    scenes = stack_scenes([make_scene(kind, 5, device="cuda") for kind in ("room", "objects", "street")])
    K = intrinsics_from_fov(torch.tensor([60.0, 75.0]), 96, 128)
    pose = look_at(torch.tensor([[0.4, -0.8, 1.5], [-0.3, -0.2, 1.3]]), torch.tensor([[-0.5, 2.0, 0.8]] * 2))
    origins, dirs, _ = camera_rays(K.cuda(), pose.cuda(), 96, 128)
    origins, dirs = origins.reshape(1, -1, 3).expand(3, -1, -1), dirs.reshape(1, -1, 3).expand(3, -1, -1)
    fast = cast_rays(scenes.shapes, origins, dirs)
    reference = cast_rays(scenes.shapes, origins, dirs, use_triton=False)
    both = torch.isfinite(reference.t)
    assert torch.equal(torch.isfinite(fast.t), both)
    assert ((fast.t - reference.t)[both].abs() <= 1e-4 * reference.t[both]).float().mean() > 0.999
    same_shape = (fast.kind == reference.kind) & (fast.index == reference.index)
    assert same_shape[both].float().mean() > 0.999
    active = torch.rand(origins.shape[:2], generator=torch.Generator().manual_seed(0)).cuda() < 0.5
    active[:, : origins.shape[1] // 2] = False  # whole blocks without an active ray skip the shapes
    some = cast_rays(scenes.shapes, origins, dirs, active=active)
    assert torch.isinf(some.t[~active]).all()
    assert torch.equal(some.t[active], fast.t[active])


def test_compiled_shading_matches_eager():
    K = intrinsics_from_fov(torch.tensor([60.0, 70.0]), 48, 64)
    pose = look_at(torch.tensor([[0.4, -0.8, 1.5], [-0.3, -0.2, 1.3]]), torch.tensor([[-0.5, 2.0, 0.8]] * 2))
    for kind in ("room", "objects", "street"):
        scene = make_scene(kind, 4, device="cuda")
        rgb, depth = render_views(scene, K, pose, 48, 64)
        rgb_fused, depth_fused = render_views(scene, K, pose, 48, 64, compiled=True)
        assert torch.equal(depth, depth_fused)
        assert ((rgb_fused - rgb).abs() > 0.01).float().mean() < 0.002
