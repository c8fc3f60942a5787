"""LastCheckpoint on its own."""

from types import SimpleNamespace

import pytest

from sparse_maml.callbacks import LastCheckpoint


def test_last_checkpoint_rejects_negative_interval(tmp_path):
    with pytest.raises(ValueError, match="every_n_train_steps must be >= 0"):
        LastCheckpoint(tmp_path, every_n_train_steps=-1)
    assert LastCheckpoint(tmp_path).path == tmp_path / "last.ckpt"


def test_last_checkpoint_saves_the_whole_training_state(tmp_path):
    """last.ckpt is for resuming (optimisers and loops included), asked for outright rather than by Lightning's
    default, which it logs as "`weights_only` was not set" on every save."""
    saves = []
    trainer = SimpleNamespace(
        sanity_checking=False, fast_dev_run=False, save_checkpoint=lambda path, **kw: saves.append((path, kw))
    )
    LastCheckpoint(tmp_path)._save(trainer)
    assert saves == [(tmp_path / "last.ckpt", {"weights_only": False})]
