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


def pytest_configure(config):
    config.addinivalue_line('markers', 'kill9: kills fga train subprocesses with SIGKILL '
                                       '(FGA_KILL_POINTS sets how often; default 2)')


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the figures the reliability tests record (``config.fga_summary`` lines)."""
    for line in getattr(config, 'fga_summary', []):
        terminalreporter.write_line(line)

