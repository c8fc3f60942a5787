"""The package as it was at an earlier commit, importable beside the working tree's, so that a benchmark can time
both in one process on the same inputs.

    ref = import_at("ccaf18f")          # the package ``sparse_maml_ccaf18f``
    ref.algorithms.build_algorithm(...)

The commit's ``sparse_maml/`` is extracted with ``git archive`` into a temporary folder under another name; its
modules import one another relatively, so the copy runs its own code throughout.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
_DIR = Path(tempfile.gettempdir()) / "sparse_maml_reference"


def import_at(commit: str) -> ModuleType:
    """``sparse_maml`` at ``commit`` (any name git accepts) as a package of its own, with its algorithms, models and
    module imported."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short=7", f"{commit}^{{commit}}"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    name = f"sparse_maml_{sha}"
    target = _DIR / sha / name
    if not target.exists():
        archive = subprocess.run(["git", "archive", sha, "sparse_maml"], cwd=REPO, check=True, capture_output=True)
        tmp = Path(tempfile.mkdtemp(dir=_DIR.parent if _DIR.exists() else None))
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            # the "data" filter (no links out of the folder, no device files) where this Python has it
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        target.parent.mkdir(parents=True, exist_ok=True)
        (tmp / "sparse_maml").rename(target)
    if str(target.parent) not in sys.path:
        sys.path.insert(0, str(target.parent))
    package = importlib.import_module(name)
    for sub in ("algorithms", "models", "module"):
        importlib.import_module(f"{name}.{sub}")
    return package
