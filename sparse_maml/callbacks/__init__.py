"""Lightning callbacks: sparsity logging and the end-of-training figure."""

from .figures import TrainingCurves
from .sparsity import SparsityLogger, sparsity_metrics

__all__ = ["SparsityLogger", "TrainingCurves", "sparsity_metrics"]
