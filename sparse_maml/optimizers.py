"""Outer-loop optimisers from config: ``{_target_: <torch.optim.Optimizer class>, _partial_: true, **options}``
(conf/optimizer/), completed with the parameters and the learning rate (``algo.lr``, ``algo.mask_lr``) when training
starts.

The spec travels in a checkpoint's hyperparameters as plain data, so that ``MetaLearner.from_checkpoint`` builds the
module without Hydra. It is instantiated only in ``configure_optimizers`` (training), never when a checkpoint is read,
and only an optimiser class with plain options is accepted. "adam" and "sgd", the names that checkpoints written
before specs hold, stand for conf/optimizer/adam.yaml and sgd.yaml.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import hydra
import torch

NAMED: dict[str, dict[str, Any]] = {
    "adam": {"_target_": "torch.optim.Adam", "_partial_": True},
    "sgd": {"_target_": "torch.optim.SGD", "_partial_": True, "momentum": 0.9, "nesterov": True},
}


def optimizer_spec(spec: str | Mapping[str, Any], key: str) -> dict[str, Any]:
    """``spec`` as a plain dict, its shape checked; ``key`` names it in errors (e.g. "algo.outer_optimizer")."""
    if isinstance(spec, str):
        if spec not in NAMED:
            raise ValueError(
                f"{key}={spec!r}: choose one of {', '.join(NAMED)} or give {{_target_: <torch.optim class>, "
                "_partial_: true}} (conf/optimizer)"
            )
        return dict(NAMED[spec])
    spec = dict(spec)
    if not isinstance(spec.get("_target_"), str) or spec.get("_partial_") is not True:
        raise ValueError(
            f"{key} needs _target_: <torch.optim class> and _partial_: true (it is completed with the parameters and "
            f"the learning rate), got {spec}"
        )
    if "lr" in spec:
        raise ValueError(f"{key}.lr: set the learning rate as algo.lr (theta) or algo.mask_lr (m)")
    nested = sorted(k for k, v in spec.items() if isinstance(v, Mapping))
    if nested:
        raise ValueError(f"{key}: options are plain values, not configs: {', '.join(nested)}")
    return spec


def build_optimizer(spec: Mapping[str, Any], params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimiser ``spec`` (checked by ``optimizer_spec``) describes, over ``params`` at learning rate ``lr``."""
    factory = hydra.utils.instantiate(dict(spec))
    cls = factory.func if isinstance(factory, functools.partial) else None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"{spec['_target_']} is not a torch.optim.Optimizer class")
    return factory(params, lr=lr)
