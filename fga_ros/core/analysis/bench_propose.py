"""Benchmark of grasp proposal: actor + density rejection versus critic + CEM (batch size 1).

Latency is wall-clock time of whole calls (image in, ranked grasps out) after a warm-up,
as percentiles over ``repeats`` calls; accuracy is the simulator success rate of the
proposed grasps (all of them, and the top-ranked one, which is what Yan et al. execute) on
evaluation scenes of every shape. Latency does not depend on training, so a freshly
initialised ``cpu``-preset network is used when no model file exists (the report says so);
its accuracy figures are then meaningless.
"""

from functools import partial
import math
import os
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from fga_ros.core.analysis.evaluation import evaluation_scenes
from fga_ros.core.common.config import load_config
from fga_ros.core.common.tensors import configure_threads
from fga_ros.core.inference.cem import cem_propose
from fga_ros.core.inference.constraints import TaskConstraints, rectangle
from fga_ros.core.inference.defaults import (
    NUM_GRASPS,
    OVERSAMPLE,
    PAPER_REJECT_FRACTION,
)
from fga_ros.core.inference.proposer import BUNDLED_MODEL, Proposer
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.networks import Network
from fga_ros.sim import (
    WORKSPACE_HI,
    WORKSPACE_LO,
    Scene,
    grasp_success,
    heldout_shapes,
    render,
    train_shapes,
)

BENCH_GRASPS = (64, 1024)
"""Proposal sizes timed."""

CEM_GRASPS = 64
"""Grasps CEM returns (its last population, Yan et al.'s population size)."""

WARMUP = 10
"""Untimed calls before each measurement."""

ACTOR_ONLY: dict[str, Any] = {'explore': 0, 'min_candidates': 1, 'floor': 0.0, 'ranking': 'score'}
"""Proposer settings of the actor-versus-CEM comparison: the paper's pipeline (actor samples,
density rejection, critic ranking) without exploration, minimum sample count or floor."""

CEM_ITERATIONS_TRIED = (3, 5, 8, 12, 20, 30)
"""CEM iteration counts tried, in order, for the equal-accuracy comparison."""


def _timed(call: Callable[[], Any], repeats: int,
           tick: Callable[..., Any]) -> dict[str, float]:
    for _ in range(WARMUP):
        call()
        tick()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1e3 * (time.perf_counter() - start))
        tick()
    p50, p90, p99 = np.percentile(times, [50, 90, 99])
    return {'p50': float(p50), 'p90': float(p90), 'p99': float(p99), 'calls': repeats}


def _load(checkpoint: Optional[str | os.PathLike], device: str) -> tuple[Proposer, str, str]:
    """(Proposer, description, note)."""
    try:
        proposer = Proposer.from_checkpoint(checkpoint, device=device, seed=0)
        name = checkpoint or '/'.join(BUNDLED_MODEL)
        return proposer, f'{name} (step {proposer.snapshot().meta.get("step", "?")})', ''
    except FileNotFoundError:
        if checkpoint is not None:
            raise
    torch.manual_seed(0)
    config = load_config('cpu')
    note = (f'no bundled model ({"/".join(BUNDLED_MODEL)}): timing a freshly initialised '
            f"'cpu'-preset network; latency is independent of training, accuracy is not")
    return Proposer(ActorCritic(config), config, device=device, seed=0), 'untrained cpu', note


def _scenes(shapes: Sequence[str], scenes: int, seed: int) -> list[tuple[Scene, np.ndarray]]:
    """(scene, image) pairs of the accuracy comparison."""
    return [(scene, render(scene)) for shape in shapes
            for scene in evaluation_scenes(shape, scenes, seed)]


def image_alone(proposer: Proposer) -> Optional[Proposer]:
    """A proposer of the same model that scores on the image alone, without the
    calibration's other views (and its scaling); None when it has no other views."""
    state = proposer.snapshot()
    if state.calibration.num_views == 1:
        return None
    meta = {key: value for key, value in state.meta.items() if key != 'calibration'}
    return Proposer(state.model, state.config, device=str(proposer.device), seed=0, meta=meta)


