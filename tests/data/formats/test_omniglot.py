import pytest
import torch

from sparse_maml.data import DatasetError, load_split
from sparse_maml.data.formats.omniglot import PRESETS, resolve_split

from ..helpers import write_omniglot


@pytest.mark.parametrize("zipped", [False, True])
def test_round_trip(tmp_path, zipped):
    write_omniglot(tmp_path, "background", {"Beta": 2, "Alpha": 3}, drawers=4, zipped=zipped)
    s = load_split("omniglot", tmp_path, "background", use_cache=False)
    assert s.images.shape == (20, 1, 28, 28) and s.images.dtype == torch.uint8
    assert s.class_names == [f"Alpha/character0{i}" for i in (1, 2, 3)] + ["Beta/character01", "Beta/character02"]
    assert s.class_groups == ["Alpha"] * 3 + ["Beta"] * 2
    assert s.labels.tolist() == [c for c in range(5) for _ in range(4)]
    native = load_split("omniglot", tmp_path, "background", image_size=20, use_cache=False)
    assert native.images.unique().tolist() == [0, 255]  # inverted: dark background, bright strokes
    assert native.images[:, :, 0, 0].max() == 0 and (native.images == 255).sum() == 20 * 16
    assert load_split("omniglot", tmp_path, "background", image_size=14, use_cache=False).image_shape == (1, 14, 14)


def test_folder_preferred_over_zip_and_archives_combined(tmp_path):
    write_omniglot(tmp_path, "background", {"Alpha": 1}, zipped=True)
    write_omniglot(tmp_path, "background", {"Alpha": 2})
    write_omniglot(tmp_path, "evaluation", {"Zeta": 2}, zipped=True)
    s = load_split("omniglot", tmp_path, "background+evaluation", use_cache=False)
    assert s.class_names == ["Alpha/character01", "Alpha/character02", "Zeta/character01", "Zeta/character02"]


def test_rotations(tmp_path):
    write_omniglot(tmp_path, "background", {"Alpha": 2}, drawers=2)
    plain = load_split("omniglot", tmp_path, "background", use_cache=False)
    rot = load_split("omniglot", tmp_path, "background", rotations=True, use_cache=False)
    assert rot.num_classes == 8 and len(rot) == 16 and rot.class_groups == ["Alpha"] * 8
    assert rot.class_names[:4] == ["Alpha/character01"] + [f"Alpha/character01/rot{d}" for d in (90, 180, 270)]
    first = rot.images[rot.labels == 1][0]  # character01 at 90 degrees
    assert torch.equal(first, torch.rot90(plain.images[0], 1, dims=(1, 2)))


def test_split_specs_and_mapping(tmp_path):
    write_omniglot(tmp_path, "background_small2", {"Greek": 2, "Latin": 2, "Sanskrit": 3, "Tagalog": 1}, drawers=2)
    assert resolve_split("background_small2[Greek,Latin]") == [("background_small2", "Greek,Latin")]
    assert resolve_split("images_evaluation[:10]") == [("evaluation", ":10")]
    assert resolve_split("val", "minimal") == [("background_small2", "Sanskrit")]
    s = load_split("omniglot", tmp_path, "background_small2[1:3]", use_cache=False)
    assert s.class_groups == ["Latin"] * 2 + ["Sanskrit"] * 3
    splits = {"val": "background_small2[Sanskrit]", "test": "background_small2[Greek,Tagalog]"}
    val = load_split("omniglot", tmp_path, "val", splits=splits, use_cache=False)
    test = load_split("omniglot", tmp_path, "test", splits=splits, use_cache=False)
    assert set(val.class_groups) == {"Sanskrit"} and set(test.class_groups) == {"Greek", "Tagalog"}
    assert not set(val.class_names) & set(test.class_names)


def test_presets_are_alphabet_disjoint(shared_data):
    root = shared_data / "omniglot"
    stores = {k: load_split("omniglot", root, k, splits="minimal", use_cache=False) for k in PRESETS["minimal"]}
    groups = {k: set(s.class_groups) for k, s in stores.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]


@pytest.mark.parametrize(
    ("name", "alphabets", "characters", "images"),
    [("background_small1", 5, 136, 2720), ("background_small2", 5, 156, 3120)],
)
def test_real_minimal_splits(shared_data, tmp_path, name, alphabets, characters, images):
    s = load_split("omniglot", shared_data / "omniglot", name, cache_dir=tmp_path)
    assert len(set(s.class_groups)) == alphabets and s.num_classes == characters and len(s) == images
    assert s.images.shape == (images, 1, 28, 28) and s.class_counts().eq(20).all()
    assert s.name == f"omniglot/{name}"


def test_errors(tmp_path):
    write_omniglot(tmp_path, "background", {"Alpha": 2}, drawers=2)
    with pytest.raises(DatasetError, match="images_evaluation not found in .*download=True"):
        load_split("omniglot", tmp_path, "evaluation", use_cache=False)
    with pytest.raises(DatasetError, match=r"alphabet\(s\) \['Klingon'\] not in .*\['Alpha'\]"):
        load_split("omniglot", tmp_path, "background[Klingon]", use_cache=False)
    with pytest.raises(DatasetError, match="cannot parse Omniglot split"):
        load_split("omniglot", tmp_path, "background[Alpha", use_cache=False)
    with pytest.raises(DatasetError, match="unknown Omniglot split preset 'vinyals'"):
        load_split("omniglot", tmp_path, "train", splits="vinyals", use_cache=False)


def test_corrupt_files(tmp_path):
    (tmp_path / "images_background.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="images_background.zip is not a readable zip archive"):
        load_split("omniglot", tmp_path, "background", use_cache=False)
    root = tmp_path / "folder"
    write_omniglot(root, "background", {"Alpha": 2}, drawers=2)
    png = next((root / "images_background").rglob("*.png"))
    png.write_bytes(png.read_bytes()[:40])  # truncated
    with pytest.raises(DatasetError, match=f"cannot decode image {png}.*corrupt or truncated"):
        load_split("omniglot", root, "background", use_cache=False)
