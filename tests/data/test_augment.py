import torch

from sparse_maml.data.augment import augment, channel_stats, color_jitter, hflip, normalize, random_crop, to_unit


def test_normalize_and_stats():
    images = torch.randint(0, 256, (50, 3, 6, 6), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=7)
    x = images.float() / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), x.mean((0, 2, 3)).double(), atol=1e-6)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), x.std((0, 2, 3), unbiased=False).double(), atol=1e-5)
    z = normalize(images, mean, std)
    assert z.dtype == torch.float32 and torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.equal(normalize(images, mean, std), normalize(to_unit(images), mean, std))
    assert torch.equal(normalize(images[:2], [0.0], [1.0]), images[:2].float() / 255)


def test_crop_flip_jitter():
    x = torch.rand(64, 3, 10, 10)
    c = random_crop(x, 2)
    assert c.shape == x.shape
    for i in range(64):  # each crop is a window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        assert any(torch.equal(c[i], padded[:, a : a + 10, b : b + 10]) for a in range(5) for b in range(5))
    assert not all(torch.equal(c[i], x[i]) for i in range(64))
    f = hflip(x)
    assert all(torch.equal(f[i], x[i]) or torch.equal(f[i], x[i].flip(-1)) for i in range(64))
    j = color_jitter(x, 0.4)
    assert j.shape == x.shape and j.min() >= 0 and j.max() <= 1 and not torch.equal(j, x)
    gray = color_jitter(torch.rand(4, 1, 5, 5), 0.4)
    assert gray.shape == (4, 1, 5, 5)


def test_augment_keeps_leading_dims():
    x = torch.rand(2, 7, 3, 12, 12)
    assert augment(x).shape == x.shape
    assert torch.equal(augment(x, crop_padding=0, flip=False, jitter=0), x)
