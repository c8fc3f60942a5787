"""Testing a trained model on other datasets, as the paper's code tests every model on tieredImageNet, CUB and
Cars: each dataset's test split read at the model's input shape, with the run's own episode settings."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"
#: What a cross-domain test takes from the training run's data config: the same kind and number of test episodes.
EPISODE_KEYS = ("n_way", "k_shot", "k_query", "num_test_tasks", "eval_batch_size", "seed", "eval_seed")


def composed_data(name: str, overrides: list[str]) -> DictConfig:
    """The data config ``data=<name>`` composes to (inside train.py: with its own config search path)."""
    args = [f"data={name}", *overrides]
    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name="config", overrides=args)
    else:
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=args)
    return OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))


def at_input_shape(data_cfg: DictConfig, channels: int, image_size: int) -> DictConfig:
    """``data_cfg`` (changed in place) reading its images at a model's input shape: resized, and made gray or RGB,
    as needed."""
    with open_dict(data_cfg):
        data_cfg.image_size, data_cfg.channels = image_size, channels
    return data_cfg


def cross_domain_data(name: str, cfg: DictConfig, channels: int, image_size: int) -> DictConfig:
    """The data config of dataset ``name`` for testing the model of run ``cfg`` (input ``channels`` x
    ``image_size`` x ``image_size``): its test split, the run's episodes, under the run's ``paths.data_dir``."""
    data = composed_data(name, [f'paths.data_dir="{cfg.paths.data_dir}"'])  # quoted: a path may hold commas
    for key in EPISODE_KEYS:
        data[key] = cfg.data[key]
    return at_input_shape(data, channels, image_size)
