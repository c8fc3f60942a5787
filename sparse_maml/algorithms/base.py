"""The inner loop every algorithm shares (see DESIGN.md):

    phi_0 = theta,   phi_{k+1} = phi_k - alpha * s(m) * g_k,   g_k = grad_phi L(phi_k; support)

for the parameters that adapt; the others stay at theta. An algorithm only says which parameters adapt
(``adapts``), what the modulation s(m) is (``scale``, with its learned tensors m from ``init_modulation``), and
whether it is first or second order.

First-order meta-gradients (paper, Appendix B) need only the running sum of the inner gradients:

    dL/dtheta ~= grad L_query(phi_K),   dL/dm ~= -alpha * s'(m) * grad L_query(phi_K) * sum_k g_k

so no graph is kept across inner steps and memory does not grow with K. They are delivered through a
surrogate loss, sum(theta * G_theta) + sum(s(m) * G_m), whose backward writes exactly these gradients: Lightning's
``manual_backward`` and DDP's all-reduce then work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .masks import grouped_sparsity, network_sparsity, tensor_sparsity

Params = dict[str, Tensor]


def _key(name: str) -> str:
    # ParameterDict keys may not contain dots.
    return name.replace(".", "__")


class InnerLoopLearner(nn.Module):
    """A gradient-based meta-learner over a backbone with ``body`` and ``head`` submodules.

    Shapes: a meta-batch is ``xs [T, N*K, C, H, W]``, ``ys [T, N*K]``, ``xq [T, N*Q, C, H, W]``, ``yq [T, N*Q]``;
    one task drops the leading T.
    """

    name: ClassVar[str] = ""
    #: order used when ``first_order=None``; None means the order is fixed (maml, fomaml)
    default_first_order: ClassVar[bool] = True
    fixed_order: ClassVar[bool] = False
    #: whether m is learned (s(m) != 1)
    modulated: ClassVar[bool] = False
    #: whether s(m) is a binary mask, so that update sparsity is meaningful
    masked: ClassVar[bool] = False

    def __init__(
        self,
        backbone: nn.Module,
        inner_lr: float = 0.1,
        inner_steps: int = 25,
        first_order: bool | None = None,
        mask_init_sparsity: float = 0.5,
    ) -> None:
        super().__init__()
        if inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {inner_steps}")
        if first_order is None:
            first_order = self.default_first_order
        if self.fixed_order and first_order != self.default_first_order:
            other = "fomaml" if self.name == "maml" else "maml"
            raise ValueError(
                f"{self.name} is {'first' if self.default_first_order else 'second'} order by "
                f"definition; use algo {other!r} for the other order"
            )
        self.backbone = backbone
        self.inner_lr = float(inner_lr)
        self.inner_steps = int(inner_steps)
        self.first_order = bool(first_order)
        self.mask_init_sparsity = float(mask_init_sparsity)
        names = [n for n, p in backbone.named_parameters() if p.requires_grad]
        self.adapted = [n for n in names if self.adapts(n)]
        if not self.adapted:
            raise ValueError(f"{self.name}: no backbone parameter adapts in the inner loop")
        # When only the head adapts, body features are constant in the inner loop: compute them once.
        self.head_only = all(n.startswith("head.") for n in self.adapted)
        self.modulation = nn.ParameterDict()
        if self.modulated:
            params = dict(backbone.named_parameters())
            for n in self.adapted:
                self.modulation[_key(n)] = nn.Parameter(self.init_modulation(params[n].detach()))

    # ---- what defines an algorithm -------------------------------------------------------------------------
    def adapts(self, name: str) -> bool:
        """Whether backbone parameter ``name`` changes in the inner loop."""
        return True

    def init_modulation(self, param: Tensor) -> Tensor:
        """Initial learned tensor m for an adapted parameter (only for modulated algorithms)."""
        raise NotImplementedError

    def scale(self, m: Tensor) -> Tensor:
        """The modulation s(m) multiplying the inner gradient, differentiable in m."""
        return m

    # ---- public API ----------------------------------------------------------------------------------------
    def meta_parameters(self) -> dict[str, nn.Parameter]:
        """{backbone parameter name: learned tensor m}; empty for algorithms without modulation."""
        return {n: self.modulation[_key(n)] for n in self.adapted} if self.modulated else {}

    def update_sparsity(self) -> dict[str, float]:
        """{parameter name: fraction of m < 0}, for algorithms whose s(m) is a binary mask; else {}."""
        if not self.masked:
            return {}
        return {n: tensor_sparsity(m.detach()) for n, m in self.meta_parameters().items()}

    def layer_sparsity(self) -> dict[str, float]:
        """Update sparsity per layer (module), over all its masked tensors."""
        return grouped_sparsity({n: m.detach() for n, m in self.meta_parameters().items()}) if self.masked else {}

    def network_sparsity(self) -> float | None:
        """Update sparsity of the whole network, or None without a mask."""
        return network_sparsity({n: m.detach() for n, m in self.meta_parameters().items()}) if self.masked else None

    def adapt(self, xs: Tensor, ys: Tensor, steps: int | None = None) -> Params:
        """Adapt to one task's support set xs [N*K, C, H, W], ys [N*K]: {parameter name: adapted tensor}.

        The result is detached (first-order inner loop) and holds every backbone parameter, so it can be passed
        to ``predict``.
        """
        theta = {n: p.detach() for n, p in self.backbone.named_parameters()}
        scales = self._scales(detach=True)
        with torch.enable_grad():
            encode, model = self._encoders(theta, need_graph=False)
            phi = {n: theta[n].detach().requires_grad_() for n in self.adapted}
            phi, _ = self._inner_loop(
                phi,
                scales,
                encode(xs),
                ys,
                self.inner_steps if steps is None else steps,
                create_graph=False,
                keep_sum=False,
                model=model,
            )
        return {**theta, **{n: p.detach() for n, p in phi.items()}}

    def predict(self, params: Params, x: Tensor) -> Tensor:
        """Logits [B, n_way] of the backbone with ``params`` on x [B, C, H, W]."""
        return functional_call(self.backbone, params, (x,))

    def forward(self, xs: Tensor, ys: Tensor, xq: Tensor, steps: int | None = None) -> Tensor:
        """Adapt on one task's support set and return query logits [N*Q, n_way]."""
        return self.predict(self.adapt(xs, ys, steps), xq)

    def meta_loss(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(surrogate, query loss, query accuracy) over a meta-batch; ``surrogate.backward()`` writes the
        meta-gradients of the mean query loss over tasks into ``.grad`` of theta and m."""
        if xs.dim() != 5:
            raise ValueError(f"expected a meta-batch xs [T, N*K, C, H, W], got shape {tuple(xs.shape)}")
        run = self._first_order_task if self.first_order else self._second_order_task
        tasks = xs.shape[0]
        surrogate, losses, accs = [], [], []
        for t in range(tasks):
            s, loss, acc = run(xs[t], ys[t], xq[t], yq[t])
            surrogate.append(s)
            losses.append(loss)
            accs.append(acc)
        if self.first_order:
            surrogate_loss = self._first_order_surrogate(surrogate, tasks)
        else:
            surrogate_loss = torch.stack(surrogate).mean()
        return surrogate_loss, torch.stack(losses).mean(), torch.stack(accs).mean()

    def meta_backward(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> tuple[Tensor, Tensor]:
        """Accumulate the meta-gradients of a meta-batch into ``.grad``; returns (query loss, query accuracy)."""
        surrogate, loss, acc = self.meta_loss(xs, ys, xq, yq)
        surrogate.backward()
        return loss, acc

    # ---- the engine ----------------------------------------------------------------------------------------
    def _scales(self, detach: bool) -> dict[str, Tensor | None]:
        if not self.modulated:
            return dict.fromkeys(self.adapted)
        return {n: (self.scale(m).detach() if detach else self.scale(m)) for n, m in self.meta_parameters().items()}

    def _encoders(self, frozen: Params, need_graph: bool) -> tuple[Callable[[Tensor], Tensor], Callable]:
        """(encode, model): ``model(phi, encode(x))`` are the logits with adapted parameters phi.

        With only the head adapting, ``encode`` runs the body once per input; otherwise it is the identity.
        """
        if self.head_only:
            body = {n[len("body.") :]: p for n, p in frozen.items() if n.startswith("body.")}

            def encode(x: Tensor) -> Tensor:
                with torch.set_grad_enabled(need_graph):
                    return functional_call(self.backbone.body, body, (x,))

            def model(phi: Params, z: Tensor) -> Tensor:
                return functional_call(self.backbone.head, {n[len("head.") :]: p for n, p in phi.items()}, (z,))

            return encode, model

        def model_full(phi: Params, x: Tensor) -> Tensor:
            return functional_call(self.backbone, {**frozen, **phi}, (x,))

        return (lambda x: x), model_full

    def _inner_loop(
        self,
        phi: Params,
        scales: dict[str, Tensor | None],
        zs: Tensor,
        ys: Tensor,
        steps: int,
        create_graph: bool,
        keep_sum: bool,
        model: Callable[[Params, Tensor], Tensor],
    ) -> tuple[Params, list[Tensor] | None]:
        """K steps of phi <- phi - alpha * s(m) * grad L(phi; support). First order (``create_graph=False``)
        keeps no graph between steps; ``keep_sum`` also returns sum_k g_k."""
        names = list(phi)
        grad_sum: list[Tensor] | None = None
        for _ in range(steps):
            loss = F.cross_entropy(model(phi, zs), ys)
            grads = torch.autograd.grad(loss, [phi[n] for n in names], create_graph=create_graph)
            if keep_sum:
                grad_sum = list(grads) if grad_sum is None else [a + g for a, g in zip(grad_sum, grads)]
            steps_ = [g if scales[n] is None else scales[n] * g for n, g in zip(names, grads)]
            if create_graph:
                phi = {n: phi[n] - self.inner_lr * d for n, d in zip(names, steps_)}
            else:
                with torch.no_grad():
                    phi = {n: (phi[n] - self.inner_lr * d).requires_grad_() for n, d in zip(names, steps_)}
        return phi, grad_sum

    def _first_order_task(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor):
        theta = {n: p.detach() for n, p in self.backbone.named_parameters()}
        encode, model = self._encoders(theta, need_graph=False)
        phi = {n: theta[n].detach().requires_grad_() for n in self.adapted}
        phi, grad_sum = self._inner_loop(
            phi,
            self._scales(detach=True),
            encode(xs),
            ys,
            self.inner_steps,
            create_graph=False,
            keep_sum=True,
            model=model,
        )
        # Query loss at phi_K; parameters that did not adapt enter as theta itself.
        leaves = {
            n: (phi[n] if n in phi else theta[n].detach().requires_grad_())
            for n, p in self.backbone.named_parameters()
            if p.requires_grad
        }
        logits = functional_call(self.backbone, {**theta, **leaves}, (xq,))
        loss = F.cross_entropy(logits, yq)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        g_query = dict(zip(leaves, grads))
        g_sum = dict(zip(self.adapted, grad_sum))
        return (g_query, g_sum), loss.detach(), _accuracy(logits, yq)

    def _first_order_surrogate(self, per_task: list[tuple[Params, Params]], tasks: int) -> Tensor:
        g_theta: Params = {}
        g_m: Params = {}
        for g_query, g_sum in per_task:
            for n, g in g_query.items():
                g_theta[n] = g_theta[n] + g if n in g_theta else g.clone()
            if self.modulated:
                for n in self.adapted:
                    d = -self.inner_lr * g_query[n] * g_sum[n]
                    g_m[n] = g_m[n] + d if n in g_m else d
        params = dict(self.backbone.named_parameters())
        surrogate = sum((params[n] * (g / tasks)).sum() for n, g in g_theta.items())
        if self.modulated:
            m = self.meta_parameters()
            surrogate = surrogate + sum((self.scale(m[n]) * (g / tasks)).sum() for n, g in g_m.items())
        return surrogate

    def _second_order_task(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor):
        theta = dict(self.backbone.named_parameters())
        encode, model = self._encoders(theta, need_graph=True)
        phi = {n: theta[n] for n in self.adapted}
        phi, _ = self._inner_loop(
            phi,
            self._scales(detach=False),
            encode(xs),
            ys,
            self.inner_steps,
            create_graph=True,
            keep_sum=False,
            model=model,
        )
        logits = model(phi, encode(xq))
        loss = F.cross_entropy(logits, yq)
        return loss, loss.detach(), _accuracy(logits, yq)


def _accuracy(logits: Tensor, y: Tensor) -> Tensor:
    return (logits.argmax(-1) == y).float().mean().detach()
