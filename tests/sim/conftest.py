import pytest
from tensorweave.configs import load_config


@pytest.fixture
def tiny():
    return load_config("tiny")
