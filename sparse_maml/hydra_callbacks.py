"""Hydra callbacks of train.py and evaluate.py (conf/hydra/default.yaml)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .run_lock import hold
from .user_errors import bad_input_as_message


class RunFolderLock(Callback):
    """Hydra callback: takes the run folder's lock before Hydra writes anything there (``.hydra/``, the log), so
    that a second ``python train.py`` on a folder in use stops with one message and changes nothing. Sweeps lock
    each job's folder in ``train`` itself."""

    def __init__(self) -> None:
        self._held = ExitStack()

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            folder = config.hydra.run.dir
        except Exception:  # a run.dir that needs Hydra's runtime: train() takes the lock instead
            return
        with bad_input_as_message():
            self._held.enter_context(hold(folder))

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._held.close()