def _proposals(proposer: Proposer, alone: Optional[Proposer], image: np.ndarray,
               seed: int) -> dict[str, Any]:
    """The compared proposals of ``CEM_GRASPS`` grasps for one image."""
    results = {'propose': proposer.propose(image, CEM_GRASPS, seed=seed, **ACTOR_ONLY),
               'propose_once': proposer.propose(image, CEM_GRASPS, seed=seed, oversample=1,
                                                **ACTOR_ONLY),
               'cem': cem_propose(proposer.snapshot().model, image, CEM_GRASPS, seed=seed)}
    if alone is not None:
        results['propose_image'] = alone.propose(image, CEM_GRASPS, seed=seed, **ACTOR_ONLY)
    return results


def _accuracy(proposer: Proposer, alone: Optional[Proposer], shapes: Sequence[str],
              scenes: int, seed: int, tick: Callable[..., Any]) -> dict[str, dict[str, float]]:
    """Per compared proposal: the mean share of feasible grasps over the scenes it answers,
    the share of those whose top-ranked grasp is feasible, and the share of scenes it
    abstains on (the novelty gate)."""
    answers: dict[str, list[np.ndarray]] = {}
    for scene, image in _scenes(shapes, scenes, seed):
        results = _proposals(proposer, alone, image, seed)
        tick(len(results))
        for name, proposal in results.items():
            answers.setdefault(name, []).append(grasp_success(scene, proposal.actions))
    return {name: {'mean': _mean([s.mean() for s in found if len(s)]),
                   'top1': _mean([float(s[0]) for s in found if len(s)]),
                   'abstained': float(np.mean([len(s) == 0 for s in found]))}
            for name, found in answers.items()}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _cem_matching(model: Network, target: float, shapes: Sequence[str], scenes: int,
                  seed: int, tick: Callable[..., Any]) -> tuple[int, float, bool, int]:
    """The fewest ``CEM_ITERATIONS_TRIED`` whose CEM grasps are feasible at least as often
    as ``target`` (a fraction) on the comparison scenes, else the last count tried:
    (iterations, their accuracy, whether it matches, calls not made)."""
    pairs = _scenes(shapes, scenes, seed)
    for tried, iterations in enumerate(CEM_ITERATIONS_TRIED, 1):
        hits = []
        for scene, image in pairs:
            proposal = cem_propose(model, image, CEM_GRASPS, iterations, seed=seed)
            hits.append(grasp_success(scene, proposal.actions).mean())
            tick()
        accuracy = float(np.mean(hits))
        if accuracy >= target:
            return iterations, accuracy, True, (len(CEM_ITERATIONS_TRIED) - tried) * len(pairs)
    return iterations, accuracy, False, 0


def _latencies(proposer: Proposer, alone: Optional[Proposer], image: np.ndarray,
               repeats: int, tick: Callable[..., Any]) -> dict[str, dict[str, float]]:
    """``_timed`` latencies of the actor alone (``ACTOR_ONLY``) for each of
    ``BENCH_GRASPS`` grasps, of the first without oversampling and scored on the image
    alone (``alone``, when the calibration has other views), of CEM for ``CEM_GRASPS``, of
    the default and a region-constrained request, and of ``sample_actions`` for the last of
    ``BENCH_GRASPS`` samples, the actor's own and resampled (the defaults)."""
    model = proposer.snapshot().model
    latency = {f'propose_{n}': _timed(
        partial(proposer.propose, image, n, PAPER_REJECT_FRACTION, **ACTOR_ONLY), repeats, tick)
        for n in BENCH_GRASPS}
    n = BENCH_GRASPS[0]
    latency[f'propose_{n}_once'] = _timed(
        partial(proposer.propose, image, n, PAPER_REJECT_FRACTION, oversample=1, **ACTOR_ONLY),
        repeats, tick)
    if alone is not None:
        latency[f'propose_{n}_image'] = _timed(
            partial(alone.propose, image, n, PAPER_REJECT_FRACTION, **ACTOR_ONLY), repeats,
            tick)
    latency[f'cem_{CEM_GRASPS}'] = _timed(partial(cem_propose, model, image, CEM_GRASPS),
                                          repeats, tick)
    latency['default'] = _timed(partial(proposer.propose, image), repeats, tick)
    left = TaskConstraints(region=rectangle(
        WORKSPACE_LO, WORKSPACE_LO, 0.5 * (WORKSPACE_LO + WORKSPACE_HI), WORKSPACE_HI))
    latency['region'] = _timed(partial(proposer.propose, image, constraints=left), repeats,
                               tick)
    n = BENCH_GRASPS[-1]
    latency[f'samples_{n}_own'] = _timed(partial(proposer.sample_actions, image, n, resample=1),
                                         repeats, tick)
    latency[f'samples_{n}'] = _timed(partial(proposer.sample_actions, image, n), repeats, tick)
    return latency


