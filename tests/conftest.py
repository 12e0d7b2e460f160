import os

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits():
    from edgeq import models

    return models.load("digits")


def pytest_configure(config):
    os.environ.setdefault("EDGEQ_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "edgeq"))
