"""``skip_finished=true``: a job whose run folder already holds its final results returns them without training.

With ``ckpt_path=auto`` this makes a sweep restartable as a whole: ``python train.py -m ... ckpt_path=auto
skip_finished=true`` run again skips the finished jobs, resumes the started ones from their ``last.ckpt`` and starts
the others. A skipped job leaves its folder as it was: the resolver below tells Hydra to write no ``.hydra/`` there
(conf/config.yaml sets ``hydra.output_subdir`` with it), so the configuration a committed run was trained with stays.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

#: What train.py writes last (after testing): a folder holding both is a finished run.
FINAL_FILES = ("results.json", "episodes.json")


def finished_results(output_dir: str | Path) -> dict[str, Any] | None:
    """The results of the finished run in ``output_dir``, or None when it has not finished."""
    folder = Path(output_dir)
    if not all((folder / name).is_file() for name in FINAL_FILES):
        return None
    return json.loads((folder / "results.json").read_text())


def _config_subdir(skip_finished: Any, output_dir: str, subdir: str) -> str | None:
    if not isinstance(skip_finished, bool):
        raise ValueError(f"skip_finished={skip_finished!r}: set it to true or false")
    return None if skip_finished and finished_results(output_dir) is not None else subdir


# Hydra resolves hydra.output_subdir in each job (in the job's own process under a parallel launcher, which imports
# this module with train.py's task function) after setting hydra.runtime.output_dir.
OmegaConf.register_new_resolver("sparse_maml.config_subdir", _config_subdir, replace=True)
