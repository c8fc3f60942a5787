"""Lightning callbacks: the resume checkpoint, sparsity logging and the end-of-training figure."""

from .curves import TrainingCurves
from .last_checkpoint import LastCheckpoint
from .sparsity import SparsityLogger, sparsity_metrics

__all__ = ["LastCheckpoint", "SparsityLogger", "TrainingCurves", "sparsity_metrics"]
