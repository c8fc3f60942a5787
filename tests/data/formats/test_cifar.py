import pickle

import pytest
import torch

from sparse_maml.data import DatasetError, EpisodeSampler, load_split
from sparse_maml.data.class_lists import read_class_list
from sparse_maml.data.formats.cifar import cifar100_classes, detect

from ..helpers import write_cifar100, write_metaoptnet

CLASSES = cifar100_classes()
IDS = {name: i for i, name in enumerate(CLASSES)}


def check(store, n_classes, per_class):
    assert store.images.shape == (n_classes * per_class, 3, 32, 32) and store.num_classes == n_classes
    assert store.class_names == sorted(store.class_names) and store.class_counts().tolist() == [per_class] * n_classes
    fine = torch.tensor([IDS[store.class_names[c]] for c in store.labels.tolist()])
    assert torch.equal(store.images[:, 0, 0, 0].long(), fine)  # cifar_image() writes the class id into pixel (0, 0)
    assert store.class_groups == [CLASSES[c] for c in store.class_names]


def test_cifar100_classes_are_the_official_ones():
    assert len(CLASSES) == 100 and list(CLASSES)[:3] == ["apple", "aquarium_fish", "baby"]
    assert len(set(CLASSES.values())) == 20 and CLASSES["dolphin"] == "aquatic_mammals"


def test_official_archive_round_trip(tmp_path):
    write_cifar100(tmp_path)
    assert detect(tmp_path, "cifar_fs", "train")[0] == "cifar100"
    s = load_split("cifar_fs", tmp_path, "train", use_cache=False)
    check(s, 64, 3)  # two images from the train file, one from the test file
    assert sorted(s.class_names) == sorted(c for _, c in read_class_list("cifar_fs", "train"))
    assert s.images[:3, 1, 0, 0].tolist() == [0, 1, 2]  # within a class: train images, then test images
    fc = load_split("fc100", tmp_path, "val", use_cache=False)
    check(fc, 20, 3)
    assert sorted(set(fc.class_groups)) == sorted(read_class_list("fc100", "val"))
    assert load_split("fc100", tmp_path, "train", image_size=84, use_cache=False).image_shape == (3, 84, 84)


def test_tar_gz_read_in_place(tmp_path):
    a = load_split("cifar_fs", write_cifar100(tmp_path / "a"), "test", use_cache=False)  # root = the extracted folder
    write_cifar100(tmp_path / "b", tar=True)
    assert detect(tmp_path / "b", "cifar_fs", "test") == ("cifar100", [tmp_path / "b" / "cifar-100-python.tar.gz"])
    b = load_split("cifar_fs", tmp_path / "b", "test", use_cache=False)
    assert torch.equal(a.images, b.images) and a.digest == b.digest


@pytest.mark.parametrize(("dataset", "split", "n_classes"), [("cifar_fs", "val", 16), ("fc100", "train", 60)])
def test_metaoptnet_pickles(tmp_path, dataset, split, n_classes):
    write_metaoptnet(tmp_path / ("CIFAR-FS" if dataset == "cifar_fs" else "FC100"), dataset, split)
    assert detect(tmp_path, dataset, split)[0] == "metaoptnet"
    s = load_split(dataset, tmp_path, split, use_cache=False)
    check(s, n_classes, 3)
    write_cifar100(tmp_path)  # both layouts: the official archive is preferred unless source says otherwise
    assert load_split(dataset, tmp_path, split, use_cache=False).class_names == s.class_names
    forced = load_split(dataset, tmp_path, split, source="metaoptnet", use_cache=False)
    assert torch.equal(forced.images, s.images)


def test_errors(tmp_path):
    with pytest.raises(
        DatasetError, match=r"no cifar_fs files for split 'train' .*cifar-100-python.tar.gz.*download=True"
    ):
        load_split("cifar_fs", tmp_path, "train", use_cache=False)
    dolphin = IDS["dolphin"]  # a CIFAR-FS train class
    write_cifar100(tmp_path / "incomplete", skip=dolphin)
    with pytest.raises(
        DatasetError, match=r"1 of the 64 classes of the cifar_fs 'train' split have no images .*dolphin"
    ):
        load_split("cifar_fs", tmp_path / "incomplete", "train", use_cache=False)
    other = write_metaoptnet(tmp_path / "m", "cifar_fs", "val")
    other.rename(tmp_path / "m" / "CIFAR_FS_test.pickle")
    with pytest.raises(DatasetError, match=r"CIFAR_FS_test.pickle holds classes outside the cifar_fs 'test' split"):
        load_split("cifar_fs", tmp_path / "m", "test", use_cache=False)
    folder = write_cifar100(tmp_path / "t")
    (folder / "train").write_bytes((folder / "train").read_bytes()[:5000])
    with pytest.raises(DatasetError, match=r"cannot read .*cifar-100-python/train .*truncated"):
        load_split("fc100", tmp_path / "t", "test", use_cache=False)
    archive = write_cifar100(tmp_path / "z", tar=True)
    archive.write_bytes(archive.read_bytes()[:3000])
    with pytest.raises(DatasetError, match=r"cannot read .*cifar-100-python.tar.gz"):
        load_split("fc100", tmp_path / "z", "test", use_cache=False)
    meta = write_cifar100(tmp_path / "w") / "meta"
    meta.write_bytes(pickle.dumps({"fine_label_names": ["a", "b"], "coarse_label_names": ["x"]}))
    with pytest.raises(DatasetError, match=r"meta does not name CIFAR-100's 100 classes"):
        load_split("fc100", tmp_path / "w", "test", use_cache=False)
    (tmp_path / "lists").mkdir()
    with pytest.raises(DatasetError, match=r"no class list for split 'val' of fc100: .*lists/val.json does not exist"):
        load_split("fc100", tmp_path / "t", "val", split_dir=str(tmp_path / "lists"), use_cache=False)
    (tmp_path / "lists" / "val.json").write_text('["dinosaurs"]')
    with pytest.raises(DatasetError, match=r"names superclasses \['dinosaurs'\] that CIFAR-100 does not have"):
        load_split("fc100", tmp_path / "t", "val", split_dir=str(tmp_path / "lists"), use_cache=False)


def test_too_few_images_per_class(tmp_path):
    write_cifar100(tmp_path, per_class=(1, 0))
    store = load_split("cifar_fs", tmp_path, "val", use_cache=False)
    with pytest.raises(DatasetError, match=r"of split 'cifar_fs/val' has 1 images, fewer than k_shot \+ k_query = 2"):
        EpisodeSampler(store, n_way=5, k_shot=1, k_query=1)
