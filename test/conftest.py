"""Shared pytest fixtures."""

import pytest


@pytest.fixture
def one_thread():
    """Run a test with one torch intra-op thread: small tensors only slow down with more,
    worst on a shared machine. Use with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny_config():
    """The ``tiny`` preset: a few-second smoke configuration."""
    from fga_ros.core.common.config import load_config
    return load_config('tiny')
