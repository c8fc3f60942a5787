"""Composing the project's Hydra configs in tests, with budgets small enough for a unit test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

TINY = [
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.sparsity.every_n_steps=1",
    "callbacks.curves.every_n_steps=1",
    "data.train_batches_per_epoch=3",
    "data.meta_batch_size=2",
    "data.k_query=3",
    "data.num_val_tasks=4",
    "data.num_test_tasks=6",
    "data.eval_batch_size=3",
    "algo.inner_steps=2",
    "model.hidden=8",
]


def run_script(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """``python *args`` in the project root as a user runs it: without ``HYDRA_FULL_ERROR`` (so that bad input is
    a message, not a trace), with ``env`` added; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"} | env,
    )


def compose_config(overrides: list[str], output_dir: Path | None = None, name: str = "config") -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        extra = [f"paths.output_dir={output_dir}"] if output_dir is not None else ["paths.output_dir=/tmp/unused"]
        return compose(name, overrides=[*overrides, *extra])


def wandb_payload(path: Path) -> bytes:
    """The record payloads of a W&B run file joined together (leveldb log format: 32 KiB blocks, each record
    prefixed by a 7-byte header), so that a logged key can be searched for even where it spans two blocks."""
    import struct

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    out, pos, block = bytearray(), 7, 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's trailing padding
            pos += left
            continue
        _crc, length, _kind = struct.unpack("<IHB", data[pos : pos + 7])
        out += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
    return bytes(out)
