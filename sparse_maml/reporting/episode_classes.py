"""The classes of each fixed test episode of runs whose ``episodes.json`` predates recording them:
``python -m sparse_maml.reporting.episode_classes RUN_OR_MULTIRUN_DIR ... --out FILE``.

Why recovered, and why into a separate file. The fixed test episodes are a pure function of the test split and the
sampler's ``eval_seed``, ``n_way``, ``k_shot``, ``k_query`` (``EpisodeSampler.fixed_episodes``), so rebuilding each
run's test datamodule from its saved config redraws them, classes included. The redraw is checked, not trusted:
every redrawn episode's key (a hash of the split's digest and the episode's image indices, ``episodes.py``) must
equal the key the run recorded, so a changed sampler or other data fails loudly instead of pairing accuracies with
the wrong characters. The result is one map, episode key -> class ids, written beside the evidence rather than into
each committed ``episodes.json``: the committed per-episode results stay byte for byte what the runs wrote, one map
serves every run tested on the same episodes (the key names the episode across runs), and
``python -m sparse_maml.compare --classes FILE`` reads it. Runs tested since record ``classes`` in ``episodes.json``
and need no map.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..episodes import describe, episode_classes, read_episodes
from ..run import build_datamodule
from .runs import find_runs


def _data_config(run: Path, root: str | None) -> Any:
    """The run's resolved data config (train.py's ``.hydra/config.yaml`` or evaluate.py's ``results.json``)."""
    results = json.loads((run / "results.json").read_text())
    if "config" in results:
        cfg = OmegaConf.create(results["config"])
    else:
        path = run / ".hydra" / "config.yaml"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: the run's data config is needed to redraw its episodes")
        cfg = OmegaConf.load(path)
    data = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    if root is not None:
        data.root = root
    return data


def recover(run: Path, root: str | None = None) -> tuple[dict[str, list[int]], str, list[str]]:
    """({episode key: class ids}, store, the store's class names) of ``run``'s test episodes, redrawn from its data
    config (``root`` replaces ``data.root``); ValueError naming the run when a redrawn key differs from the
    recorded one."""
    recorded = read_episodes(run)
    data = _data_config(run, root)
    data.num_test_tasks = recorded.identity["num_tasks"]
    dm = build_datamodule(data)
    identity, keys = describe(dm)
    if identity != recorded.identity or keys != recorded.key:
        differs = [k for k in identity if identity[k] != recorded.identity.get(k)]
        raise ValueError(
            f"{run}: the redrawn test episodes are not the recorded ones (identity differs in {differs or 'nothing'}; "
            f"{sum(a != b for a, b in zip(keys, recorded.key))} of {len(keys)} keys differ): pass the data it was "
            "tested on with --data-root, or test its checkpoint again with evaluate.py"
        )
    store = dm.sampler("test").store
    return dict(zip(keys, episode_classes(dm))), identity["store"], list(store.class_names)


def main(argv: list[str] | None = None) -> Path:
    prog = "python -m sparse_maml.reporting.episode_classes"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or multirun folders")
    parser.add_argument("--out", type=Path, required=True, help="the episode_classes.json to write")
    parser.add_argument("--data-root", help="replaces each run's data.root (default: the run's own, from here)")
    args = parser.parse_args(argv)
    classes: dict[str, list[int]] = {}
    names: dict[str, list[str]] = {}
    done: set[tuple[str, ...]] = set()
    for run in find_runs(args.runs):
        recorded = read_episodes(run.path)
        if recorded.classes is not None or tuple(recorded.key) in done:
            continue  # recorded already, or the same episodes as a run already redrawn
        found, store, class_names = recover(run.path, args.data_root)
        classes.update(found)
        names[store] = class_names
        done.add(tuple(recorded.key))
        print(f"{run.path}: {len(found)} episodes of {store}, keys checked")
    about = (
        "episode key -> the episode's class ids (label order) in its store's class_names; written by "
        "python -m sparse_maml.reporting.episode_classes, each key checked against the run's"
    )
    # One episode a line: small diffs when runs are added.
    lines = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in classes.items()]
    text = (
        f'{{"about": {json.dumps(about)},\n"class_names": {json.dumps(names)},\n"classes": {{\n'
        + ",\n".join(lines)
        + "\n}}\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}: {len(classes)} episodes")
    return args.out


if __name__ == "__main__":
    main()
