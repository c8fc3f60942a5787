"""The options the official runs need: BatchNorm out of the inner loop, the code's mask initialisation, and a clear
error for an option an algorithm does not have."""

import pytest
import torch

from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone

from .helpers import make_algo, make_tasks


@pytest.mark.parametrize("name", ["fomaml", "sparse_maml", "meta_curvature"])
def test_adapt_bn_false_leaves_batch_norm_at_theta(name):
    algo = make_algo(name, steps=3, hidden=8, adapt_bn=False)
    norms = {n for n, _ in algo.backbone.named_parameters() if ".norm." in n}
    assert norms and not norms & set(algo.adapted)
    xs, ys, _, _ = make_tasks(tasks=1)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    fast = algo.adapt(xs[0], ys[0])
    for n in theta:
        if n in norms:
            assert torch.equal(fast[n], theta[n]), n
        elif n.endswith("conv.weight") or n.startswith("head."):
            assert not torch.equal(fast[n], theta[n]), n
    if algo.modulated:  # no mask or curvature for what never adapts
        assert not any(n.split(":")[0] in norms for n in algo.meta_parameters())


def test_adapt_bn_false_on_resnet12_covers_the_shortcut_norms():
    backbone = build_backbone("resnet12", in_channels=3, image_size=84, n_way=5)
    algo = build_algorithm("sparse_maml", backbone, adapt_bn=False)
    norms = {n for n, m in backbone.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert any("shortcut" in n for n in norms)
    assert all(n.rsplit(".", 1)[0] not in norms for n in algo.adapted)
    assert any(n.endswith("conv1.weight") for n in algo.adapted)


def test_mask_init_shift_is_one_shift_for_the_whole_network():
    """The official code: each tensor's draw minus its mean, plus one init_shift shared by all tensors."""
    algo = make_algo("sparse_maml", hidden=16, dtype=torch.float32, mask_init="shift", mask_init_sparsity=0.75)
    masks = algo.meta_parameters()
    means = torch.stack([m.detach().mean() for m in masks.values()])
    torch.testing.assert_close(means, means[0].expand_as(means), rtol=0, atol=1e-5)  # all equal: the shared shift
    assert algo.network_sparsity() == pytest.approx(0.75, abs=1e-3)
    per_tensor = algo.update_sparsity()
    assert max(per_tensor.values()) - min(per_tensor.values()) > 0.05  # not the same in every tensor
    quantile = make_algo("sparse_maml", hidden=16, mask_init_sparsity=0.75)  # exact per tensor, in whole entries
    sizes = {n: m.numel() for n, m in quantile.meta_parameters().items()}
    assert all(abs(v - 0.75) <= 0.5 / sizes[n] + 1e-9 for n, v in quantile.update_sparsity().items())


def test_mask_init_shift_at_half_is_the_codes_default_shift_of_zero():
    algo = make_algo("sparse_maml", hidden=16, dtype=torch.float32, mask_init="shift")
    shift = torch.stack([m.detach().mean() for m in algo.meta_parameters().values()])
    assert shift.abs().max() < 0.02


def test_mask_kaiming_false_draws_every_mask_from_uniform_half():
    kaiming = make_algo("sparse_maml", hidden=16, mask_init="shift")
    uniform = make_algo("sparse_maml", hidden=16, mask_init="shift", mask_kaiming=False)
    width = {n: (m.max() - m.min()).item() for n, m in uniform.meta_parameters().items()}
    assert all(0.5 < w <= 1.0 for n, w in width.items() if n.endswith("conv.weight")), width
    conv = kaiming.meta_parameters()["body.block2.conv.weight"]
    assert (conv.max() - conv.min()).item() <= 2 * (6 / (16 * 9)) ** 0.5 + 1e-6  # Kaiming-uniform bound


def test_unknown_options_are_one_clear_error():
    with pytest.raises(ValueError, match="'maml' has no option mask_init_sparsity"):
        make_algo("maml", mask_init_sparsity=0.5)
    with pytest.raises(ValueError, match="mask_init='exact'"):
        make_algo("sparse_maml", mask_init="exact")
    with pytest.raises(ValueError, match="mask_init_sparsity must be in"):
        make_algo("sparse_maml", mask_init="shift", mask_init_sparsity=1.5)
    assert make_algo("maml", mask_init_sparsity=None).name == "maml"  # None: the algorithm's default
