"""Learner: inputs that do not fit the checkpoint get one error naming what it expects."""

import numpy as np
import pytest
import torch

from sparse_maml.api import LearnerInputError
from sparse_maml.data import augment


def support(n=6, shape=(1, 16, 16)):
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8), torch.arange(n) % 3


def test_fitting_inputs_adapt_and_predict(learner):
    xs, ys = support()
    fast = learner.adapt(xs, ys)
    assert learner.predict(fast, xs.float() / 255).shape == (6, 3)


def test_normalisation_is_the_datamodules(learner):
    x = torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)
    assert torch.equal(learner.module.normalize(x), augment.normalize(x, [0.5], [0.25]))


BAD = {  # (xs, ys) for adapt -> what the message must say
    "channels": (support(shape=(3, 16, 16)), "xs has shape [6, 3, 16, 16]; this checkpoint expects [B, 1, 16, 16]"),
    "size": (support(shape=(1, 28, 28)), "xs has shape [6, 1, 28, 28]; this checkpoint expects [B, 1, 16, 16]"),
    "no batch": ((support()[0][0], support()[1]), "xs has shape [1, 16, 16]"),
    "range": ((support()[0].float(), support()[1]), "xs holds values in [0, 255]; this checkpoint expects"),
    "labels": ((support()[0], torch.arange(6)), "ys holds labels 0..5; this checkpoint expects ys of shape [6]"),
    "negative": ((support()[0], torch.arange(6) - 1), "ys holds labels -1..4"),
    "count": ((support()[0], torch.arange(5) % 3), "ys has shape [5] and dtype torch.int64; this checkpoint expects"),
    "float labels": ((support()[0], torch.zeros(6)), "ys has shape [6] and dtype torch.float32"),
}


@pytest.mark.parametrize("case", BAD)
def test_adapt_rejects_what_does_not_fit(learner, case):
    (xs, ys), message = BAD[case]
    with pytest.raises(LearnerInputError) as error:
        learner.adapt(xs, ys)
    text = str(error.value)
    assert text.startswith("Learner.adapt: ") and message in text
    assert "integer labels 0..2 (3-way)" in text or "uint8 in [0, 255] or float in [0, 1]" in text


def test_one_error_names_every_problem(learner):
    xs, _ = support(shape=(3, 16, 16))
    with pytest.raises(LearnerInputError) as error:
        learner.adapt(xs, torch.arange(6))
    assert "xs has shape [6, 3, 16, 16]" in str(error.value) and "ys holds labels 0..5" in str(error.value)


def test_predict_rejects_what_does_not_fit(learner):
    xs, ys = support()
    fast = learner.adapt(xs, ys)
    with pytest.raises(LearnerInputError, match=r"^Learner.predict: xq has shape \[4, 3, 16, 16\]; this checkpoint"):
        learner.predict(fast, torch.zeros(4, 3, 16, 16))
    with pytest.raises(LearnerInputError, match=r"xq is a ndarray; this checkpoint expects a tensor of \[B, 1, 16"):
        learner.predict(fast, torch.zeros(4, 1, 16, 16).numpy())


@pytest.mark.parametrize("steps", [1.5, -1, True, "5"])
def test_adapt_rejects_steps_that_are_not_a_count(learner, steps):
    xs, ys = support()
    message = rf"^Learner.adapt: steps is {steps!r}; this checkpoint expects a whole number of inner steps >= 0"
    with pytest.raises(LearnerInputError, match=message):
        learner.adapt(xs, ys, steps=steps)
    assert learner.adapt(xs, ys, steps=0).keys() == learner.adapt(xs, ys, steps=2).keys()
    assert learner.adapt(xs, ys, steps=np.int64(2)).keys() == learner.adapt(xs, ys, steps=2).keys()
