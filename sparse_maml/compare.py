"""``python -m sparse_maml.compare RUN_OR_MULTIRUN_DIR ... --out DIR``: paired comparison of runs
(``reporting/compare.py``)."""

from .reporting.compare import main

if __name__ == "__main__":
    main()
