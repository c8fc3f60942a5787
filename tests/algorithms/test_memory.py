"""First-order meta-gradients keep no graph across inner steps: peak memory is flat in K."""

import pytest
import torch

from benchmarks.memory import peak_tensor_bytes
from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone


def peak(name, steps, **kwargs):
    torch.manual_seed(0)
    backbone = build_backbone("conv4", in_channels=3, image_size=32, n_way=5, hidden=16)
    algo = build_algorithm(name, backbone, inner_lr=0.1, inner_steps=steps, **kwargs)
    xs, xq = torch.randn(2, 10, 3, 32, 32), torch.randn(2, 15, 3, 32, 32)
    ys, yq = torch.arange(5).repeat(2, 2), torch.arange(5).repeat(2, 3)
    algo.meta_backward(xs, ys, xq, yq)  # warm-up: .grad buffers exist before measuring
    return peak_tensor_bytes(lambda: algo.meta_backward(xs, ys, xq, yq))


@pytest.mark.parametrize("name", ["sparse_maml", "fomaml", "meta_sgd", "sparse_relu_maml"])
def test_first_order_peak_memory_flat_in_steps(name):
    assert peak(name, 40) <= 1.2 * peak(name, 5)


def test_second_order_peak_memory_grows_with_steps():
    """The measurement itself can see growth: second-order MAML keeps every step's graph."""
    assert peak("maml", 20) > 2 * peak("maml", 5)