def run_propose_bench(checkpoint: Optional[str | os.PathLike] = None, repeats: int = 200,
                      device: str = 'cpu', num_threads: Optional[int] = None,
                      accuracy_scenes: int = 4, seed: int = 0,
                      progress: bool = False) -> dict[str, Any]:
    """Time proposals of 64 and 1024 grasps and CEM with 64, and compare their accuracy.

    Args:
        checkpoint: model file; None: the bundled model, or an untrained ``cpu`` network
            when there is none.
        repeats: timed calls per measurement (after ``WARMUP`` untimed ones).
        device: torch device string.
        num_threads: torch CPU threads to set first (None: leave as is).
        accuracy_scenes: evaluation scenes per shape for the accuracy comparison.
        seed: seed of the scenes and of the samplers.
        progress: show a bar on stderr, in proposal calls (the CEM search may end early).

    Returns:
        dict with 'model', 'note', 'device', 'threads', 'latency_ms' ({'propose_64',
        'propose_1024', 'propose_64_once', 'propose_64_image', 'cem_64', 'default', 'region',
        'samples_1024_own', 'samples_1024'} -> {'p50', 'p90', 'p99', 'calls'}; '_image': on
        the image alone, ``image_alone``, when the calibration has other views; 'default' a
        default request, 'region' the same constrained to the left half of the workspace,
        'samples_1024' 1024 resampled samples of ``sample_actions``, '_own' the actor's),
        'speedup' (CEM p50 / propose_64 p50), 'accuracy' ({'propose', 'propose_once', 'cem',
        'propose_image' (with '_image')} -> ``_accuracy``'s {'mean', 'top1', 'abstained'}),
        'shapes', 'accuracy_scenes', and 'cem_matching': the CEM iterations needed to match
        the actor's accuracy, or the most tried ({'iterations', 'accuracy',
        'matched', 'latency_ms', 'speedup'}).
    """
    if num_threads is not None:
        configure_threads(num_threads)
    proposer, name, note = _load(checkpoint, device)
    alone = image_alone(proposer)
    image = render(evaluation_scenes('H', 1, seed)[0])
    model = proposer.snapshot().model
    shapes = tuple(train_shapes()) + tuple(heldout_shapes())
    extra = 0 if alone is None else 1  # the image-alone measurement
    timed_calls = (len(BENCH_GRASPS) + 7 + extra) * (WARMUP + repeats)
    comparison_calls = len(shapes) * accuracy_scenes * (3 + extra + len(CEM_ITERATIONS_TRIED))
    with tqdm(total=timed_calls + comparison_calls, desc='bench propose', unit='call',
              disable=not progress) as bar:
        latency = _latencies(proposer, alone, image, repeats, bar.update)
        base = latency[f'propose_{BENCH_GRASPS[0]}']['p50']
        accuracy = _accuracy(proposer, alone, shapes, accuracy_scenes, seed, bar.update)
        iterations, cem_accuracy, matched, skipped = _cem_matching(
            model, accuracy['propose']['mean'], shapes, accuracy_scenes, seed, bar.update)
        bar.total -= skipped
        bar.refresh()
        matching: dict[str, Any] = {
            'iterations': iterations, 'accuracy': cem_accuracy, 'matched': matched,
            'latency_ms': _timed(partial(cem_propose, model, image, CEM_GRASPS, iterations),
                                 repeats, bar.update)}
    matching['speedup'] = matching['latency_ms']['p50'] / base if base > 0 else math.nan
    return {
        'model': name, 'note': note, 'device': str(proposer.device),
        'threads': torch.get_num_threads(), 'latency_ms': latency,
        'speedup': latency[f'cem_{CEM_GRASPS}']['p50'] / base if base > 0 else math.nan,
        'accuracy': accuracy, 'shapes': shapes, 'accuracy_scenes': accuracy_scenes,
        'cem_matching': matching,
    }


