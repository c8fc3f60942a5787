"""Lightning callbacks: the resume checkpoint, sparsity logging and the end-of-training figure."""

from .checkpoint import LastCheckpoint
from .figures import TrainingCurves
from .sparsity import SparsityLogger, sparsity_metrics

__all__ = ["LastCheckpoint", "SparsityLogger", "TrainingCurves", "sparsity_metrics"]
