"""On a tiny synthetic few-shot problem, meta-training learns and sparse-MAML's mask moves."""

import pytest
import torch

from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone

N_WAY, SHOTS, QUERIES, SIZE = 5, 1, 5, 16


def prototypes(classes, gen):
    """Each class is a sum of shared stroke-like primitives (shared low-level features) in its own combination."""
    primitives = torch.zeros(12, SIZE, SIZE)
    for i in range(12):
        r, c = torch.randint(0, SIZE - 6, (2,), generator=gen)
        if i % 2:
            primitives[i, r : r + 6, c : c + 2] = 1
        else:
            primitives[i, r : r + 2, c : c + 6] = 1
    weights = (torch.rand(classes, 12, generator=gen) < 0.3).float()
    return torch.einsum("kp,phw->khw", weights, primitives).clamp(max=1)[:, None]


def episode(protos, gen):
    classes = torch.randperm(len(protos), generator=gen)[:N_WAY]

    def draw(per_class):
        x = protos[classes].repeat_interleave(per_class, 0)
        x = x + 0.4 * torch.randn(x.shape, generator=gen)
        return x, torch.arange(N_WAY).repeat_interleave(per_class)

    return (*draw(SHOTS), *draw(QUERIES))


def meta_batch(protos, gen, tasks=2):
    eps = [episode(protos, gen) for _ in range(tasks)]
    return [torch.stack(parts) for parts in zip(*eps)]


def accuracy(algo, protos, gen, tasks=40):
    hits = 0.0
    for _ in range(tasks):
        xs, ys, xq, yq = episode(protos, gen)
        hits += (algo(xs, ys, xq).argmax(-1) == yq).float().mean().item()
    return hits / tasks


@pytest.mark.parametrize("name", ["sparse_maml", "fomaml"])
def test_meta_training_learns(name):
    gen = torch.Generator().manual_seed(0)
    protos = prototypes(60, gen)
    train, test = protos[:40], protos[40:]
    torch.manual_seed(0)
    backbone = build_backbone("conv4", in_channels=1, image_size=SIZE, n_way=N_WAY, hidden=16)
    algo = build_algorithm(name, backbone, inner_lr=0.1, inner_steps=5)
    opt_theta = torch.optim.Adam(algo.backbone.parameters(), 1e-3)
    opt_m = torch.optim.Adam(algo.modulation.parameters(), 1e-2) if algo.modulated else None
    before = accuracy(algo, test, torch.Generator().manual_seed(1))
    init_sparsity = algo.network_sparsity()
    init_masks = {n: m.detach().clone() for n, m in algo.meta_parameters().items()}
    for _ in range(200):
        opt_theta.zero_grad()
        if opt_m:
            opt_m.zero_grad()
        algo.meta_backward(*meta_batch(train, gen))
        opt_theta.step()
        if opt_m:
            opt_m.step()
    after = accuracy(algo, test, torch.Generator().manual_seed(1))
    assert after > 0.5 and after > before + 0.15, (before, after)  # chance is 0.2
    if name == "sparse_maml":
        flipped = sum(((m < 0) != (init_masks[n] < 0)).sum().item() for n, m in algo.meta_parameters().items())
        assert flipped > 0
        assert abs(algo.network_sparsity() - init_sparsity) > 0.01, algo.network_sparsity()
