"""Lightning callbacks: the resume checkpoint, sparsity and adaptation logging, the end-of-training figure, the
masks at the start and the tested step (masks.json), when validation starts and CPU threads."""

from .adaptation import AdaptationLogger
from .curves import TrainingCurves
from .last_checkpoint import LastCheckpoint
from .masks import MaskSnapshot
from .sparsity import SparsityLogger, sparsity_metrics
from .threads import CPUThreads
from .validation_start import ValidationStart

__all__ = [
    "AdaptationLogger",
    "CPUThreads",
    "LastCheckpoint",
    "MaskSnapshot",
    "SparsityLogger",
    "TrainingCurves",
    "ValidationStart",
    "sparsity_metrics",
]
