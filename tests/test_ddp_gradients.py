"""DDP on 2 gloo ranks computes the meta-gradient one process computes, up to the order of a sum.

Each rank's meta-gradient is the mean over its half of the meta-batch; DDP averages the two. That is the same number
as the mean over all four tasks except for float rounding: the test checks both halves of that sentence, for theta
and for the mask logits m, on the first meta-iteration (before any difference can compound).
"""

import torch

from sparse_maml.run import build_datamodule, build_module, train

from .app_helpers import TINY, compose_config, run_script

CAPTURE = ["+callbacks.capture._target_=tests.step_capture.StepOneCapture"]
OVERRIDES = [*TINY, "logger=none", "data.meta_batch_size=4", "trainer.max_steps=1", "test_after_fit=false"]


def _run_ddp(tmp_path):
    capture = [*CAPTURE, f"+callbacks.capture.folder={tmp_path / 'ddp_capture'}"]
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    done = run_script("train.py", *OVERRIDES, *capture, *ddp, f"hydra.run.dir={tmp_path / 'ddp'}")
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(tmp_path / "ddp_capture" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def _meta_gradients(module, batch):
    module.zero_grad(set_to_none=True)
    surrogate, _, _ = module.algo.meta_loss(*batch)
    surrogate.backward()
    return {n: p.grad.detach().clone() for n, p in module.named_parameters()}


def differences(a: dict, b: dict) -> dict[str, tuple[float, float]]:
    """Per tensor: (max |a - b|, max |a - b| / max |b|)."""
    out = {}
    for name in b:
        diff = (a[name] - b[name]).abs().max().item()
        out[name] = (diff, diff / max(b[name].abs().max().item(), 1e-30))
    return out


def test_step_one_meta_gradients_on_two_ranks_equal_one_process_up_to_rounding(tmp_path):
    cfg = compose_config([*OVERRIDES, *CAPTURE, f"+callbacks.capture.folder={tmp_path / 'one_capture'}"], tmp_path)
    train(cfg)
    one = torch.load(tmp_path / "one_capture" / "rank0.pt", weights_only=True)
    ranks = _run_ddp(tmp_path)

    # Same start, and each rank got its contiguous half of the same meta-batch.
    for rank in ranks:
        assert all(torch.equal(rank["params"][n], p) for n, p in one["params"].items())
    for r, rank in enumerate(ranks):
        for full, share in zip(one["batch"], rank["batch"], strict=True):
            assert torch.equal(full[2 * r : 2 * r + 2], share)
    # Both ranks step with the same (all-reduced) meta-gradient.
    assert all(torch.equal(ranks[0]["grads"][n], ranks[1]["grads"][n]) for n in one["grads"])

    # DDP's meta-gradient is exactly the average of the two halves' meta-gradients, computed here in one process.
    dm = build_datamodule(cfg.data)
    dm.prepare_data()
    module = build_module(cfg, dm.image_shape, *dm.normalization)
    module.load_state_dict({**module.state_dict(), **one["params"]})
    module.train()
    halves = [_meta_gradients(module, rank["batch"]) for rank in ranks]
    for name in one["grads"]:
        assert torch.equal(ranks[0]["grads"][name], (halves[0][name] + halves[1][name]) / 2), name

    # ... and the full meta-batch's meta-gradient up to rounding: per tensor relative to its own size, except where
    # the true gradient is zero (a conv bias before BatchNorm cancels): there both are rounding noise, compared with
    # the largest meta-gradient of the network.
    diffs = differences(ranks[0]["grads"], one["grads"])
    scale = max(g.abs().max().item() for g in one["grads"].values())
    for name, (diff, rel) in sorted(diffs.items()):
        print(f"{name:40s} max|diff| {diff:.2e}  relative {rel:.2e}  max|g| {one['grads'][name].abs().max():.2e}")
    noise = {n for n in diffs if n.replace("__", ".").endswith("conv.bias")}
    assert noise and all(one["grads"][n].abs().max() < 1e-6 * scale for n in noise), noise
    assert all(diff < 1e-6 * scale for n, (diff, _) in diffs.items() if n in noise)
    worst = max(rel for n, (_, rel) in diffs.items() if n not in noise)
    assert 0 < worst < 1e-5, worst  # not identical (another summation order), yet float rounding only
