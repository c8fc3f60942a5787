"""LastCheckpoint on its own."""

import pytest

from sparse_maml.callbacks import LastCheckpoint


def test_last_checkpoint_rejects_negative_interval(tmp_path):
    with pytest.raises(ValueError, match="every_n_train_steps must be >= 0"):
        LastCheckpoint(tmp_path, every_n_train_steps=-1)
    assert LastCheckpoint(tmp_path).path == tmp_path / "last.ckpt"