def print_propose_bench(results: dict[str, Any]) -> None:
    """Print ``run_propose_bench`` results as a small report."""
    print(f'model: {results["model"]}  device: {results["device"]}  '
          f'torch threads: {results["threads"]}')
    if results['note']:
        print(f'NOTE: {results["note"]}')
    print(f'{"latency [ms], batch 1":<32}{"p50":>8}{"p90":>8}{"p99":>8}')
    labels = {f'propose_{n}': f'actor, {n} ranked grasps (*)' for n in BENCH_GRASPS}
    labels[f'propose_{BENCH_GRASPS[0]}_once'] = '  the same, oversample 1'
    labels[f'propose_{BENCH_GRASPS[0]}_image'] = '  the same, image alone'
    labels[f'cem_{CEM_GRASPS}'] = f'critic + CEM, {CEM_GRASPS} grasps'
    labels['default'] = f'defaults ({NUM_GRASPS}, explore)'
    labels['region'] = '  the same, left-half region'
    n = BENCH_GRASPS[-1]
    labels[f'samples_{n}_own'] = f"{n} samples, the actor's own"
    labels[f'samples_{n}'] = '  the same, resampled (defaults)'
    for key, stats in results['latency_ms'].items():
        print(f'{labels[key]:<32}{stats["p50"]:8.2f}{stats["p90"]:8.2f}{stats["p99"]:8.2f}')
    ratio = results['latency_ms']['region']['p50'] / results['latency_ms']['default']['p50']
    print(f'constrained (region) / unconstrained default request, p50: {ratio:.2f}x')
    print(f'speed-up of the actor over CEM (p50, {BENCH_GRASPS[0]} grasps): '
          f'{results["speedup"]:.2f}x')
    acc = results['accuracy']
    print(f'accuracy on {results["accuracy_scenes"]} scenes x {len(results["shapes"])} shapes '
          f'({", ".join(results["shapes"])}), {CEM_GRASPS} grasps each:')
    for name, label in (('propose', f'actor (*, oversample {OVERSAMPLE})'),
                        ('propose_once', 'actor (*, oversample 1)'),
                        ('propose_image', 'actor (*), image alone'), ('cem', 'critic + CEM')):
        if name in acc:
            abstained = (f'   abstained {100 * acc[name]["abstained"]:.0f}% of scenes'
                         if acc[name]['abstained'] else '')
            print(f'  {label:<28} all grasps {100 * acc[name]["mean"]:5.1f}%   '
                  f'top-ranked grasp {100 * acc[name]["top1"]:5.1f}%{abstained}')
    match = results['cem_matching']
    verdict = ("matches the actor's accuracy" if match['matched'] else
               "stays below the actor's accuracy even")
    print(f"CEM {verdict} with {match['iterations']} iterations: "
          f'{100 * match["accuracy"]:.1f}% of its grasps feasible, p50 '
          f'{match["latency_ms"]["p50"]:.2f} ms; the actor (*) is {match["speedup"]:.2f}x faster')
