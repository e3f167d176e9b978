import torch

from pointmap.model.weights import DEFAULT_MODEL_DIR, load_model


def test_bundled_model_ships_small_and_predicts_finite_pointmaps():
    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 48e6  # the size budget of a model shipped inside the package
    model = load_model()
    assert model.image_size == 224
    assert sum(p.numel() for p in model.parameters()) <= 24e6
    img = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        out = model.predict_pair(img, img.flip(-1))
    assert out.pts1.shape == (1, 224, 224, 3) and out.conf2.shape == (1, 224, 224)
    assert torch.isfinite(out.pts1).all() and torch.isfinite(out.pts2).all()
    assert (out.conf1 >= 1).all()
    # The pair (I, I): view 1 lies in front of its own camera.
    with torch.no_grad():
        same = model.predict_pair(img, img)
    assert (same.pts1[..., 2] > 0).float().mean() > 0.99
