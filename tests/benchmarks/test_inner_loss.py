"""benchmarks/inner_loss.py: the support loss per inner step is the algorithm's own K-step adaptation."""

import pytest
import torch
import torch.nn.functional as F

from benchmarks.inner_loss import main, mask_grad_cosine, support_losses
from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone

from ..data.helpers import SHARED_DATA


def learner(algo="sparse_maml", inner_lr=0.1):
    torch.manual_seed(0)
    net = build_backbone("conv4", in_channels=1, image_size=16, n_way=3, hidden=4)
    return build_algorithm(algo, net, inner_lr=inner_lr, inner_steps=3)


def batch(tasks=2):
    torch.manual_seed(1)
    ys = torch.arange(3).repeat(tasks, 1)
    return torch.randn(tasks, 3, 1, 16, 16), ys, torch.randn(tasks, 6, 1, 16, 16), torch.arange(3).repeat(tasks, 2)


def test_losses_step_by_step_equal_k_steps_at_once():
    algo, (xs, ys, xq, yq) = learner(), batch()
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    losses = support_losses(algo, (xs, ys, xq, yq), steps=3)
    want = []
    for k in range(4):
        per_task = [F.cross_entropy(algo.predict(algo.adapt(xs[t], ys[t], steps=k), xs[t]), ys[t]) for t in range(2)]
        want.append(torch.stack(per_task).mean().item())
    assert losses == pytest.approx(want, rel=1e-4)
    assert all(torch.equal(p, theta[n]) for n, p in algo.backbone.named_parameters())  # theta left as it was
    assert support_losses(learner(inner_lr=0.0), batch(), steps=2) == pytest.approx([losses[0]] * 3, rel=1e-6)


def test_mask_gradient_cosine():
    assert mask_grad_cosine(learner(), batch(), 2, 2) == pytest.approx(1.0, abs=1e-5)  # the same K twice
    assert -1.0 <= mask_grad_cosine(learner(), batch(), 1, 3) < 1.0
    assert torch.isnan(torch.tensor(mask_grad_cosine(learner("fomaml"), batch(), 1, 3)))  # no mask


@pytest.mark.skipif(
    not (SHARED_DATA / "omniglot").is_dir(), reason=f"Omniglot's archives are not at {SHARED_DATA / 'omniglot'}"
)
def test_command_on_omniglot(capsys):
    main(
        [
            "--algos",
            "sparse_maml",
            "--ways",
            "5",
            "--lrs",
            "0.1",
            "--episodes",
            "2",
            "--train-iters",
            "1",
            "--steps",
            "5",
        ]
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| sparse_maml")]
    assert [r.split(" | ")[4] for r in rows] == ["init", "trained"]
