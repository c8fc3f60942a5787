"""MAML (Finn et al., 2017) and its first-order approximation: every parameter adapts, s(m) = 1."""

from .engine.base import InnerLoopLearner


class MAML(InnerLoopLearner):
    """phi_{k+1} = phi_k - alpha * g_k; meta-gradient by backpropagation through the unrolled loop."""

    name = "maml"
    default_first_order = False
    fixed_order = True


class FOMAML(InnerLoopLearner):
    """First-order MAML: dL/dtheta ~= grad L_query(phi_K)."""

    name = "fomaml"
    default_first_order = True
    fixed_order = True
