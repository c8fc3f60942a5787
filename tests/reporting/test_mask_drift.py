"""mask_drift on a short training run: the rebuilt initial masks are train.py's."""

import json

import pytest
import torch

from sparse_maml.reporting.mask_drift import main, mask_drift
from sparse_maml.run import train

from ..app_helpers import TINY, compose_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("drift") / "run"
    train(compose_config([*TINY, "algo=sparse_maml", "algo.mask_lr=0.05", "logger=none"], output_dir=path))
    return path


def test_rebuilt_initial_masks_are_the_trained_ones_where_nothing_moves_them(run):
    # A conv bias before BatchNorm gets no gradient: its mask must come back exactly as it started.
    still = mask_drift(run, "body.block1.conv.bias")
    assert still.initial.numel() == still.final.numel() > 0
    assert torch.equal(still.initial, still.final)
    moved = mask_drift(run, "head.weight")
    assert not torch.equal(moved.initial, moved.final)
    assert 0 < moved.towards_update < moved.initial.numel()
    text = main([str(run), "--param", "head.weight"])
    assert f"{moved.towards_update} of {moved.initial.numel()} entries rose" in text


def test_clear_errors(run, tmp_path):
    with pytest.raises(KeyError, match="no mask for 'head.gain'"):
        mask_drift(run, "head.gain")
    results = json.loads((run / "results.json").read_text())
    (tmp_path / "results.json").write_text(json.dumps({**results, "checkpoint": str(tmp_path / "gone.ckpt")}))
    with pytest.raises(FileNotFoundError, match="gone.ckpt is missing"):
        mask_drift(tmp_path, "head.bias")


def test_masks_json_gives_the_checkpoints_entries_without_it(run, tmp_path):
    masks = run / "masks.json"
    assert 0 < masks.stat().st_size < 20_000  # kilobytes, committable
    body = json.loads(masks.read_text())
    assert body["initial"]["step"] == 0 and body["tested"]["step"] > 0
    conv = body["tested"]["layers"]["body.block1.conv"]
    assert len(conv["quantiles"]) == len(body["quantiles"]) and conv["quantiles"] == sorted(conv["quantiles"])
    with_checkpoint = mask_drift(run, "head.bias")
    copy = tmp_path / "run"  # what a committed run folder holds: no checkpoints
    copy.mkdir()
    (copy / "masks.json").write_text(masks.read_text())
    results = json.loads((run / "results.json").read_text())
    (copy / "results.json").write_text(json.dumps({**results, "checkpoint": str(tmp_path / "gone.ckpt")}))
    without = mask_drift(copy, "head.bias")
    assert torch.equal(without.initial, with_checkpoint.initial)
    assert torch.equal(without.final, with_checkpoint.final)
    assert main([str(copy)]) == main([str(run)])
    with pytest.raises(KeyError, match="needs the run's tested checkpoint for other parameters"):
        mask_drift(copy, "head.weight")
    (copy / "masks.json").unlink()
    with pytest.raises(FileNotFoundError, match="masks.json does not exist either"):
        mask_drift(copy, "head.bias")


def test_command_leaves_out_runs_without_a_mask_and_names_what_is_wrong(run, tmp_path, capsys):
    unmasked = tmp_path / "anil"  # what a multirun folder's glob also finds
    unmasked.mkdir()
    (unmasked / "results.json").write_text(json.dumps({"accuracy": 0.9, "algorithm": "anil", "sparsity": {}}))
    text = main([str(run), str(unmasked)])
    assert text.startswith(main([str(run)])) and text.endswith(f"without a mask, left out: {unmasked}")
    for argv, message in [
        ([str(unmasked)], "none of these runs has a mask"),
        ([str(run), "--param", "head.gain"], "no mask for 'head.gain'"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_a_resumed_run_keeps_its_true_start(tmp_path):
    # Stopped after one epoch and resumed to three: masks.json's start is the uninterrupted run's, not the masks
    # the resumed process began from.
    short = [*TINY, "algo=sparse_maml", "algo.mask_lr=0.05", "logger=none", "data.train_batches_per_epoch=2"]
    train(compose_config([*short, "trainer.max_epochs=3"], output_dir=tmp_path / "full"))
    train(compose_config([*short, "trainer.max_epochs=1"], output_dir=tmp_path / "resumed"))
    started = json.loads((tmp_path / "resumed" / "masks.json").read_text())["tested"]
    train(compose_config([*short, "trainer.max_epochs=3", "ckpt_path=last"], output_dir=tmp_path / "resumed"))
    full, resumed = (json.loads((tmp_path / d / "masks.json").read_text()) for d in ("full", "resumed"))
    assert resumed["initial"] == full["initial"]
    assert resumed["initial"]["entries"] != started["entries"]  # the resumed process did not start from the start
