"""Lightning callbacks: the resume checkpoint, sparsity logging, the end-of-training figure and when validation
starts."""

from .curves import TrainingCurves
from .last_checkpoint import LastCheckpoint
from .sparsity import SparsityLogger, sparsity_metrics
from .validation_start import ValidationStart

__all__ = ["LastCheckpoint", "SparsityLogger", "TrainingCurves", "ValidationStart", "sparsity_metrics"]
