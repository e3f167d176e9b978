"""Procedural textures: hash noise statistics, value-noise interpolation, photo textures from a folder."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

from pointmap.data.synthetic import render_views
from pointmap.data.synthetic.cameras import intrinsics_from_fov, look_at
from pointmap.data.synthetic.palette import MaterialSpec
from pointmap.data.synthetic.scenes import Layout, SceneBuilder
from pointmap.data.synthetic.textures import hash_uniform, load_photo_bank, value_noise


def test_hash_is_uniform_deterministic_and_seeded():
    cells = torch.stack(torch.meshgrid(torch.arange(-50, 50), torch.arange(-50, 50), indexing="ij"), -1).reshape(-1, 2)
    seed = torch.full((cells.shape[0],), 7)
    values = hash_uniform(cells, seed)
    assert values.min() >= 0 and values.max() < 1
    assert values.mean().item() == pytest.approx(0.5, abs=0.01)
    assert values.std().item() == pytest.approx(12**-0.5, abs=0.01)  # uniform on [0, 1)
    assert torch.equal(values, hash_uniform(cells, seed))
    other = hash_uniform(cells, seed + 1)
    assert torch.corrcoef(torch.stack([values, other]))[0, 1].abs() < 0.05
    # Neighbouring cells are uncorrelated too.
    grid = values.reshape(100, 100)
    assert torch.corrcoef(torch.stack([grid[:, :-1].reshape(-1), grid[:, 1:].reshape(-1)]))[0, 1].abs() < 0.05


def test_value_noise_interpolates_lattice_values_smoothly():
    lattice = torch.tensor([[0.0, 0.0, 0.0], [3.0, -2.0, 5.0]])
    seed = torch.tensor([4, 4])
    torch.testing.assert_close(value_noise(lattice, seed), hash_uniform(lattice.long(), seed))
    points = torch.rand(1000, 3, generator=torch.Generator().manual_seed(0)) * 10
    step = torch.tensor([1e-3, 0.0, 0.0])
    seeds = torch.zeros(1000, dtype=torch.long)
    change = (value_noise(points + step, seeds) - value_noise(points, seeds)).abs()
    assert change.max() < 1e-3 * 1.5 + 1e-6  # Lipschitz: smoothstep slope <= 1.5 per unit value range


def test_photo_texture_from_a_folder(tmp_path):
    photo = np.zeros((60, 80, 3), dtype=np.uint8)
    photo[:, :40] = (220, 30, 30)  # left half red
    photo[:, 40:] = (30, 30, 220)  # right half blue
    Image.fromarray(photo).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    bank = load_photo_bank(tmp_path, size=32)
    assert bank.shape == (1, 3, 32, 32)
    (tmp_path / "package").mkdir()  # a bank of one folder per source package: subfolders count
    Image.fromarray(photo[:, ::-1].copy()).save(tmp_path / "package" / "b.jpg")
    both = load_photo_bank(tmp_path, size=32)
    assert both.shape == (2, 3, 32, 32) and torch.equal(both[0], bank[0])  # sorted by path: a.png first
    assert bank[0, 0, :, :8].mean() > 0.5 and bank[0, 2, :, -8:].mean() > 0.5  # square centre crop kept both

    b = SceneBuilder(random.Random(0))
    # One photo width = 4 * scale = 1 m: the wall x in [-0.5, 0) shows the photo's right half, [0, 0.5) its left.
    material = b.material(MaterialSpec("photo", (1, 1, 1), (1, 1, 1), scale=0.25, grime=0.0, photo=0))
    wall = ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0))  # local x = world x, facing -y
    b.add("quad", (0.0, 0.0, 0.0), (0.5, 0.5, 0.0), material, wall)
    b.lights.append(((0.0, -3.0, 0.0), (9.0, 9.0, 9.0), False))
    scene = b.to_scene(Layout("objects", 0, (1, 1, 1), (0, 0, 0)), photos=bank)
    pose = look_at(torch.tensor([[0.0, -1.5, 0.0]]), torch.tensor([[0.0, 0.0, 0.0]]))
    rgb, depth = render_views(scene, intrinsics_from_fov(torch.tensor([40.0]), 20, 20), pose, 20, 20)
    left, right = rgb[0, :, 8:12, 4:8].mean(dim=(1, 2)), rgb[0, :, 8:12, 12:16].mean(dim=(1, 2))
    assert left[2] > left[0] + 0.3 and right[0] > right[2] + 0.3
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .jpg"):
        load_photo_bank(tmp_path / "empty", size=8)


def test_albedo_evaluates_each_pattern_on_its_own_hits():
    # Materials of every pattern, hits in shuffled material order: each hit's colour is its pattern evaluated
    # on that hit alone (the hits are sorted by pattern internally, and must land back in place).
    from pointmap.data.synthetic.textures import PATTERNS, Materials, albedo

    count = len(PATTERNS)
    generator = torch.Generator().manual_seed(3)
    materials = Materials(
        pattern=torch.arange(count)[None],
        color_a=torch.rand(1, count, 3, generator=generator),
        color_b=torch.rand(1, count, 3, generator=generator),
        scale=torch.full((1, count), 0.3),
        seed=torch.arange(count)[None] * 101,
        photo=torch.full((1, count), -1),
        grime=torch.zeros(1, count),
        emission=torch.zeros(1, count),
        gloss=torch.zeros(1, count),
    )
    hits = 5 * count
    material = torch.randperm(hits, generator=generator) % count  # every pattern, shuffled
    p_local = torch.rand(hits, 3, generator=generator) * 2
    n_local = torch.nn.functional.one_hot(torch.randint(0, 3, (hits,), generator=generator), 3).float()
    scene = torch.zeros(hits, dtype=torch.long)
    colour = albedo(materials, scene, material, p_local, n_local)
    for i in range(hits):
        alone = albedo(materials, scene[i : i + 1], material[i : i + 1], p_local[i : i + 1], n_local[i : i + 1])
        torch.testing.assert_close(colour[i : i + 1], alone, atol=1e-6, rtol=0)
    plain = material == PATTERNS.index("plain")
    assert torch.equal(colour[plain], materials.color_a[0, material[plain]].clamp(0, 1))
    assert not torch.equal(colour[~plain], materials.color_a[0, material[~plain]].clamp(0, 1))


def test_photo_share_sets_how_many_materials_take_photos():
    from pointmap.data.synthetic.palette import PHOTO_FAMILIES, random_material

    def photo_count(share: float) -> int:
        rng = random.Random(5)
        specs = [random_material(rng, family, num_photos=3, photo_share=share) for family in PHOTO_FAMILIES * 50]
        assert all(0 <= spec.photo < 3 for spec in specs if spec.pattern == "photo")
        return sum(spec.pattern == "photo" for spec in specs)

    assert photo_count(0.0) == 0
    assert photo_count(1.0) == 200
    assert 30 <= photo_count(0.25) <= 70  # binomial(200, 0.25): mean 50, sd 6
    from pointmap.data.synthetic.dataset import SyntheticConfig

    with pytest.raises(ValueError, match="photo_share=1.5"):
        SyntheticConfig(photo_share=1.5)
    with pytest.raises(ValueError, match="wide_share=-0.1"):
        SyntheticConfig(wide_share=-0.1)
