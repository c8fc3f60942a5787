import pytest
import torch

from sparse_maml.data import DatasetError, EpisodeSampler, load_split
from sparse_maml.data.class_lists import read_class_list
from sparse_maml.data.formats.cars import detect

from ..helpers import cars_classes, write_cars

pytest.importorskip("scipy")  # the .mat annotation files (pip install 'sparse-maml[cars]')


def red_of(store):
    """write_cars colours the car of class k (its index in the reversed class list) with red 255 - k."""
    reversed_names = cars_classes()[::-1]
    return torch.tensor([255 - reversed_names.index(store.class_names[c]) for c in store.labels.tolist()])


def test_shipped_split_is_the_authors():
    sizes = [len(read_class_list("cars", s)) for s in ("train", "val", "test")]
    assert sizes == [98, 49, 49] and len(cars_classes()) == 196


@pytest.mark.parametrize("layout", ["devkit", "car_ims"])
def test_round_trip(tmp_path, layout):
    write_cars(tmp_path, layout)
    assert detect(tmp_path)[0] == layout
    s = load_split("cars", tmp_path, "test", use_cache=False)
    assert s.images.shape == (98, 3, 84, 84) and s.num_classes == 49 and s.class_counts().tolist() == [2] * 49
    assert s.class_names == sorted(read_class_list("cars", "test"))
    # cropped to the box: the whole image is the car (its colour), with no dark background left
    assert (s.images[:, 0].float().mean((1, 2)) - red_of(s)).abs().max() < 4
    assert (s.images[:, 2].float().mean((1, 2)) - 60).abs().max() < 4  # the training half only (blue 60)
    full = load_split("cars", tmp_path, "test", subset="all", crop=False, image_size=32, use_cache=False)
    assert full.class_counts().tolist() == [4] * 49 and full.image_shape == (3, 32, 32)
    assert full.images[:, 0].float().mean() < s.images[:, 0].float().mean()  # uncropped: background included


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(DatasetError, match=r"no Stanford Cars files in .*cars_train/ with devkit/cars_train_annos.mat"):
        load_split("cars", tmp_path, "train", use_cache=False)
    write_cars(tmp_path, per_class=1)
    hummer = cars_classes()[::-1].index("AM General Hummer SUV 2000") + 1  # a train class; its one image's number
    (tmp_path / "cars_train" / f"{hummer:05d}.jpg").unlink()
    with pytest.raises(DatasetError, match=rf"images listed in the annotations are missing, e.g. .*{hummer:05d}.jpg"):
        load_split("cars", tmp_path, "train", use_cache=False)
    meta = tmp_path / "devkit" / "cars_meta.mat"
    meta.write_bytes(meta.read_bytes()[:150])
    with pytest.raises(DatasetError, match=r"cannot read .*cars_meta.mat .*corrupt or truncated"):
        load_split("cars", tmp_path, "val", use_cache=False)
    with pytest.raises(DatasetError, match=r"no class list for split 'all' of cars"):
        load_split("cars", tmp_path, "all", use_cache=False)


def test_classes_without_images_and_too_few_images(tmp_path):
    write_cars(tmp_path, "car_ims", per_class=1)
    with pytest.raises(DatasetError, match=r"subset must be one of train, all"):
        load_split("cars", tmp_path, "val", subset="test", use_cache=False)
    store = load_split("cars", tmp_path, "val", use_cache=False)
    with pytest.raises(DatasetError, match=r"of split 'cars/val' has 1 images, fewer than k_shot \+ k_query = 2"):
        EpisodeSampler(store, n_way=5, k_shot=1, k_query=1)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "val.json").write_text('["Tesla Model S Sedan 2012", "DeLorean DMC-12 1981"]')
    with pytest.raises(DatasetError, match=r"classes \['DeLorean DMC-12 1981'\] of the cars 'val' split are not among"):
        load_split("cars", tmp_path, "val", split_dir=str(lists), use_cache=False)
