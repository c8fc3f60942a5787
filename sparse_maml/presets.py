"""Experiment presets (``conf/experiment/<folder>/<name>.yaml``) named on a command line, checked before Hydra runs.

Presets live in folders (``experiment=official/sparse_maml_conv4_5shot``). Hydra's own error for a name that is not
there lists no options, since ``conf/experiment`` itself holds only folders; this one lists the folders and, for a
name from before the folders (``experiment=official_sparse_maml_conv4_5shot``), the name it has now.
"""

from __future__ import annotations

from pathlib import Path

from .checks import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"
_KEYS = ("experiment=", "+experiment=", "++experiment=")


def presets(conf: Path = CONF) -> list[str]:
    """Every selectable preset, as ``experiment=`` takes it (``_``-files are the bases presets inherit)."""
    root = conf / "experiment"
    return sorted(
        p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml") if not p.name.startswith("_")
    )


def check_experiments(args: list[str], conf: Path = CONF) -> None:
    """Raise ``ConfigError`` for an ``experiment=`` override (a sweep's ``a,b`` included) naming no preset."""
    known = set(presets(conf))
    for arg in args:
        key = next((k for k in _KEYS if arg.startswith(k)), None)
        if key is None or "(" in arg:  # sweep functions such as choice(...) are left to Hydra
            continue
        for name in arg[len(key) :].split(","):
            if name in known or name in ("", "null"):
                continue
            folders = sorted({p.split("/")[0] + "/" for p in known if "/" in p})
            renamed = name.replace("_", "/", 1)
            hint = f"; did you mean experiment={renamed}?" if renamed in known else ""
            raise ConfigError(
                f"experiment={name}: no such preset. Presets are in folders of conf/experiment "
                f"({', '.join(folders)}), named as experiment=FOLDER/NAME{hint}"
            )
