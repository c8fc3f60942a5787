"""What the engine modules need of a learner, as a protocol: they are typed against it rather than against
``InnerLoopLearner``, which imports them, so no import (not even a TYPE_CHECKING one) runs back to ``base.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from torch import Tensor, nn

from .update import Params, Step

if TYPE_CHECKING:
    from ...models.fused.functional import Conv4Functional


class Adaptable(Protocol):
    """The part of ``InnerLoopLearner`` (``base.py``) that ``per_task``, ``batched``, ``graphs`` and
    ``evaluation`` read."""

    backbone: nn.Module
    adapted: list[str]
    head_only: bool
    inner_steps: int
    modulated: bool
    cuda_graphs: bool
    _functional: Conv4Functional | None

    @property
    def step_lr(self) -> float: ...

    def adapt(self, xs: Tensor, ys: Tensor, steps: int | None = None) -> Params: ...

    def predict(self, params: Params, x: Tensor) -> Tensor: ...

    def _fast(self) -> Conv4Functional | None: ...

    def _forward(self, params: Params, x: Tensor, fused: bool | None) -> Tensor: ...

    def _scales(self, detach: bool) -> dict[str, Step]: ...


class Modulated(Adaptable, Protocol):
    """What the first-order meta-gradients (``first_order.py``) read besides: the learned tensors m and P_m."""

    elementwise: bool

    def meta_parameters(self) -> dict[str, nn.Parameter]: ...

    def scale(self, m: Tensor) -> Tensor: ...

    def precondition(self, name: str, g: Tensor, meta: Params) -> Tensor: ...
