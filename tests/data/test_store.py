import pytest
import torch

from sparse_maml.data import DatasetError, ImageStore
from sparse_maml.data.store import rotated_classes


def make_store(n_classes=4, per_class=3, groups=None):
    labels = torch.arange(n_classes).repeat(per_class)  # interleaved on purpose
    images = labels.view(-1, 1, 1, 1).expand(-1, 1, 2, 2).to(torch.uint8).clone()
    return ImageStore(images, labels, [f"c{i}" for i in range(n_classes)], groups, "toy/train")


def test_basic_properties():
    s = make_store()
    assert len(s) == 12 and s.num_classes == 4 and s.image_shape == (1, 2, 2)
    assert s.class_counts().tolist() == [3, 3, 3, 3]
    for c, idx in enumerate(s.indices_by_class()):
        assert (s.labels[idx] == c).all() and idx.tolist() == sorted(idx.tolist())


def test_select_and_concat():
    s = make_store(groups=["a", "a", "b", "b"])
    sub = s.select_classes([2, 0])
    assert sub.class_names == ["c2", "c0"] and sub.class_groups == ["b", "a"]
    assert (sub.images[sub.labels == 0] == 2).all() and len(sub) == 6
    other = ImageStore(s.images[:3], torch.zeros(3, dtype=torch.long), ["d0"], ["z"])
    joined = ImageStore.concat([s, other], "joined")
    assert joined.num_classes == 5 and joined.class_names[-1] == "d0" and (joined.labels[-3:] == 4).all()
    assert joined.group_ids()[0] == ["a", "b", "z"]
    with pytest.raises(DatasetError, match="share classes"):
        ImageStore.concat([s, s])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": torch.zeros(2, 1, 2, 2)}, "uint8"),
        ({"labels": torch.tensor([0, 5])}, "labels must lie"),
        ({"class_names": ["x", "x"]}, "not unique"),
        ({"class_groups": ["g"]}, "groups for 2 classes"),
    ],
)
def test_validation(kwargs, message):
    args = {
        "images": torch.zeros(2, 1, 2, 2, dtype=torch.uint8),
        "labels": torch.tensor([0, 1]),
        "class_names": ["a", "b"],
        "class_groups": None,
    }
    args.update(kwargs)
    with pytest.raises(DatasetError, match=message):
        ImageStore(**args)


def test_digest_covers_every_image_and_label():
    s = make_store()
    d = s.digest
    assert len(d) == 64 and d == make_store().digest  # the same bytes, the same digest
    one_pixel = make_store()
    one_pixel.images[7, 0, 1, 1] += 1
    assert one_pixel.digest != d
    relabelled = ImageStore(s.images, s.labels.flip(0), s.class_names)
    assert relabelled.digest != d
    reshaped = ImageStore(s.images.reshape(12, 2, 1, 2), s.labels, s.class_names)  # same bytes, another shape
    assert reshaped.digest != d
    assert ImageStore.from_dict(s.to_dict()).digest == d


def test_rotated_classes_are_new_classes_of_the_same_images():
    images = torch.arange(2 * 9, dtype=torch.uint8).view(2, 1, 3, 3)
    store = ImageStore(images, torch.tensor([1, 0]), ["a", "b"], ["g", "h"], "toy/train")
    rot = rotated_classes(store)
    assert rot.num_classes == 8 and len(rot) == 8 and rot.name == "toy/train"
    assert rot.class_names == ["a", "a/rot90", "a/rot180", "a/rot270", "b", "b/rot90", "b/rot180", "b/rot270"]
    assert rot.class_groups == ["g"] * 4 + ["h"] * 4
    for r in range(4):  # class 4c + r holds class c's image turned r quarter-turns (counter-clockwise)
        (only,) = rot.images[rot.labels == 4 * 1 + r]
        assert torch.equal(only[0], torch.rot90(images[0, 0], r))
    assert torch.equal(rot.images[rot.labels == 4 * 1 + 1][0, 0], torch.tensor([[2, 5, 8], [1, 4, 7], [0, 3, 6]]))


def test_rotated_classes_need_square_images():
    store = ImageStore(torch.zeros(2, 1, 2, 3, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"], name="toy")
    with pytest.raises(DatasetError, match=r"'toy'.*square images, got 2x3.*data.image_size"):
        rotated_classes(store)
