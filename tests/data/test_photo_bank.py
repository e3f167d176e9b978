"""Photo-bank building: name filter, photo test, difference-hash dedup, square JPEG output, licence summary."""

from pathlib import Path

import numpy as np
from PIL import Image

from pointmap.data.synthetic.photo_bank import (
    PhotoBankConfig,
    bank_name,
    deduplicate,
    dhash,
    is_photo_like,
    licence_summary,
    texture_candidates,
    write_bank,
)


def textured(seed: int, size: tuple[int, int] = (256, 192), brightness: int = 0) -> np.ndarray:
    """(h, w, 3) uint8 photo stand-in: a smooth random colour field plus fine grain."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(40, 216, (6, 8, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)
    grain = rng.normal(0.0, 12.0, (size[1], size[0], 3))
    return np.clip(np.asarray(coarse, dtype=np.float64) + grain + brightness, 0, 255).astype(np.uint8)


def test_noise_textured_photo_passes():
    assert is_photo_like(Image.fromarray(textured(0)))


def test_flat_tiny_transparent_and_normal_map_images_fail():
    flat = Image.new("RGB", (256, 256), (120, 90, 60))
    tiny = Image.fromarray(textured(1, size=(100, 100)))
    alpha = np.full((192, 256, 1), 255, dtype=np.uint8)
    alpha[:, :128] = 0  # half transparent: a decal, not a surface
    transparent = Image.fromarray(np.concatenate([textured(2), alpha], axis=-1), "RGBA")
    normal_map = textured(3).astype(np.int16)
    normal_map[..., :2] = 128 + (normal_map[..., :2] - 128) // 4  # x, y tilts near zero
    normal_map[..., 2] = 200 + (normal_map[..., 2] - 128) // 3  # z up: blue-dominant
    normal_map = Image.fromarray(normal_map.astype(np.uint8))
    for image in (flat, tiny, transparent, normal_map):
        assert not is_photo_like(image)
    # The last three fail one test only: the normal map passes with the blue test off; the same
    # textures large and opaque pass.
    assert is_photo_like(normal_map, PhotoBankConfig(normal_map_blue_margin=256))
    assert is_photo_like(Image.fromarray(textured(1, size=(128, 128))))
    assert is_photo_like(Image.fromarray(textured(2)))


def test_dedup_merges_brightness_variant_and_keeps_other_texture():
    base = Image.fromarray(textured(4))
    brighter = Image.fromarray(textured(4, brightness=8))
    other = Image.fromarray(textured(5))
    hashes = [dhash(base), dhash(brighter), dhash(other)]
    assert all(0 <= value < 2**64 for value in hashes)
    assert (hashes[0] ^ hashes[1]).bit_count() <= 6
    assert (hashes[0] ^ hashes[2]).bit_count() > 16
    assert deduplicate(hashes, max_distance=6) == [0, 2]
    assert deduplicate([hashes[2], *hashes[:2]], max_distance=6) == [0, 1]


def test_candidates_drop_auxiliary_maps_and_blacklisted_dirs(tmp_path: Path):
    names = ["wall_norm.png", "x_spec.tga", "brick.png", "grass.png.cached.dds", "rock_nm2.jpg", "readme.txt"]
    names += ["cars/livery.png", "tracks/road/asphalt.rgb", "ROOF_Gloss.PNG"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [path.relative_to(tmp_path).as_posix() for path in texture_candidates(tmp_path, blacklist=["cars"])]
    assert found == ["brick.png", "grass.png.cached.dds", "tracks/road/asphalt.rgb"]
    assert bank_name(Path("types/alpine/grass.png.cached.dds")) == "types__alpine__grass.jpg"


def test_write_bank_writes_square_jpegs(tmp_path: Path):
    images = [("wide.jpg", Image.fromarray(textured(6, size=(300, 160)))), ("tall.jpg", Image.fromarray(textured(7)))]
    written = write_bank(images, tmp_path / "pkg")
    assert written == [tmp_path / "pkg" / "wide.jpg", tmp_path / "pkg" / "tall.jpg"]
    assert sorted(path.name for path in (tmp_path / "pkg").iterdir()) == ["tall.jpg", "wide.jpg"]
    for path in written:
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (256, 256))
    # The centre of the wide image survives the crop: compare mean colour of the centre square.
    source = textured(6, size=(300, 160))[:, 70:230].astype(np.float64)
    with Image.open(written[0]) as image:
        saved = np.asarray(image.resize((160, 160), Image.BILINEAR), dtype=np.float64)
    assert np.abs(saved.mean(axis=(0, 1)) - source.mean(axis=(0, 1))).max() < 3.0


def test_licence_summary_counts_files_stanzas():
    copyright_text = (
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: 2010 Someone\nLicense: GPL-2+\n\n"
        "Files: textures/a.jpg\nCopyright: 2012 Photographer\nLicense: CC-BY-3.0\n\n"
        "Files: textures/b.jpg\nLicense: GPL-2+\n\n"
        "License: GPL-2+\n This program is free software.\n"
    )
    assert licence_summary(copyright_text) == "GPL-2+ (2 stanzas), CC-BY-3.0 (1 stanzas)"
    assert licence_summary("no fields here") == "unknown"
