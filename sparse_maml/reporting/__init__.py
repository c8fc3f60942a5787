"""Reporting: finished runs as figures and tables, in layers.

- loading: ``runs`` (run folders, the configuration keys that differ, groups for plots and tables) and ``groups``
  (runs grouped for a comparison, per seed and test episode); ``episode_classes`` (the classes of the test episodes
  of runs written before episodes.json recorded them).
- statistics: ``stats`` (scipy's t-tests and intervals; the hierarchical bootstrap) and ``contrasts`` (A − B and
  its changes, with those statistics).
- tables: ``markdown`` (the one table writer), ``tables`` (accuracy and sparsity), ``comparison``
  (``comparison.md``).
- plots: ``plots``.
- commands: ``cli`` (``python -m sparse_maml.figures``), ``compare`` (``python -m sparse_maml.compare``),
  ``mask_drift`` and ``episode_classes`` (``python -m sparse_maml.reporting.<name>``).
"""

from .runs import Run, find_runs, varying_keys

__all__ = ["Run", "find_runs", "varying_keys"]
