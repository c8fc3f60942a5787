"""How each mask entry of one parameter moved in training: ``python -m sparse_maml.reporting.mask_drift RUN_DIR ...
--param head.bias``.

A weight is frozen where its mask logit is below zero (update sparsity is the fraction below zero), so an entry
that rises moves towards "update". With the run's tested checkpoint (``checkpoint`` in ``results.json``) the final
logits are the checkpoint's and the initial ones are rebuilt as train.py makes them, from the checkpoint's
hyperparameters and the run's seed (``seed_everything``, then the module); masks that get no gradient (a conv bias
before BatchNorm) end where they started, which checks the rebuild. Without the checkpoint (committed run folders
leave checkpoints out) both come from the run's ``masks.json`` (``callbacks/masks.py``), which keeps every entry
of the output bias's mask (``ENTRIES``) at the start and at the tested step.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch

from ..callbacks.masks import ENTRIES, FILENAME, read_masks
from ..checkpoint_io import load_checkpoint
from ..module import MetaLearner
from .markdown import table


@dataclass
class Drift:
    """One run's mask logits of one parameter before and after training, flattened: ``initial``, ``final`` [n]."""

    run: Path
    initial: torch.Tensor
    final: torch.Tensor

    @property
    def towards_update(self) -> int:
        """How many entries rose."""
        return int((self.final > self.initial).sum())

    def row(self) -> list[str]:
        moved = self.final - self.initial
        fmt = lambda t: " ".join(f"{x:+.2f}" for x in t.tolist())  # noqa: E731
        frozen = lambda t: f"{int((t < 0).sum())} of {t.numel()}"  # noqa: E731
        return [
            self.run.name,
            fmt(self.initial),
            fmt(self.final),
            f"{self.towards_update} of {moved.numel()}",
            f"{moved.mean():+.3f}",
            f"{frozen(self.initial)} → {frozen(self.final)}",
        ]


def tested_checkpoint(run: Path) -> Path:
    """The checkpoint ``run`` was tested with; FileNotFoundError naming it when it is not there."""
    checkpoint = Path(json.loads((run / "results.json").read_text())["checkpoint"])
    if not checkpoint.exists():
        raise FileNotFoundError(f"{run}: its tested checkpoint {checkpoint} is missing (mask_drift needs it)")
    return checkpoint


def drift_from_checkpoint(run: Path, param: str) -> Drift:
    """The mask logits of backbone parameter ``param`` (e.g. ``head.bias``) at initialisation, rebuilt, and in the
    tested checkpoint of ``run``."""
    checkpoint = load_checkpoint(tested_checkpoint(run))  # data only: a shared run folder runs no code
    hparams = dict(checkpoint["hyper_parameters"])
    pl.seed_everything(hparams["config"]["seed"], workers=True, verbose=False)
    module = MetaLearner(**hparams)  # what build_module makes after train.py's seed_everything
    masks = module.algo.meta_parameters()
    if param not in masks:
        raise KeyError(f"{run}: no mask for {param!r}; the masked parameters are {', '.join(masks)}")
    initial = masks[param].detach().clone().flatten()
    module.load_state_dict(checkpoint["state_dict"])
    return Drift(run, initial, module.algo.meta_parameters()[param].detach().flatten())


def drift_from_masks_json(run: Path, param: str) -> Drift:
    """The mask logits of ``param`` at the start and the tested step, from ``<run>/masks.json``."""
    body = read_masks(run)
    if param not in body["initial"]["entries"]:
        raise KeyError(
            f"{run / FILENAME} keeps the entries of {', '.join(ENTRIES)} only, not {param!r}: "
            "mask_drift needs the run's tested checkpoint for other parameters"
        )
    as_tensor = lambda at: torch.tensor(body[at]["entries"][param], dtype=torch.float32)  # noqa: E731
    return Drift(run, as_tensor("initial"), as_tensor("tested"))


def mask_drift(run: Path, param: str) -> Drift:
    """The drift of ``param``'s mask in ``run``: from its tested checkpoint when it is there, else from its
    ``masks.json``; FileNotFoundError naming both when neither is."""
    try:
        tested_checkpoint(run)
    except FileNotFoundError as missing:
        if (run / FILENAME).exists():
            return drift_from_masks_json(run, param)
        raise FileNotFoundError(f"{missing}, and {run / FILENAME} does not exist either: it needs one") from None
    return drift_from_checkpoint(run, param)


def has_mask(run: Path) -> bool:
    """Whether ``run`` trained a mask: its ``results.json`` reports a sparsity (empty for MAML, ANIL, ...)."""
    return bool(json.loads((run / "results.json").read_text()).get("sparsity"))


def main(argv: list[str] | None = None) -> str:
    prog = "python -m sparse_maml.reporting.mask_drift"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (checkpoints or masks.json)")
    parser.add_argument("--param", default="head.bias", help="the backbone parameter whose mask to read")
    args = parser.parse_args(argv)
    masked = [r for r in args.runs if has_mask(r)]  # a multirun folder's glob also finds MAML's and ANIL's runs
    if not masked:
        parser.error(f"none of these runs has a mask (sparse-MAML's have): {', '.join(map(str, args.runs))}")
    try:
        drifts = [mask_drift(r, args.param) for r in masked]
    except (KeyError, FileNotFoundError) as e:
        parser.error(e.args[0] if isinstance(e, KeyError) else str(e))
    head = ["run", "initial m", "final m", "rose (towards update)", "mean change", "frozen"]
    moved = torch.cat([d.final - d.initial for d in drifts])
    text = table(head, [d.row() for d in drifts]) + (
        f"\n\n{args.param}: {sum(d.towards_update for d in drifts)} of {moved.numel()} entries rose, "
        f"by {moved.mean():+.3f} on average (min {moved.min():+.3f}, max {moved.max():+.3f})"
    )
    left_out = [str(r) for r in args.runs if r not in masked]
    if left_out:
        text += "\n\nwithout a mask, left out: " + ", ".join(left_out)
    print(text)
    return text


if __name__ == "__main__":
    main()
