"""The class splits of the benchmarks whose few-shot split is a list of classes, shipped as package data in
`assets/<dataset>/{train,val,test}.json` (sources and licence: assets/README.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import DatasetError

ASSETS = Path(__file__).parent / "assets"


def read_class_list(dataset: str, split: str, split_dir: str | os.PathLike | None = None) -> list[Any]:
    """The JSON list `<split_dir>/<split>.json` (default: the shipped `assets/<dataset>/`).

    Raises DatasetError naming the file when it is missing, unreadable, empty or lists a class twice.
    """
    folder = Path(split_dir).expanduser() if split_dir is not None else ASSETS / dataset
    path = folder / f"{split}.json"
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise DatasetError(
            f"no class list for split {split!r} of {dataset}: {path} does not exist (lists there: {have or 'none'}); "
            f"use a split that has one, or pass split_dir=<folder holding {split}.json>"
        )
    return read_json_list(path)


def read_json_list(path: Path) -> list[Any]:
    """The non-empty JSON list of classes in ``path``, each listed once; DatasetError naming the file otherwise."""
    try:
        classes = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the class list {path}: {e}") from e
    if not isinstance(classes, list) or not classes:
        raise DatasetError(f"{path} must hold a non-empty JSON list of classes")
    keys = [json.dumps(c) for c in classes]
    if len(set(keys)) != len(keys):
        raise DatasetError(f"{path} lists a class more than once: {sorted({k for k in keys if keys.count(k) > 1})[:3]}")
    return classes
