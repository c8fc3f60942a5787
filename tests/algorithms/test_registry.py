import pytest
import torch

from sparse_maml.algorithms import ALGORITHMS, REGISTRY, InnerLoopLearner, build_algorithm, register_algorithm
from sparse_maml.models import build_backbone


def backbone():
    return build_backbone("conv4", in_channels=1, image_size=16, n_way=3, hidden=4)


def test_registry_lists_the_papers_algorithms():
    assert ALGORITHMS == (
        "maml",
        "fomaml",
        "anil",
        "boil",
        "meta_sgd",
        "meta_curvature",
        "sparse_maml",
        "sparse_relu_maml",
    )


@pytest.mark.parametrize("name", ALGORITHMS)
def test_public_api(name):
    bb = backbone()
    algo = build_algorithm(name, bb, inner_lr=0.1, inner_steps=2)
    assert isinstance(algo, torch.nn.Module)
    meta = algo.meta_parameters()
    if name in ("maml", "fomaml", "anil", "boil"):
        assert meta == {}
    elif name == "meta_curvature":  # square matrices per mode of each weight, a vector per bias
        shapes = dict(bb.named_parameters())
        for key, m in meta.items():
            param, _, part = key.partition(":")
            size = {"": shapes[param].shape, "out": (len(shapes[param]),) * 2}.get(part, (m.shape[0],) * 2)
            assert m.shape == size, key
    else:
        assert set(meta) <= {n for n, _ in bb.named_parameters()} and meta
        assert all(meta[n].shape == p.shape for n, p in bb.named_parameters() if n in meta)
    xs, xq = torch.randn(2, 3, 1, 16, 16), torch.randn(2, 6, 1, 16, 16)
    ys, yq = torch.arange(3).repeat(2, 1), torch.arange(3).repeat(2, 2)
    loss, acc = algo.meta_backward(xs, ys, xq, yq)
    assert loss.dim() == 0 and 0 <= acc.item() <= 1
    assert all(p.grad is not None for p in bb.parameters())
    fast = algo.adapt(xs[0], ys[0], steps=1)
    assert set(fast) == {n for n, _ in bb.named_parameters()}
    assert algo.predict(fast, xq[0]).shape == (6, 3)
    assert isinstance(algo.update_sparsity(), dict)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown algorithm 'reptile'"):
        build_algorithm("reptile", backbone())
    with pytest.raises(ValueError, match="inner_steps must be >= 1"):
        build_algorithm("maml", backbone(), inner_steps=0)
    with pytest.raises(ValueError, match="use algo 'fomaml'"):
        build_algorithm("maml", backbone(), first_order=True)
    with pytest.raises(ValueError, match="meta-batch"):
        build_algorithm("fomaml", backbone()).meta_backward(
            torch.randn(3, 1, 16, 16), torch.zeros(3).long(), torch.randn(3, 1, 16, 16), torch.zeros(3).long()
        )


def test_register_a_new_algorithm():
    @register_algorithm
    class LastLayerSGD(InnerLoopLearner):
        name = "head_sgd_test"

        def adapts(self, name):
            return name == "head.weight"

    import sparse_maml.algorithms as algorithms

    try:
        assert "head_sgd_test" in algorithms.ALGORITHMS
        algo = build_algorithm("head_sgd_test", backbone(), inner_steps=1)
        assert algo.adapted == ["head.weight"] and algo.head_only
    finally:
        REGISTRY.pop("head_sgd_test")
        algorithms.ALGORITHMS = tuple(REGISTRY)
