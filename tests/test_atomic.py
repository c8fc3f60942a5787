"""Run files are written whole or not at all; a failed write names the file and leaves the previous version."""

import errno
import os

import pytest
import torch

from sparse_maml.atomic import WriteError, write_text
from sparse_maml.checkpoint_io import load_checkpoint
from sparse_maml.run import train

from .app_helpers import TINY, compose_config


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = write_text(tmp_path / "results.json", '{"accuracy": 1}')
    monkeypatch.setattr(os, "fsync", disk_full)  # the bytes do not reach the disk
    with pytest.raises(WriteError) as failed:
        write_text(path, '{"accuracy": 2}')
    assert str(failed.value).startswith(f"could not write {path}: No space left on device")
    assert "results.json as it was before is left intact" in str(failed.value) and failed.value.errno == errno.ENOSPC
    assert path.read_text() == '{"accuracy": 1}' and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_checkpoint_write_on_a_full_disk_names_the_path_and_keeps_last_ckpt(tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def full_on_second_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            disk_full()
        return real_save(obj, f, *args, **kwargs)

    overrides = [*TINY, "logger=none", "callbacks.last_checkpoint.every_n_train_steps=1"]
    monkeypatch.setattr(torch, "save", full_on_second_save)
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(WriteError, match=f"could not write {last}: No space left on device; last.ckpt as it was"):
        train(compose_config(overrides, output_dir=tmp_path))
    assert load_checkpoint(last)["global_step"] == 1  # the previous one, whole
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.ckpt"]
