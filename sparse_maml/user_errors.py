"""What train.py and evaluate.py share: bad input reported as its message alone, not as a trace."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from .atomic import WriteError
from .checkpoint_io import CheckpointError
from .checks import ConfigError
from .data import DatasetError
from .run_lock import RunLockedError

#: Errors that mean "the input (or the machine) was wrong", not "the code is wrong": their message says what to fix.
BAD_INPUT = (ConfigError, DatasetError, CheckpointError, RunLockedError, WriteError)


@contextmanager
def bad_input_as_message() -> Iterator[None]:
    """Print one of ``BAD_INPUT`` as its message on stderr and exit with status 1; with ``HYDRA_FULL_ERROR=1`` it
    is raised, with its trace, like any other error."""
    try:
        yield
    except BAD_INPUT as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"Error: {error}\nSet the environment variable HYDRA_FULL_ERROR=1 for the trace.", file=sys.stderr)
        sys.exit(1)
