"""Reporting: finished runs as figures and tables.

- ``runs``: finding run folders, the configuration keys that differ between them, grouping them.
- ``plots``: one run's training curves (drawn by the ``TrainingCurves`` callback) and runs against what was swept.
- ``tables``: markdown tables of accuracy and sparsity.
- ``cli``: the command, ``python -m sparse_maml.figures RUN_OR_MULTIRUN_DIR ... --out DIR``.
- ``compare``: groups of runs compared episode by episode, ``python -m sparse_maml.compare RUN_OR_MULTIRUN_DIR ...``;
  ``stats``: the t-tests it uses.
"""

from .runs import Run, find_runs, varying_keys

__all__ = ["Run", "find_runs", "varying_keys"]
