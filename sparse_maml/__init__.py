"""sparse-maml: meta-learning where to learn.

Sparse-MAML (Zhao et al., "Learning where to learn") and the gradient-based meta-learners it is
measured against, on one inner-loop engine.
"""

__version__ = "0.1.0"
