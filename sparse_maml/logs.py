"""The app's console: ``logging`` loggers that speak on rank zero only, so that a DDP job says each thing once.

Hydra configures the handlers (console and ``<job>.log`` in the run folder); the final summary a user reads is
printed by ``results.py`` instead, as the one block of output that belongs to stdout.
"""

from __future__ import annotations

import logging

from pytorch_lightning.utilities.rank_zero import rank_zero_only


class RankZeroFilter(logging.Filter):
    """Passes records on global rank zero (Lightning's ``rank_zero_only.rank``, set from the launcher's
    environment and by the Trainer) and drops them elsewhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(rank_zero_only, "rank", 0) == 0


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the rank-zero filter attached once."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RankZeroFilter) for f in logger.filters):
        logger.addFilter(RankZeroFilter())
    return logger
