"""Which tasks run together (``batched.pays``, ``tasks_per_chunk``): by their size, as benchmarks/chunks.py measured."""

import torch

from sparse_maml.algorithms import build_algorithm
from sparse_maml.algorithms.engine import batched
from sparse_maml.models import build_backbone


def conv4(channels, size):
    return build_algorithm("sparse_maml", build_backbone("conv4", channels, size, 5, 64))


def test_small_tasks_run_together_on_cpu_large_ones_one_at_a_time():
    omniglot = conv4(1, 28)
    support, query = torch.zeros(4, 5, 1, 28, 28), torch.zeros(4, 75, 1, 28, 28)  # 1-shot, 15 queries
    assert batched.pays(omniglot, support) and batched.tasks_per_chunk(omniglot, support) >= 10
    assert not batched.pays(omniglot, query)
    assert not batched.pays(omniglot, torch.zeros(4, 25, 1, 28, 28))  # 5-shot support sets
    mini = conv4(3, 84)
    assert not batched.pays(mini, torch.zeros(4, 5, 3, 84, 84))
    assert not batched.pays(mini, torch.zeros(2, 25, 3, 84, 84))
    assert not batched.pays(omniglot, support[:1])  # one task: nothing to run together
    omniglot.batch_tasks = False  # the setting overrides the size rule
    assert not omniglot._batched(support, None)
