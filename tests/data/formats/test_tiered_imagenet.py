import pickle

import numpy as np
import pytest
import torch

from sparse_maml.data import DatasetError, EpisodeSampler, load_split
from sparse_maml.data.formats.tiered_imagenet import detect

from ..helpers import write_tiered


def test_png_round_trip(tmp_path):
    images, wnids = write_tiered(tmp_path, "val", 97)
    assert detect(tmp_path, "val")[0] == "png"
    s = load_split("tiered_imagenet", tmp_path, "val", use_cache=False)
    assert s.images.shape == (194, 3, 84, 84) and s.num_classes == 97
    assert s.class_names == sorted(set(wnids)) and s.class_counts().tolist() == [2] * 97
    assert [s.class_names[c] for c in s.labels.tolist()] == wnids  # file order kept, each image with its class
    assert torch.equal(s.images.permute(0, 2, 3, 1), torch.from_numpy(images))
    assert s.class_groups[s.class_names.index("n00008995")] == "category1"  # file class 5 -> category 5 % 4
    assert load_split("tiered_imagenet", tmp_path, "val", image_size=32, use_cache=False).image_shape == (3, 32, 32)


def test_npz_variant_gives_the_same_split(tmp_path):
    write_tiered(tmp_path / "png", "test", 160)
    write_tiered(tmp_path / "npz" / "tiered-imagenet", "test", 160, layout="npz")  # the usual subfolder
    assert detect(tmp_path / "npz", "test")[0] == "npz"
    a = load_split("tiered_imagenet", tmp_path / "png", "test", use_cache=False)
    b = load_split("tiered_imagenet", tmp_path / "npz", "test", use_cache=False)
    assert torch.equal(a.images, b.images) and a.digest == b.digest and a.class_groups == b.class_groups
    rgb = load_split("tiered_imagenet", tmp_path / "npz", "test", npz_order="rgb", use_cache=False)
    assert torch.equal(rgb.images, a.images.flip(1)) and rgb.digest != a.digest


def test_real_class_counts_are_checked(tmp_path):
    write_tiered(tmp_path, "train", 5)
    with pytest.raises(DatasetError, match=r"names 5 classes but the tieredImageNet train split has 351"):
        load_split("tiered_imagenet", tmp_path, "train", use_cache=False)
    write_tiered(tmp_path, "mine", 5)  # a split of one's own: no count to check
    assert load_split("tiered_imagenet", tmp_path, "mine", use_cache=False).num_classes == 5


def test_corrupt_truncated_and_missing_files(tmp_path):
    write_tiered(tmp_path, "val", 97)
    with pytest.raises(DatasetError, match=r"no tieredImageNet files for split 'test' .*test_labels.pkl"):
        load_split("tiered_imagenet", tmp_path, "test", use_cache=False)
    path = tmp_path / "val_images_png.pkl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"cannot read .*val_images_png.pkl .*corrupt, truncated"):
        load_split("tiered_imagenet", tmp_path, "val", use_cache=False)
    encoded = pickle.loads(data)
    encoded[3] = encoded[3][:40]  # one truncated PNG
    path.write_bytes(pickle.dumps(encoded, protocol=2))
    with pytest.raises(DatasetError, match=r"cannot decode image .*val_images_png.pkl\[3\]"):
        load_split("tiered_imagenet", tmp_path, "val", use_cache=False)
    write_tiered(tmp_path / "n", "val", 97, layout="npz")
    npz = tmp_path / "n" / "val_images.npz"
    npz.write_bytes(npz.read_bytes()[:1000])
    with pytest.raises(DatasetError, match=r"cannot read .*val_images.npz"):
        load_split("tiered_imagenet", tmp_path / "n", "val", use_cache=False)
    (tmp_path / "val_labels.pkl").write_bytes(b"\x80\x02}q\x00(X")
    with pytest.raises(DatasetError, match=r"cannot read .*val_labels.pkl"):
        load_split("tiered_imagenet", tmp_path, "val", use_cache=False)


def test_labels_that_do_not_match(tmp_path):
    write_tiered(tmp_path, "val", 97)
    with open(tmp_path / "val_labels.pkl", "rb") as f:
        labels = pickle.load(f)
    labels["label_specific"] = labels["label_specific"][:-1]
    with open(tmp_path / "val_labels.pkl", "wb") as f:
        pickle.dump(labels, f)
    with pytest.raises(DatasetError, match=r"labels 193 images but the images file holds 194"):
        load_split("tiered_imagenet", tmp_path, "val", use_cache=False)


def test_too_few_images_per_class(tmp_path):
    write_tiered(tmp_path, "val", 97, per_class=1)
    store = load_split("tiered_imagenet", tmp_path, "val", use_cache=False)
    with pytest.raises(DatasetError, match=r"class 'n0000\d+' of split 'tiered_imagenet/val' has 1 images"):
        EpisodeSampler(store, n_way=5, k_shot=1, k_query=1)
    assert np.array_equal(store.class_counts().numpy(), np.ones(97))
