"""AtomicCheckpointIO on its own."""

import pytest
import torch

from sparse_maml.checkpoint_io import AtomicCheckpointIO, read_checkpoint_entry


def test_atomic_save_replaces_whole_files_only(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "sub" / "last.ckpt"
    io.save_checkpoint({"step": 1, "state_dict": {"w": torch.ones(3)}}, path)
    assert io.last_saved == str(path) and read_checkpoint_entry(path, "step") == 1

    real_save = torch.save

    def dies_mid_write(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 the first bytes of a zip archive")
        raise KeyboardInterrupt  # anything, even an interrupt, while writing

    monkeypatch.setattr(torch, "save", dies_mid_write)
    io.last_saved = "unchanged"
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert io.last_saved == "unchanged"
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    loaded = torch.load(path, weights_only=True)
    assert loaded["step"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.ones(3))
