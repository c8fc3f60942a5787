"""MetaLearner's validation and test go through ``algo.evaluate``: tasks together where that pays, in chunks, with
the results of adapting one task at a time (float64)."""

import pytest
import torch

from sparse_maml.algorithms.engine import batched
from sparse_maml.module import MetaLearner

from .algorithms.helpers import make_tasks


def learner(algorithm="sparse_maml"):
    module = MetaLearner(
        algorithm=algorithm, in_channels=1, image_size=16, n_way=3, inner_steps=2, backbone_kwargs={"hidden": 8}
    ).double()
    module.algo.fast_forward = True  # float64 leaves the lean forward off by default
    return module


@pytest.mark.parametrize("budget_tasks", [None, 2])  # None: all tasks in one chunk; 2: chunks of two tasks
@pytest.mark.parametrize("algorithm", ["sparse_maml", "anil"])
def test_validation_batches_tasks_and_equals_one_at_a_time(monkeypatch, algorithm, budget_tasks):
    module = learner(algorithm)
    batch = make_tasks(tasks=5, queries=4)
    if budget_tasks is not None:  # a budget that holds two tasks' activations (the query sets are the larger)
        per_task = batch[2].shape[1] * 8 * 16 * 16 * 4
        monkeypatch.setattr(batched, "CPU_CHUNK_BYTES", budget_tasks * per_task)
    assert module.algo._batched(batch[0], None)  # small tasks: run together
    got = module.evaluate_episodes(*batch)
    module.algo.batch_tasks = False
    want = module.evaluate_episodes(*batch)
    torch.testing.assert_close(got.accuracy, want.accuracy)
    for n, sq in want.change_sq.items():
        torch.testing.assert_close(got.change_sq[n], sq, rtol=1e-9, atol=1e-20)
    module.algo.batch_tasks = None
    module.validation_step(batch, 0)
    module.test_step(batch, 0)
    torch.testing.assert_close(module.val_accs.compute(), want.accuracy)
    torch.testing.assert_close(module.test_accs.compute(), want.accuracy)
