"""The algorithm contract and the per-task engine (docs/DESIGN.md). Every algorithm runs

    phi_0 = theta,   phi_{k+1} = phi_k - alpha * s(m) * g_k,   g_k = grad_phi L(phi_k; support)

for the parameters that adapt; the others stay at theta. An algorithm only says which parameters adapt
(``adapts``), what the modulation s(m) is (``scale``, with its learned tensors m from ``init_modulation``), and
whether it is first or second order.

First-order meta-gradients (paper, Appendix B) need only the running sum of the inner gradients:

    dL/dtheta ~= grad L_query(phi_K),   dL/dm ~= -alpha * s'(m) * grad L_query(phi_K) * sum_k g_k

so no graph is kept across inner steps and memory does not grow with K. They are delivered through a
surrogate loss, sum(theta * G_theta) + sum(s(m) * G_m), whose backward writes exactly these gradients: Lightning's
``manual_backward`` and DDP's all-reduce then work unchanged.

The K-step update itself is ``update.inner_loop``; running a meta-batch's tasks together is ``batched.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from ..models.functional import Conv4Functional
from .batched import batched_evaluate, batched_first_order
from .masks import grouped_sparsity, network_sparsity, tensor_sparsity
from .update import Params, inner_loop


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
        #: use the lean functional forward (``models/functional.py``) when the backbone is a plain Conv4: equal to
        #: the module's own forward up to rounding. None: for every dtype but float64, which is for verification
        #: against reference computations, where the op-by-op module keeps rounding noise the same too.
        self.fast_forward: bool | None = None
        #: adapt the tasks of a meta-batch together (grouped convolutions) in first-order ``meta_loss`` and in
        #: ``evaluate``; None: on GPU only (on CPU one task at a time is as fast and needs less memory).
        self.batch_tasks: bool | None = None
        self._functional = Conv4Functional(backbone) if Conv4Functional.supports(backbone) else None
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
        with torch.enable_grad():
            phi, _ = self._adapt_first_order(theta, xs, ys, self.inner_steps if steps is None else steps, False)
        return {**theta, **{n: p.detach() for n, p in phi.items()}}

    def predict(self, params: Params, x: Tensor) -> Tensor:
        """Logits [B, n_way] of the backbone with ``params`` on x [B, C, H, W]."""
        return self._forward(params, x, fused=None)

    def forward(self, xs: Tensor, ys: Tensor, xq: Tensor, steps: int | None = None) -> Tensor:
        """Adapt on one task's support set and return query logits [N*Q, n_way]."""
        return self.predict(self.adapt(xs, ys, steps), xq)

    @torch.no_grad()
    def evaluate(
        self,
        xs: Tensor,
        ys: Tensor,
        xq: Tensor,
        yq: Tensor,
        steps: int | None = None,
        batched: bool | None = None,
        chunk: int | None = None,
    ) -> Tensor:
        """Query accuracy [T] of each task of xs [T, N*K, C, H, W], ys [T, N*K], xq [T, N*Q, C, H, W], yq [T, N*Q]
        after adapting to its support set with ``steps`` inner steps (default ``inner_steps``).

        ``batched`` adapts ``chunk`` tasks at once with grouped convolutions (Conv4 only); None: as
        ``batch_tasks`` says (on GPU only by default). Both give the accuracies of ``adapt`` and ``predict``
        task by task. ``chunk`` defaults to as many tasks as keep one first-layer activation under 2^28 values.
        """
        steps = self.inner_steps if steps is None else steps
        if self._batched(xs, batched):
            return batched_evaluate(self, xs, ys, xq, yq, steps, chunk)
        accs = [_accuracy(self.predict(self.adapt(xs[t], ys[t], steps), xq[t]), yq[t]) for t in range(len(xs))]
        return torch.stack(accs)

    def meta_loss(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(surrogate, query loss, query accuracy) over a meta-batch; ``surrogate.backward()`` writes the
        meta-gradients of the mean query loss over tasks into ``.grad`` of theta and m."""
        if xs.dim() != 5:
            raise ValueError(f"expected a meta-batch xs [T, N*K, C, H, W], got shape {tuple(xs.shape)}")
        tasks = xs.shape[0]
        if self.first_order:
            if self._batched(xs, None):
                g_query, g_m, losses, accs = batched_first_order(self, xs, ys, xq, yq)
            else:
                g_query, g_m, losses, accs = {}, {}, [], []
                for t in range(tasks):
                    g_q, g_sum, loss, acc = self._first_order_task(xs[t], ys[t], xq[t], yq[t])
                    _accumulate(g_query, g_q)
                    if self.modulated:
                        _accumulate(g_m, {n: -self.inner_lr * g_q[n] * g_sum[n] for n in self.adapted})
                    losses.append(loss)
                    accs.append(acc)
                losses, accs = torch.stack(losses), torch.stack(accs)
            surrogate_loss = self._first_order_surrogate(g_query, g_m, tasks)
            return surrogate_loss, losses.mean(), accs.mean()
        surrogate, losses, accs = [], [], []
        for t in range(tasks):
            s, loss, acc = self._second_order_task(xs[t], ys[t], xq[t], yq[t])
            surrogate.append(s)
            losses.append(loss)
            accs.append(acc)
        return torch.stack(surrogate).mean(), torch.stack(losses).mean(), torch.stack(accs).mean()

    def meta_backward(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> tuple[Tensor, Tensor]:
        """Accumulate the meta-gradients of a meta-batch into ``.grad``; returns (query loss, query accuracy)."""
        surrogate, loss, acc = self.meta_loss(xs, ys, xq, yq)
        surrogate.backward()
        return loss, acc

    # ---- the engine ----------------------------------------------------------------------------------------
    def _fast(self) -> Conv4Functional | None:
        use = self.fast_forward
        if use is None:
            use = next(self.backbone.parameters()).dtype != torch.float64
        return self._functional if use else None

    def _batched(self, xs: Tensor, batched: bool | None) -> bool:
        """Whether to run the tasks together: ``batched``, else ``batch_tasks``, else on GPU when possible."""
        auto = batched is None and self.batch_tasks is None
        if batched is None:
            batched = self.batch_tasks if self.batch_tasks is not None else xs.is_cuda
        if batched and self._fast() is None:
            if auto:
                return False
            raise ValueError(
                "running tasks together needs a Conv4 backbone and the fast forward "
                "(fast_forward=True; None leaves it off in float64)"
            )
        return bool(batched)

    def _forward(self, params: Params, x: Tensor, fused: bool | None) -> Tensor:
        """Logits of the whole backbone with ``params`` (all of them) on x."""
        fn = self._fast()
        return fn(params, x, fused) if fn is not None else functional_call(self.backbone, params, (x,))

    def _scales(self, detach: bool) -> dict[str, Tensor | None]:
        if not self.modulated:
            return dict.fromkeys(self.adapted)
        return {n: (self.scale(m).detach() if detach else self.scale(m)) for n, m in self.meta_parameters().items()}

    def _encoders(self, frozen: Params, need_graph: bool) -> tuple[Callable[[Tensor], Tensor], Callable]:
        """(encode, model): ``model(phi, encode(x))`` are the logits with adapted parameters phi.

        With only the head adapting, ``encode`` runs the body once per input; otherwise it only puts x in the
        layout the forward wants. ``need_graph``: second order (the fused, once-differentiable ops are not used).
        """
        fn, fused = self._fast(), not need_graph
        if self.head_only:
            body = {n[len("body.") :]: p for n, p in frozen.items() if n.startswith("body.")}
            head = {n: p for n, p in frozen.items() if n.startswith("head.")}

            def encode(x: Tensor) -> Tensor:
                with torch.set_grad_enabled(need_graph):
                    if fn is not None:
                        return fn.body(frozen, x, fused)
                    return functional_call(self.backbone.body, body, (x,))

            def model(phi: Params, z: Tensor) -> Tensor:
                if fn is not None:
                    return fn.head({**head, **phi}, z)
                return functional_call(self.backbone.head, {n[len("head.") :]: p for n, p in phi.items()}, (z,))

            return encode, model

        def model_full(phi: Params, x: Tensor) -> Tensor:
            return self._forward({**frozen, **phi}, x, fused)

        if fn is not None:
            return (lambda x: x.contiguous(memory_format=torch.channels_last)), model_full
        return (lambda x: x), model_full

    def _adapt_first_order(
        self, theta: Params, xs: Tensor, ys: Tensor, steps: int, keep_sum: bool
    ) -> tuple[Params, list[Tensor] | None]:
        """First-order inner loop on one task from theta (detached): (phi_K, sum_k g_k or None)."""
        encode, model = self._encoders(theta, need_graph=False)
        zs = encode(xs)
        phi = {n: theta[n].detach().requires_grad_() for n in self.adapted}
        return inner_loop(
            phi,
            self._scales(detach=True),
            lambda p: F.cross_entropy(model(p, zs), ys),
            steps,
            self.inner_lr,
            create_graph=False,
            keep_sum=keep_sum,
        )

    def _first_order_task(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor):
        """(grad of the query loss at phi_K for every trainable parameter, sum_k g_k, query loss, accuracy)."""
        theta = {n: p.detach() for n, p in self.backbone.named_parameters()}
        phi, grad_sum = self._adapt_first_order(theta, xs, ys, self.inner_steps, keep_sum=True)
        # Query loss at phi_K; parameters that did not adapt enter as theta itself.
        leaves = {
            n: (phi[n] if n in phi else theta[n].detach().requires_grad_())
            for n, p in self.backbone.named_parameters()
            if p.requires_grad
        }
        logits = self._forward({**theta, **leaves}, xq, fused=True)
        loss = F.cross_entropy(logits, yq)
        grads = torch.autograd.grad(loss, list(leaves.values()))
        return dict(zip(leaves, grads)), dict(zip(self.adapted, grad_sum)), loss.detach(), _accuracy(logits, yq)

    def _first_order_surrogate(self, g_theta: Params, g_m: Params, tasks: int) -> Tensor:
        """sum(theta * G_theta) + sum(s(m) * G_m), G the per-task sums divided by T: its backward writes the
        first-order meta-gradients of the mean query loss."""
        params = dict(self.backbone.named_parameters())
        surrogate = sum((params[n] * (g / tasks)).sum() for n, g in g_theta.items())
        if self.modulated:
            m = self.meta_parameters()
            surrogate = surrogate + sum((self.scale(m[n]) * (g / tasks)).sum() for n, g in g_m.items())
        return surrogate

    def _second_order_task(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor):
        theta = dict(self.backbone.named_parameters())
        encode, model = self._encoders(theta, need_graph=True)
        zs = encode(xs)
        phi, _ = inner_loop(
            {n: theta[n] for n in self.adapted},
            self._scales(detach=False),
            lambda p: F.cross_entropy(model(p, zs), ys),
            self.inner_steps,
            self.inner_lr,
            create_graph=True,
            keep_sum=False,
        )
        logits = model(phi, encode(xq))
        loss = F.cross_entropy(logits, yq)
        return loss, loss.detach(), _accuracy(logits, yq)


def _accumulate(total: Params, new: Params) -> None:
    for n, g in new.items():
        total[n] = total[n] + g if n in total else g


def _accuracy(logits: Tensor, y: Tensor) -> Tensor:
    return (logits.argmax(-1) == y).float().mean().detach()
