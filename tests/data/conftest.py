import pytest

from .helpers import SHARED_DATA


@pytest.fixture
def shared_data():
    """The project's shared data folder (../shared/data from the project root)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
