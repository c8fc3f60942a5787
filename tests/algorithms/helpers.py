"""Small tasks and reference computations for the algorithm tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone


def make_tasks(tasks=3, n_way=3, shots=2, queries=3, channels=1, size=16, dtype=torch.float64):
    """A random meta-batch: xs [T, N*K, C, H, W], ys [T, N*K], xq [T, N*Q, C, H, W], yq [T, N*Q]."""
    xs = torch.randn(tasks, n_way * shots, channels, size, size, dtype=dtype)
    xq = torch.randn(tasks, n_way * queries, channels, size, size, dtype=dtype)
    ys = torch.arange(n_way).repeat_interleave(shots).repeat(tasks, 1)
    yq = torch.arange(n_way).repeat_interleave(queries).repeat(tasks, 1)
    return xs, ys, xq, yq


def make_algo(name, steps=4, lr=0.1, hidden=4, n_way=3, dtype=torch.float64, **kwargs):
    backbone = build_backbone("conv4", in_channels=1, image_size=16, n_way=n_way, hidden=hidden)
    algo = build_algorithm(name, backbone, inner_lr=lr, inner_steps=steps, **kwargs)
    return algo.to(dtype)


#: algorithms whose learned m is the step size itself: phi - s(m) * g, without alpha (Li et al., 2017; the official
#: code's --meta_relu_through)
LEARNED_STEP = ("meta_sgd", "sparse_relu_maml")


def inner_loop_reference(algo, theta, scales, xs, ys, steps, create_graph):
    """phi_{k+1} = phi_k - alpha * s * grad L(phi_k; support) (alpha = 1 for LEARNED_STEP), written out directly
    on the full network."""
    alpha = 1.0 if algo.name in LEARNED_STEP else algo.inner_lr
    phi = dict(theta)
    for _ in range(steps):
        loss = F.cross_entropy(functional_call(algo.backbone, phi, (xs,)), ys)
        grads = torch.autograd.grad(loss, [phi[n] for n in algo.adapted], create_graph=create_graph, retain_graph=True)
        for n, g in zip(algo.adapted, grads):
            s = 1.0 if scales is None else scales[n]
            phi[n] = phi[n] - alpha * s * g
    return phi


def grads_of(algo):
    theta = {n: p.grad.clone() for n, p in algo.backbone.named_parameters()}
    m = {n: p.grad.clone() for n, p in algo.meta_parameters().items()}
    return theta, m


def rel_err(a, b):
    # The floor keeps exactly-zero gradients (a conv bias before BatchNorm) from comparing rounding noise.
    return ((a - b).norm() / b.norm().clamp_min(1e-9)).item()
