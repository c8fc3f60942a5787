"""A checkpoint is data, never code: every door that opens one refuses a pickled object before any of it runs,
and reads a clean checkpoint (this version's, and the committed one of an earlier version) as before."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from sparse_maml import load_learner
from sparse_maml.checkpoint_io import AtomicCheckpointIO, CheckpointError, load_checkpoint, read_checkpoint_entry
from sparse_maml.module import MetaLearner
from sparse_maml.reporting.mask_drift import mask_drift
from sparse_maml.run import evaluate, train

from .app_helpers import TINY, compose_config, run_script

FIXTURE = Path(__file__).parent / "fixtures" / "conv4_sparse_maml_v0.1.0.ckpt"
REFUSED = r"holds a pickled 'posix.system'; refusing to load it"


class _Marker:
    """Unpickled, this would create the file ``path``: what a malicious checkpoint does, harmlessly."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short real training run: its folder, its results and its tested (best) checkpoint."""
    folder = tmp_path_factory.mktemp("run")
    results = train(compose_config([*TINY, "logger=none"], output_dir=folder))
    return folder, results, Path(results["checkpoint"])


@pytest.fixture
def evil(run, tmp_path):
    """The run's tested checkpoint with one added entry whose unpickling would create ``marker``."""
    checkpoint = torch.load(run[2], weights_only=True)
    marker = tmp_path / "marker"
    checkpoint["extra"] = _Marker(marker)
    path = tmp_path / "shared.ckpt"
    torch.save(checkpoint, path)
    yield path
    assert not marker.exists(), "a door ran the checkpoint's code"


def test_the_python_doors_refuse_it(evil):
    for door in (
        lambda: load_learner(evil),
        lambda: MetaLearner.from_checkpoint(evil),
        lambda: load_checkpoint(evil),
        lambda: read_checkpoint_entry(evil, "hyper_parameters"),
        lambda: AtomicCheckpointIO().load_checkpoint(evil),  # Lightning's fit/test(ckpt_path=...), cross-domain tests
    ):
        with pytest.raises(CheckpointError, match=REFUSED) as refused:
            door()
        assert str(evil) in str(refused.value)


def test_resume_refuses_it(evil, tmp_path):
    """train.py ckpt_path=PATH, and ckpt_path=auto finding it as the run folder's last.ckpt."""
    with pytest.raises(CheckpointError, match=REFUSED):
        train(compose_config([*TINY, "logger=none", f"ckpt_path={evil}"], output_dir=tmp_path / "a"))
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    shutil.copy(evil, tmp_path / "b" / "checkpoints" / "last.ckpt")
    with pytest.raises(CheckpointError, match=REFUSED):
        train(compose_config([*TINY, "logger=none", "ckpt_path=auto"], output_dir=tmp_path / "b"))


def test_mask_drift_refuses_it(run, evil, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    results = json.loads((run[0] / "results.json").read_text()) | {"checkpoint": str(evil)}
    (folder / "results.json").write_text(json.dumps(results))
    with pytest.raises(CheckpointError, match=REFUSED):
        mask_drift(folder, "head.bias")


def test_evaluate_py_refuses_it_with_one_message(evil, tmp_path):
    done = run_script("evaluate.py", f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'eval'}", timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert f"Error: checkpoint {evil} holds a pickled 'posix.system'; refusing to load it" in done.stderr
    assert not (tmp_path / "eval" / "results.json").exists()


def test_the_clean_checkpoint_gives_the_runs_accuracy(run, tmp_path):
    folder, results, best = run
    cfg = compose_config([f"ckpt_path={best}", f"num_test_tasks={results['num_tasks']}"], tmp_path, name="eval")
    assert evaluate(cfg)["accuracy"] == results["accuracy"]


def test_a_checkpoint_of_an_earlier_version_still_loads_and_evaluates(tmp_path):
    """The committed fixture: written by train.py of version 0.1.0 (TINY, sparse-MAML, Conv4 of width 8)."""
    learner = load_learner(FIXTURE)
    assert learner.module.hparams.algorithm == "sparse_maml" and learner.module.hparams.backbone == "conv4"
    cfg = compose_config([f"ckpt_path={FIXTURE}", "num_test_tasks=6"], tmp_path, name="eval")
    assert 0 <= evaluate(cfg)["accuracy"] <= 100


@pytest.mark.parametrize(
    "content, found",
    [
        (b"", "is not a readable checkpoint"),
        (b"not a checkpoint at all", "is not a readable checkpoint"),
        ("truncated", "is not a readable checkpoint"),
        ("no state_dict", "is not a checkpoint written by train.py: no 'state_dict'"),
    ],
)
def test_files_that_are_not_checkpoints_are_named(run, tmp_path, content, found):
    path = tmp_path / "bad.ckpt"
    if content == "truncated":
        data = run[2].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "no state_dict":
        torch.save({"weights": torch.ones(2)}, path)
    else:
        path.write_bytes(content)
    for mmap in (False, True):
        with pytest.raises(CheckpointError, match=found) as error:
            load_checkpoint(path, mmap=mmap)
        assert str(path) in str(error.value)
