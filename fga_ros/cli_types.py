"""argparse ``type=`` functions of the ``fga`` command line: bounded numbers and seeds.

A value outside its bounds is refused by argparse itself, before any work, with a line
that names the flag (``fga train: error: argument --wall-hours: ...``) and exit status 2.
"""

import argparse
import math
from typing import Callable

from fga_ros.core.common.checks import check_count

MAX_SEED = 2 ** 63 - 1
"""Largest seed accepted (numpy and torch both take it)."""

MAX_FIGURE_GRASPS = 4096
"""Most feasible grasps ``fga sim`` draws into its figure."""

MAX_WALL_HOURS = 10_000.0
"""Longest ``--wall-hours`` of a training run."""

MAX_BENCH_SECONDS = 600.0
"""Longest time budget of one ``fga bench sim`` figure."""

MAX_REPEATS = 100_000
"""Most timed calls per ``fga bench propose`` configuration."""

MAX_BENCH_STATES = 10_000
"""Most evaluation scenes per shape of ``fga bench defaults`` and ``camera``."""


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A ``type=`` for integers in [low, high] (``checks.check_count``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected an integer, got {text[:40]!r}') from None
        try:
            return check_count('', value, low, high)
        except ValueError as error:  # argparse names the flag
            raise argparse.ArgumentTypeError(str(error).strip()) from None
    return parse


def float_in(low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    """A ``type=`` for finite numbers in [low, high] ((low, high] with ``low_open``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected a number, got {text[:40]!r}') from None
        above = value > low if low_open else value >= low
        if not (math.isfinite(value) and above and value <= high):
            bounds = f'({low:g}, {high:g}]' if low_open else f'[{low:g}, {high:g}]'
            raise argparse.ArgumentTypeError(f'must be a number in {bounds}, got {text[:40]}')
        return value
    return parse


seed = int_in(0, MAX_SEED)
"""A ``type=`` for seeds: integers in [0, 2**63 - 1]."""
