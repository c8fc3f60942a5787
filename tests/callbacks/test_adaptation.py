"""adaptation/<layer>: 0 for the layers an algorithm does not adapt, positive for the others, logged at validation."""

import math

import pytest
import pytorch_lightning as pl
import torch

from sparse_maml.callbacks import AdaptationLogger, TrainingCurves
from sparse_maml.callbacks.adaptation import relative_change
from sparse_maml.run import build_datamodule, build_module

from ..app_helpers import TINY, compose_config

LAYERS = {"body.block1.conv", "body.block1.norm", "body.block4.conv", "head"}


def test_relative_change_is_per_layer_over_all_its_tensors():
    theta = {"a.weight": torch.full((2, 2), 1.0), "a.bias": torch.zeros(4), "b.weight": torch.full((3,), 2.0)}
    change_sq = {"a.weight": torch.tensor([4.0, 0.0]), "a.bias": torch.tensor([5.0, 0.0]), "b.weight": torch.zeros(2)}
    out = relative_change(change_sq, theta)
    assert set(out) == {"a", "b"}
    assert out["a"].tolist() == pytest.approx([math.sqrt(9.0) / math.sqrt(4.0), 0.0])  # sqrt(4 + 5) / ||1_{2x2}||
    assert out["b"].tolist() == [0.0, 0.0]


def validate(tmp_path, algo, freeze=None):
    """adaptation/<layer> of one validation of a fresh tiny learner; ``freeze``: a layer whose mask is all negative."""
    cfg = compose_config([*TINY, f"algo={algo}", "logger=none"], output_dir=tmp_path)
    dm = build_datamodule(cfg.data)
    module = build_module(cfg, dm.image_shape, *dm.normalization)
    if freeze:
        with torch.no_grad():
            for name, m in module.algo.meta_parameters().items():
                if name.startswith(freeze + "."):
                    m.fill_(-1.0)
    curves = TrainingCurves(dirpath=str(tmp_path))
    trainer = pl.Trainer(
        callbacks=[AdaptationLogger(), curves], logger=False, enable_progress_bar=False, inference_mode=False
    )
    trainer.validate(module, datamodule=dm, verbose=False)
    metrics = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("adaptation/")}
    assert curves.history["adaptation"][-1]["layers"] == pytest.approx(metrics)  # recorded for the figure
    return metrics


@pytest.mark.parametrize(
    "algo, still",
    [
        ("fomaml", lambda layer: False),
        ("anil", lambda layer: layer.startswith("body.")),  # only the head adapts
        ("boil", lambda layer: layer == "head"),  # everything but the head
    ],
)
def test_layers_that_do_not_adapt_read_zero(tmp_path, algo, still):
    metrics = validate(tmp_path, algo)
    assert LAYERS <= set(metrics)
    assert all(v == 0.0 for layer, v in metrics.items() if still(layer))
    assert all(v > 0.0 for layer, v in metrics.items() if not still(layer))


def test_masked_entries_do_not_adapt(tmp_path):
    metrics = validate(tmp_path, "sparse_maml", freeze="body.block1.conv")
    assert metrics["body.block1.conv"] == 0.0
    assert all(v > 0 for layer, v in metrics.items() if layer != "body.block1.conv")
