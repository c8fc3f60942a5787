"""The algorithm contract and its dispatch to the engine (docs/DESIGN.md). Every algorithm runs

    phi_0 = theta,   phi_{k+1} = phi_k - alpha * P_m(g_k),   g_k = grad_phi L(phi_k; support)

for the parameters that adapt; the others stay at theta. P_m is linear in g. An algorithm only says which
parameters adapt (``adapts``), what P_m is, and whether it is first or second order. Most algorithms modulate
element-wise, P_m(g) = s(m) * g (``scale``, with learned tensors m from ``init_modulation``); those whose m is the
step size itself (Meta-SGD, sparse-ReLU-MAML) drop alpha (``learned_step``); Meta-Curvature maps the whole gradient
tensor (``elementwise = False``, ``precondition``).

The K-step update itself is ``update.inner_loop``; one task's inner loop and query pass are ``per_task.py``,
running a meta-batch's tasks together is ``batched.py``, and the first-order meta-gradients (paper, Appendix B) and
the surrogate loss that delivers them are ``first_order.py``.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ...models.fused.functional import Conv4Functional
from .batched import batched_evaluate, batched_first_order, pays
from .evaluation import Evaluation, evaluate_per_task
from .first_order import first_order_meta_grads, first_order_surrogate
from .masks import batch_norm_parameters, below_zero, grouped_sparsity, network_sparsity, tensor_sparsity
from .per_task import adapt_first_order, first_order_task, second_order_task
from .update import Params, Step, accumulate


def _key(name: str) -> str:
    # ParameterDict keys may not contain dots.
    return name.replace(".", "__")


class InnerLoopLearner(nn.Module):
    """A gradient-based meta-learner over a backbone with ``body`` and ``head`` submodules.

    Shapes: a meta-batch is ``xs [T, N*K, C, H, W]``, ``ys [T, N*K]``, ``xq [T, N*Q, C, H, W]``, ``yq [T, N*Q]``;
    one task drops the leading T. An algorithm is a subclass that says what adapts and how (ANIL, in two lines):

    >>> from sparse_maml.models import build_backbone
    >>> class HeadOnly(InnerLoopLearner):
    ...     name = "head_only"
    ...     def adapts(self, name: str) -> bool: return name.startswith("head.")
    >>> learner = HeadOnly(build_backbone("conv4", in_channels=1, image_size=28, hidden=8), inner_steps=2)
    >>> learner.adapted
    ['head.weight', 'head.bias']
    >>> xs, ys = torch.rand(3, 5, 1, 28, 28), torch.arange(5).repeat(3, 1)  # three 5-way 1-shot tasks
    >>> learner.evaluate(xs, ys, xs, ys).accuracy.shape
    torch.Size([3])
    """

    name: ClassVar[str] = ""
    #: order used when ``first_order=None``; None means the order is fixed (maml, fomaml)
    default_first_order: ClassVar[bool] = True
    fixed_order: ClassVar[bool] = False
    #: whether m is learned (s(m) != 1)
    modulated: ClassVar[bool] = False
    #: whether s(m) is a binary mask, so that update sparsity is meaningful
    masked: ClassVar[bool] = False
    #: whether m is the step size itself: phi - s(m) * g, without alpha (Meta-SGD, sparse-ReLU-MAML)
    learned_step: ClassVar[bool] = False
    #: whether P_m(g) = s(m) * g entry by entry (the fast paths and the task-batched engine need this); otherwise
    #: ``precondition`` maps the gradient tensor
    elementwise: ClassVar[bool] = True

    def __init__(
        self,
        backbone: nn.Module,
        inner_lr: float = 0.1,
        inner_steps: int = 25,
        first_order: bool | None = None,
        adapt_bn: bool = True,
        **options: object,
    ) -> None:
        """``adapt_bn=False`` keeps every BatchNorm parameter at theta in the inner loop (the official code's
        ``--no_bn_in_inner_loop``). ``options`` are those of the algorithm's own class; others are an error."""
        super().__init__()
        if options:
            raise ValueError(f"algorithm {self.name!r} has no option {', '.join(sorted(options))}")
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
        self.adapt_bn = bool(adapt_bn)
        names = [n for n, p in backbone.named_parameters() if p.requires_grad]
        frozen = set() if adapt_bn else batch_norm_parameters(backbone)
        self.adapted = [n for n in names if self.adapts(n) and n not in frozen]
        if not self.adapted:
            raise ValueError(f"{self.name}: no backbone parameter adapts in the inner loop")
        # When only the head adapts, body features are constant in the inner loop: compute them once.
        self.head_only = all(n.startswith("head.") for n in self.adapted)
        #: use the lean functional forward (``models/fused/functional.py``) when the backbone is a plain Conv4: equal to
        #: the module's own forward up to rounding. None: for every dtype but float64, which is for verification
        #: against reference computations, where the op-by-op module keeps rounding noise the same too.
        self.fast_forward: bool | None = None
        #: adapt the tasks of a meta-batch together (grouped convolutions) in first-order ``meta_loss`` and in
        #: ``evaluate``; None: wherever it pays by the size of the tasks (``batched.pays``).
        self.batch_tasks: bool | None = None
        #: replay the inner loop of tasks run together from a CUDA graph captured once per shape (GPU only)
        self.cuda_graphs = False
        self._functional = Conv4Functional(backbone) if Conv4Functional.supports(backbone) else None
        self.modulation = nn.ParameterDict()
        self._meta_names: list[str] = []
        if self.modulated:
            params = dict(backbone.named_parameters())
            for n, m in self.init_modulations({n: params[n].detach() for n in self.adapted}).items():
                self.modulation[_key(n)] = nn.Parameter(m)
                self._meta_names.append(n)

    # ---- what defines an algorithm -------------------------------------------------------------------------
    def adapts(self, name: str) -> bool:
        """Whether backbone parameter ``name`` changes in the inner loop."""
        return True

    def init_modulation(self, param: Tensor) -> Tensor:
        """Initial learned tensor m for an adapted parameter (only for modulated algorithms)."""
        raise NotImplementedError

    def init_modulations(self, params: Params) -> dict[str, Tensor]:
        """{name: initial learned tensor} for the adapted ``params``: ``init_modulation`` of each by default (the
        names are then the parameters'). Override to initialise all tensors together or several per parameter."""
        return {n: self.init_modulation(p) for n, p in params.items()}

    def scale(self, m: Tensor) -> Tensor:
        """The modulation s(m) multiplying the inner gradient, differentiable in m."""
        return m

    def precondition(self, name: str, g: Tensor, meta: Params) -> Tensor:
        """P_m(g) for adapted parameter ``name`` when not ``elementwise``: linear in g, differentiable in the
        learned tensors ``meta`` (``meta_parameters()``, possibly detached)."""
        raise NotImplementedError

    def frozen(self, m: Tensor) -> Tensor:
        """Entries of a mask m that the inner loop never changes (m < 0 for the step mask 1[m >= 0])."""
        return below_zero(m)

    @property
    def step_lr(self) -> float:
        """The scalar alpha in front of P_m(g): ``inner_lr``, or 1 where m is the step size (``learned_step``)."""
        return 1.0 if self.learned_step else self.inner_lr

    # ---- public API ----------------------------------------------------------------------------------------
    def meta_parameters(self) -> dict[str, nn.Parameter]:
        """{name: learned tensor}, the name that of the backbone parameter m modulates (several tensors per
        parameter are named ``<parameter>:<part>``); empty for algorithms without modulation."""
        return {n: self.modulation[_key(n)] for n in self._meta_names}

    def update_sparsity(self) -> dict[str, float]:
        """{parameter name: fraction of entries frozen}, for algorithms whose m masks the step; else {}."""
        if not self.masked:
            return {}
        return {n: tensor_sparsity(m.detach(), self.frozen) for n, m in self.meta_parameters().items()}

    def layer_sparsity(self) -> dict[str, float]:
        """Update sparsity per layer (module), over all its masked tensors."""
        if not self.masked:
            return {}
        return grouped_sparsity({n: m.detach() for n, m in self.meta_parameters().items()}, self.frozen)

    def network_sparsity(self) -> float | None:
        """Update sparsity of the whole network, or None without a mask."""
        if not self.masked:
            return None
        return network_sparsity({n: m.detach() for n, m in self.meta_parameters().items()}, self.frozen)

    def adapt(self, xs: Tensor, ys: Tensor, steps: int | None = None) -> Params:
        """Adapt to one task's support set xs [N*K, C, H, W], ys [N*K]: {parameter name: adapted tensor}.

        The result is detached (first-order inner loop) and holds every backbone parameter, so it can be passed
        to ``predict``.
        """
        theta = {n: p.detach() for n, p in self.backbone.named_parameters()}
        with torch.enable_grad():
            phi, _ = adapt_first_order(self, theta, xs, ys, self.inner_steps if steps is None else steps, False)
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
    ) -> Evaluation:
        """Adapt to each task of xs [T, N*K, C, H, W], ys [T, N*K] with ``steps`` inner steps (default
        ``inner_steps``) and test on xq [T, N*Q, C, H, W], yq [T, N*Q]: ``(accuracy [T], change_sq)``, with
        change_sq {backbone parameter name: [T] ||phi_K - theta||^2}, zeros where a parameter does not adapt.

        ``batched`` adapts ``chunk`` tasks at once with grouped convolutions (Conv4 and element-wise steps only);
        None: as ``batch_tasks`` says. Both give what ``adapt`` and ``predict`` give task by task. ``chunk``
        defaults to as many tasks as fit the memory budget of ``batched.py``.
        """
        steps = self.inner_steps if steps is None else steps
        if self._batched(xs, batched):
            return batched_evaluate(self, xs, ys, xq, yq, steps, chunk)
        return evaluate_per_task(self, xs, ys, xq, yq, steps)

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
                    g_q, g_sum, loss, acc = first_order_task(self, xs[t], ys[t], xq[t], yq[t])
                    accumulate(g_query, g_q)
                    if self.modulated:
                        accumulate(g_m, first_order_meta_grads(self, g_q, g_sum))
                    losses.append(loss)
                    accs.append(acc)
                losses, accs = torch.stack(losses), torch.stack(accs)
            surrogate_loss = first_order_surrogate(self, g_query, g_m, tasks)
            return surrogate_loss, losses.mean(), accs.mean()
        surrogate, losses, accs = [], [], []
        for t in range(tasks):
            s, loss, acc = second_order_task(self, xs[t], ys[t], xq[t], yq[t])
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
        """Whether to run the tasks together: ``batched``, else ``batch_tasks``, else where it pays and is possible."""
        auto = batched is None and self.batch_tasks is None
        if batched is None:
            batched = self.batch_tasks
        if batched is None:
            batched = self._fast() is not None and self.elementwise and pays(self, xs)
        if batched and (self._fast() is None or not self.elementwise):
            if auto:
                return False
            raise ValueError(
                "running tasks together needs an element-wise inner step, a Conv4 backbone and the fast forward "
                "(fast_forward=True; None leaves it off in float64)"
            )
        return bool(batched)

    def _forward(self, params: Params, x: Tensor, fused: bool | None) -> Tensor:
        """Logits of the whole backbone with ``params`` (all of them) on x."""
        fn = self._fast()
        return fn(params, x, fused) if fn is not None else functional_call(self.backbone, params, (x,))

    def _scales(self, detach: bool) -> dict[str, Step]:
        """How each adapted parameter's gradient becomes its step (``update.Step``): s(m) precomputed for
        element-wise algorithms, the map g -> P_m(g) otherwise."""
        if not self.modulated:
            return dict.fromkeys(self.adapted)
        meta = {n: (m.detach() if detach else m) for n, m in self.meta_parameters().items()}
        if not self.elementwise:
            return {n: partial(self.precondition, n, meta=meta) for n in self.adapted}
        return {n: self.scale(m) for n, m in meta.items()}
