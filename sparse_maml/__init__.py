"""sparse-maml: meta-learning where to learn.

Sparse-MAML (Zhao et al., "Learning where to learn") and the gradient-based meta-learners it is
measured against, on one inner-loop engine.

    from sparse_maml import load_learner
    learner = load_learner("outputs/train/.../checkpoints/last.ckpt")
    fast = learner.adapt(xs, ys)          # raw images at the training resolution
    logits = learner.predict(fast, xq)
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Learner", "LearnerInputError", "load_learner"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package should not import Lightning.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sparse_maml' has no attribute {name!r}")
