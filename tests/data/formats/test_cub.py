import shutil

import pytest
import torch

from sparse_maml.data import DatasetError, EpisodeSampler, load_split
from sparse_maml.data.class_lists import read_class_list

from ..helpers import write_cub


def test_round_trip_with_the_shipped_split(tmp_path):
    write_cub(tmp_path)
    s = load_split("cub", tmp_path, "val", use_cache=False)
    assert s.images.shape == (100, 3, 84, 84) and s.num_classes == 50 and s.class_counts().tolist() == [2] * 50
    assert s.class_names == sorted(read_class_list("cub", "val")) and s.class_names[0] == "002.Laysan_Albatross"
    label_of = {
        name: i for i, name in enumerate(sorted(c for p in ("train", "val", "test") for c in read_class_list("cub", p)))
    }
    red = torch.tensor([label_of[s.class_names[c]] for c in s.labels.tolist()]).float()
    assert (s.images[:, 0].float().mean((1, 2)) - red).abs().max() < 3  # write_cub colours class k with red = k
    assert (s.images[1, 1].float().mean() - 40).abs() < 3  # second image of the class: green 40
    assert load_split("cub", tmp_path / "CUB_200_2011", "test", image_size=28, use_cache=False).image_shape == (
        3,
        28,
        28,
    )
    assert load_split("cub", tmp_path, "train", use_cache=False).num_classes == 100


def test_missing_classes_lists_and_corrupt_images(tmp_path):
    with pytest.raises(DatasetError, match=r"no CUB-200-2011 images in .*CUB_200_2011/images/<class>.*download=True"):
        load_split("cub", tmp_path, "train", use_cache=False)
    base = write_cub(tmp_path, per_class=1)
    shutil.rmtree(base / "016.Painted_Bunting")
    with pytest.raises(
        DatasetError, match=r"1 of the 50 classes of the CUB 'test' split have no images .*Painted_Bunting"
    ):
        load_split("cub", tmp_path, "test", use_cache=False)
    with pytest.raises(DatasetError, match=r"no class list for split 'trainval' of cub"):
        load_split("cub", tmp_path, "trainval", use_cache=False)
    jpg = next((base / "001.Black_footed_Albatross").glob("*.jpg"))
    jpg.write_bytes(jpg.read_bytes()[:30])  # truncated
    with pytest.raises(DatasetError, match=r"cannot decode image .*001.Black_footed_Albatross/.*jpg"):
        load_split("cub", tmp_path, "train", use_cache=False)


def test_too_few_images_per_class(tmp_path):
    write_cub(tmp_path, per_class=1)
    store = load_split("cub", tmp_path, "val", use_cache=False)
    with pytest.raises(DatasetError, match=r"class '002.Laysan_Albatross' of split 'cub/val' has 1 images"):
        EpisodeSampler(store, n_way=5, k_shot=1, k_query=1)
