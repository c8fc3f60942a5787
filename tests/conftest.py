import pytest
import torch

from sparse_maml.api import Learner
from sparse_maml.module import MetaLearner


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def learner():
    """A 3-way sparse-MAML Conv4 (width 4) on 1x16x16 images, untrained: what the Learner tests adapt with."""
    module = MetaLearner(
        algorithm="sparse_maml",
        backbone="conv4",
        backbone_kwargs={"hidden": 4},
        n_way=3,
        in_channels=1,
        image_size=16,
        inner_steps=1,
        mean=(0.5,),
        std=(0.25,),
    )
    return Learner(module)
