"""Meta-Curvature (Park and Oliva, 2019, "Meta-Curvature", NeurIPS, Section 3): a learned linear transformation
of each layer's gradient, decomposed along the gradient tensor's modes.

    phi_{k+1} = phi_k - alpha * M(g_k)

For a convolution weight g [C_out, C_in, k, k], viewed as [C_out, C_in, k*k], M applies one learned matrix along
each mode (mode-n products):

    M(g) = g x_1 M_out x_2 M_in x_3 M_f,   vec(M(g)) = (M_out (x) M_in (x) M_f) vec(g)   (row-major vec)

with M_out [C_out, C_out], M_in [C_in, C_in], M_f [k*k, k*k]; for a linear weight [out, in], M(g) = M_out g M_in^T;
for a vector (biases, BatchNorm), M(g) = m * g entry by entry. Matrices start at the identity and vectors at ones,
so meta-training starts from MAML. The paper's Table 1 quotes MC with one inner step and data augmentation.
"""

import torch
from torch import Tensor

from .engine.base import InnerLoopLearner
from .engine.update import Params


class MetaCurvature(InnerLoopLearner):
    """Learned tensors per adapted parameter: ``<name>:out``, ``<name>:in`` (and ``<name>:kernel`` for convolutions)
    for weights, ``<name>`` for vectors. Second order by default, as Park and Oliva."""

    name = "meta_curvature"
    default_first_order = False
    modulated = True
    elementwise = False

    def init_modulations(self, params: Params) -> dict[str, Tensor]:
        meta: dict[str, Tensor] = {}
        for n, p in params.items():
            if p.dim() == 1:
                meta[n] = torch.ones_like(p)
                continue
            eye = {"out": p.shape[0], "in": p.shape[1]}
            if p.dim() > 2:
                eye["kernel"] = p[0, 0].numel()
            for part, size in eye.items():
                meta[f"{n}:{part}"] = torch.eye(size, dtype=p.dtype, device=p.device)
        return meta

    def precondition(self, name: str, g: Tensor, meta: Params) -> Tensor:
        if g.dim() == 1:
            return meta[name] * g
        m_out, m_in = meta[f"{name}:out"], meta[f"{name}:in"]
        if g.dim() == 2:
            return m_out @ g @ m_in.T
        c_out, c_in = g.shape[:2]
        h = (m_out @ g.reshape(c_out, -1)).reshape(c_out, c_in, -1)  # mode 1
        h = m_in @ h  # mode 2: [C_in, C_in] @ [C_out, C_in, k*k], batched over C_out
        h = h @ meta[f"{name}:kernel"].T  # mode 3
        return h.reshape(g.shape)
