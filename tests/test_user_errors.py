"""train.py and evaluate.py print bad input as its message alone; HYDRA_FULL_ERROR=1 keeps the trace."""

import pytest

from sparse_maml.checks import CheckpointNotFoundError, ConfigError
from sparse_maml.data import DatasetError
from sparse_maml.user_errors import bad_input_as_message

from .app_helpers import ROOT, run_script


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
    return run_script(*args, timeout=300, **env)


@pytest.mark.slow
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


def _write_huge_array_pickle(path):
    """A miniImageNet cache pickle whose image array decodes to 1 TiB: a corrupt shape, not a real file."""
    import pickle

    import numpy as np

    class Huge:
        def __reduce__(self):
            return np.ndarray, ((2**40,),)

    path.write_bytes(pickle.dumps({"image_data": Huge(), "class_dict": {}}, protocol=2))


MISTAKES = {  # what a new user gets wrong -> the script, its arguments, what the one message must name
    "lr not a number": ("train.py", ["algo.inner_lr=abc"], "algo.inner_lr='abc' is not a finite number"),
    "negative lr": ("train.py", ["algo.lr=-0.001"], "algo.lr=-0.001: the outer learning rate is a number > 0"),
    "zero width": ("train.py", ["model.hidden=0"], "model.hidden=0: every Conv4 block needs at least 1 channel"),
    "zero test tasks": ("train.py", ["data.num_test_tasks=0"], "data.num_test_tasks=0: the test needs at least 1"),
    "zero test tasks, evaluate": ("evaluate.py", ["num_test_tasks=0", "ckpt_path=x"], "num_test_tasks=0: the test"),
    "truncated checkpoint, resume": ("train.py", ["ckpt_path={truncated}"], "{truncated} is not a readable checkpoint"),
    "not a checkpoint, evaluate": ("evaluate.py", ["ckpt_path={text}"], "{text} is not a readable checkpoint"),
    "corrupt dataset pickle": (
        "train.py",
        ["data=miniimagenet", "data.root={tmp}"],
        "cannot read {tmp}/mini-imagenet-cache-train.pkl (UnpicklingError: an array of shape (1099511627776,)",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_kind_of_mistake_is_one_message(tmp_path, mistake):
    command, args, message = MISTAKES[mistake]
    fixture = ROOT / "tests" / "fixtures" / "conv4_sparse_maml_v0.1.0.ckpt"
    names = {"truncated": tmp_path / "truncated.ckpt", "text": tmp_path / "notes.ckpt", "tmp": tmp_path}
    names["truncated"].write_bytes(fixture.read_bytes()[:5000])
    names["text"].write_text("not a checkpoint")
    _write_huge_array_pickle(tmp_path / "mini-imagenet-cache-train.pkl")
    args = [a.format(**names) for a in args]
    quiet = ["logger=none"] if command == "train.py" else []
    done = script(command, *args, *quiet, f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and message.format(**names) in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "run" / "results.json").exists()
