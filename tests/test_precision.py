"""trainer.precision=bf16-mixed with the manual optimisation: Lightning autocasts the steps, so the inner loop runs in
bf16, while theta, m, their gradients and Adam's states stay float32."""

import torch
from omegaconf import OmegaConf

from sparse_maml.algorithms.engine.base import InnerLoopLearner
from sparse_maml.run import train

from .app_helpers import TINY, compose_config


def test_bf16_mixed_training_keeps_float32_state(tmp_path, monkeypatch):
    seen = []
    meta_loss = InnerLoopLearner.meta_loss

    def spy(self, *batch):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return meta_loss(self, *batch)

    monkeypatch.setattr(InnerLoopLearner, "meta_loss", spy)
    cfg = compose_config([*TINY, "algo=sparse_maml", "logger=csv"], output_dir=tmp_path)
    OmegaConf.update(cfg, "trainer.precision", "bf16-mixed", force_add=True)
    results = train(cfg)
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)
    assert 0 <= results["accuracy"] <= 1
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert all(t.dtype == torch.float32 for k, t in ckpt["state_dict"].items() if t.is_floating_point()), "weights"
    states = [s for opt in ckpt["optimizer_states"] for s in opt["state"].values()]
    assert states and all(s[k].dtype == torch.float32 for s in states for k in ("exp_avg", "exp_avg_sq"))
