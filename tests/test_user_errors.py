"""train.py and evaluate.py print bad input as its message alone; HYDRA_FULL_ERROR=1 keeps the trace."""

import os
import subprocess
import sys

import pytest

from sparse_maml.checks import CheckpointNotFoundError, ConfigError
from sparse_maml.data import DatasetError
from sparse_maml.user_errors import bad_input_as_message

from .app_helpers import ROOT


@pytest.mark.parametrize("error", [ConfigError("algo.inner_steps=0: needs 1"), DatasetError("root /x does not exist")])
def test_bad_input_is_printed_as_its_message(error, capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_:
        with bad_input_as_message():
            raise error
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {error}\n") and "Traceback" not in err and "HYDRA_FULL_ERROR=1" in err


def test_full_error_keeps_the_trace_and_other_errors_pass(monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(CheckpointNotFoundError):
        with bad_input_as_message():
            raise CheckpointNotFoundError("ckpt_path=x.ckpt does not exist")
    monkeypatch.delenv("HYDRA_FULL_ERROR")
    with pytest.raises(ZeroDivisionError):  # a bug is not bad input: it keeps its trace
        with bad_input_as_message():
            raise ZeroDivisionError


def script(*args, **env):
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"} | env,
    )


def test_scripts_print_bad_input_alone(tmp_path):
    done = script("train.py", "algo.inner_steps=0", "logger=none", f"hydra.run.dir={tmp_path / 'a'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Error: this configuration cannot train:\n  algo.inner_steps=0: meta-training needs" in done.stderr
    done = script("evaluate.py", f"ckpt_path={tmp_path / 'none.ckpt'}", f"hydra.run.dir={tmp_path / 'b'}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"Error: ckpt_path={tmp_path / 'none.ckpt'} does not exist" in done.stderr
    done = script(
        "evaluate.py", f"ckpt_path={tmp_path / 'none.ckpt'}", f"hydra.run.dir={tmp_path / 'c'}", HYDRA_FULL_ERROR="1"
    )
    assert done.returncode == 1 and "Traceback" in done.stderr and "CheckpointNotFoundError" in done.stderr
