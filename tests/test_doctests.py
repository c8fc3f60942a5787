"""The examples in the public API's docstrings run as written (doctest)."""

import doctest
import importlib
import tempfile

import pytest

#: modules whose docstring examples are cheap enough for every test run, and the examples each must hold
MODULES = {
    "sparse_maml.api": ("Learner", "load_learner"),
    "sparse_maml.algorithms": ("build_algorithm",),
    "sparse_maml.algorithms.engine.base": ("InnerLoopLearner",),
    "sparse_maml.data.datamodule": ("EpisodicDataModule",),
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' temporary checkpoints
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    tested = {t.name.rsplit(".", 1)[-1] for t in finder.find(module) if t.examples}
    assert set(MODULES[name]) <= tested, f"{name}: no example in {set(MODULES[name]) - tested}"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0
