"""Bad input, fuzzed: the two public doors that take arrays either work or raise the package's own error naming what
to change; never a raw torch/numpy error, never a hang."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparse_maml.api import LearnerInputError
from sparse_maml.data import DatasetError, EpisodeSampler, ImageStore

N_WAY, SHAPE = 3, (1, 16, 16)  # the learner fixture's (tests/conftest.py)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


DTYPES = [torch.uint8, torch.int8, torch.int64, torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool]
PIXELS = st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.0, 255.0, float("nan"), float("inf"), -float("inf")])


@st.composite
def images(draw):
    """A tensor that may or may not be a batch of images of the checkpoint's shape, dtype and range."""
    batch = draw(st.integers(0, 7))
    shape = draw(
        st.sampled_from(
            [(batch, *SHAPE), (batch, 3, 16, 16), (batch, 1, 17, 16), SHAPE, (batch, *SHAPE, 1), (batch,), ()]
        )
    )
    dtype = draw(st.sampled_from(DTYPES))
    fill = draw(PIXELS)
    if not dtype.is_floating_point:
        return torch.randint(0, 2 if dtype == torch.bool else 100, shape).to(dtype)
    x = torch.rand(shape, dtype=dtype)
    if draw(st.booleans()) and x.numel():
        x.view(-1)[0] = fill
    return x


@st.composite
def labels(draw, n):
    length = draw(st.sampled_from([n, 0, n + 1, max(n - 1, 0)]))
    dtype = draw(st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32, torch.bool]))
    values = draw(st.lists(st.integers(-2, N_WAY + 1), min_size=length, max_size=length))
    ys = torch.tensor(values, dtype=torch.int64)
    if dtype == torch.uint8:
        ys = ys.clamp(min=0)
    return ys.to(dtype) if draw(st.booleans()) else ys.view(-1, 1) if length else ys


def works_or_names_the_input(call, door):
    try:
        return call()
    except LearnerInputError as error:
        assert str(error).startswith(f"Learner.{door}: ") and "this checkpoint expects" in str(error)
        return None


@FUZZ
@given(data=st.data())
def test_adapt_and_predict_work_or_say_what_to_change(learner, data):
    xs = data.draw(images())
    ys = data.draw(labels(len(xs) if xs.dim() else 0))
    steps = data.draw(st.sampled_from([None, 0, 1, 2, -1, 1.5]))
    fast = works_or_names_the_input(lambda: learner.adapt(xs, ys, steps=steps), "adapt")
    if fast is None:
        return
    assert all(torch.isfinite(p).all() for p in fast.values())
    xq = data.draw(images())
    logits = works_or_names_the_input(lambda: learner.predict(fast, xq), "predict")
    if logits is not None:
        assert logits.shape == (len(xq), N_WAY) and torch.isfinite(logits).all()


def store(classes, per_class):
    labels = torch.arange(classes).repeat_interleave(torch.tensor(per_class))
    return ImageStore(torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8), labels, [f"c{i}" for i in range(classes)])


@FUZZ
@given(
    classes=st.integers(1, 8),
    per_class=st.data(),
    n_way=st.integers(-1, 10),
    k_shot=st.integers(-1, 6),
    k_query=st.integers(-1, 6),
    num=st.integers(0, 5),
)
def test_the_sampler_draws_or_says_what_to_change(classes, per_class, n_way, k_shot, k_query, num):
    counts = per_class.draw(st.lists(st.integers(1, 10), min_size=classes, max_size=classes))
    split = store(classes, counts)
    try:
        sampler = EpisodeSampler(split, n_way, k_shot, k_query, seed=0)
    except DatasetError as error:
        assert any(key in str(error) for key in ("n_way", "k_shot", "k_query")), error
        return
    assert n_way <= classes and k_shot + k_query <= min(counts)
    episodes = sampler.fixed_episodes(num)
    for ep in episodes:
        assert ep.support.shape == (n_way * k_shot,) and ep.query.shape == (n_way * k_query,)
        assert not set(ep.support.tolist()) & set(ep.query.tolist())
    if episodes:
        xs, ys, xq, yq = sampler.batch(episodes)
        assert xs.shape == (num, n_way * k_shot, 1, 2, 2) and yq.shape == (num, n_way * k_query)
