import pytest
import torch

from sparse_maml.models import Conv4, build_backbone, register_backbone


@pytest.mark.parametrize("size, channels, hidden, feature_dim", [(84, 3, 64, 1600), (28, 1, 64, 64), (32, 3, 32, 128)])
def test_conv4_shapes_and_derived_head(size, channels, hidden, feature_dim):
    net = build_backbone("conv4", in_channels=channels, image_size=size, n_way=7, hidden=hidden)
    assert net.head.in_features == feature_dim
    assert net(torch.randn(3, channels, size, size)).shape == (3, 7)
    assert len([m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]) == 4


def test_batchnorm_is_transductive():
    net = build_backbone("conv4", in_channels=1, image_size=28, n_way=5, hidden=8)
    x = torch.randn(6, 1, 28, 28)
    train_out = net.train()(x)
    eval_out = net.eval()(x)
    torch.testing.assert_close(train_out, eval_out)  # batch statistics in both modes
    assert all(m.running_mean is None for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # Predictions depend on the batch: the query set is normalised by its own statistics.
    assert not torch.allclose(net(x)[:3], net(x[:3]))


@pytest.mark.parametrize("name, width", [("resnet12", 512), ("resnet12_wide", 640)])
def test_resnet12(name, width):
    net = build_backbone(name, in_channels=3, image_size=84, n_way=5)
    assert net.feature_dim == width
    assert net.body[:4](torch.randn(2, 3, 84, 84)).shape[-2:] == (11, 11)  # official pooling: 84->42->21->11
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    widths = [b.layers[0].out_channels for b in net.body[:4]]
    assert widths == ([64, 160, 320, 640] if width == 640 else [64, 128, 256, 512])


def test_errors_and_registry():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match="too small"):
        Conv4(image_size=8)

    @register_backbone("tiny")
    def tiny(in_channels, image_size, n_way, hidden, **_):
        return Conv4(in_channels, image_size, n_way, hidden=4)

    assert build_backbone("tiny", in_channels=1, image_size=16, n_way=2).head.out_features == 2
