"""``python -m sparse_maml.figures RUN_OR_MULTIRUN_DIR ... --out DIR``: the reporting command (``reporting/cli.py``)."""

from .reporting.cli import main

if __name__ == "__main__":
    main()
