"""One seed fixes the initialisation, the mask, the training episodes and the fixed evaluation episodes."""

import json

import hydra
import pytorch_lightning as pl
import torch

from sparse_maml.run import build_module, train

from .app_helpers import TINY, compose_config


def final_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def test_same_seed_same_results_different_seed_different_episodes(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        results = train(compose_config([*TINY, "logger=none", f"seed={seed}"], output_dir=tmp_path / name))
        runs[name] = (results, final_state(tmp_path / name), json.loads((tmp_path / name / "history.json").read_text()))
    (ra, ca, ha), (rb, cb, hb), (_, cc, _) = runs["a"], runs["b"], runs["c"]
    assert torch.are_deterministic_algorithms_enabled()  # trainer.deterministic=warn by default
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    assert all(torch.equal(ca["state_dict"][k], cb["state_dict"][k]) for k in ca["state_dict"])
    for oa, ob in zip(ca["optimizer_states"], cb["optimizer_states"]):
        assert all(
            torch.equal(x, y) for p in oa["state"] for x, y in zip(oa["state"][p].values(), ob["state"][p].values())
        )
    assert ha == hb
    paths = ("run_dir", "checkpoint")
    assert {k: v for k, v in ra.items() if k not in paths} == {k: v for k, v in rb.items() if k not in paths}
    assert not torch.equal(ca["state_dict"]["algo.backbone.head.weight"], cc["state_dict"]["algo.backbone.head.weight"])


def test_seed_fixes_initialisation_mask_and_training_episodes():
    def build(seed):
        cfg = compose_config([*TINY, f"seed={seed}"])
        pl.seed_everything(seed)
        dm = hydra.utils.instantiate(cfg.data)
        module = build_module(cfg, dm.image_shape, *dm.normalization)
        dm.setup("fit")
        dm.setup("test")
        batches = [next(iter(loader())) for loader in (dm.train_dataloader, dm.val_dataloader, dm.test_dataloader)]
        return module.state_dict(), batches

    (s0, b0), (s0_again, b0_again), (s1, b1) = build(0), build(0), build(1)
    assert all(torch.equal(s0[k], s0_again[k]) for k in s0)
    masks = [k for k in s0 if k.startswith("algo.modulation.")]
    assert masks and all(not torch.equal(s0[k], s1[k]) for k in masks)  # the mask initialisation
    assert not torch.equal(s0["algo.backbone.head.weight"], s1["algo.backbone.head.weight"])
    for stage in range(3):  # train, val and test episodes
        assert all(torch.equal(x, y) for x, y in zip(b0[stage], b0_again[stage]))
    assert not torch.equal(b0[0][0], b1[0][0])  # training episodes follow the seed
    for stage in (1, 2):  # validation and test episodes follow data.eval_seed: the same for every seed
        assert all(torch.equal(x, y) for x, y in zip(b0[stage], b1[stage]))
