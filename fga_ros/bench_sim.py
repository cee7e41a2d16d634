"""Simulator throughput figures (``fga bench sim``); numbers are measured, never asserted."""

import time

import numpy as np
from tqdm import tqdm

from fga_ros import sim

_FRESH_SEED = 10_000_000  # seeds from here on are not used elsewhere, so caches are cold


def _random_actions(rng, n):
    lo, hi = sim.WORKSPACE_LO, sim.WORKSPACE_HI
    return np.column_stack([rng.uniform(lo, hi, n), rng.uniform(lo, hi, n),
                            rng.uniform(0.0, np.pi, n)])


def _rate(fn, items, budget):
    """Call fn() until budget seconds pass (at least once); return items per second."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return calls * items / elapsed


def run_sim_bench(seconds_budget=2.0, batch=1_000_000, scenes=4096, progress=False) -> dict:
    """Measure the simulator; each figure runs for about ``seconds_budget`` seconds.

    Returns a dict of figures: grasp checks per second for one scene x ``batch`` actions
    (first call, including the table build, and warm), for ``scenes`` scenes x one action
    each (masks cached, as in training where the image was rendered first), renders per
    second (new scenes and cached outlines) and ground-truth seconds per scene (mean over
    the shape families, cold caches). ``progress`` shows a bar of the figures on stderr.
    """
    with tqdm(total=6, desc='bench sim', unit='figure', disable=not progress) as bar:
        return _measure(seconds_budget, batch, scenes, bar.update)


def _measure(seconds_budget, batch, scenes, done):
    """The figures of ``run_sim_bench``; ``done()`` is called after each one."""
    rng = np.random.default_rng(0)
    shapes = sim.shapes()
    out = {'batch': batch, 'scenes': scenes}

    scene = sim.make_scene(shapes[0], _FRESH_SEED)
    actions = _random_actions(rng, batch)
    start = time.perf_counter()
    sim.grasp_success(scene, actions)
    out['checks_per_s_one_scene_first_call'] = batch / (time.perf_counter() - start)
    done()
    out['checks_per_s_one_scene_warm'] = _rate(
        lambda: sim.grasp_success(scene, actions), batch, seconds_budget)
    done()

    many = [sim.make_scene(shapes[i % len(shapes)], _FRESH_SEED + 1 + i) for i in range(scenes)]
    for s in many:
        sim.object_mask(s)
    many_actions = _random_actions(rng, scenes)
    out['checks_per_s_many_scenes'] = _rate(
        lambda: sim.grasp_success_many(many, many_actions), scenes, seconds_budget)
    done()

    counter = iter(range(_FRESH_SEED + 1 + scenes, 2 ** 62))
    n_render = 512

    def render_new():
        base = next(counter) * n_render
        sim.render_batch(sim.make_scene(shapes[i % len(shapes)], base + i)
                         for i in range(n_render))

    out['renders_per_s_new_scenes'] = _rate(render_new, n_render, seconds_budget)
    done()
    out['renders_per_s_cached'] = _rate(lambda: sim.render_batch(many[:n_render]), n_render,
                                        seconds_budget)
    done()

    times = {}
    for i, shape in enumerate(shapes):
        s = sim.make_scene(shape, _FRESH_SEED - 1 - i)
        start = time.perf_counter()
        sim.ground_truth(s)
        times[shape] = time.perf_counter() - start
    out['ground_truth_s_per_scene'] = float(np.mean(list(times.values())))
    out['ground_truth_s_by_shape'] = times
    done()
    return out


def print_sim_bench(result) -> None:
    """Print the figures of :func:`run_sim_bench`."""
    print(f'grasp checks, 1 scene x {result["batch"]:,} actions: '
          f'{result["checks_per_s_one_scene_first_call"]:,.0f}/s first call (table build), '
          f'{result["checks_per_s_one_scene_warm"]:,.0f}/s warm')
    print(f'grasp checks, {result["scenes"]:,} scenes x 1 action: '
          f'{result["checks_per_s_many_scenes"]:,.0f}/s')
    print(f'renders: {result["renders_per_s_new_scenes"]:,.0f}/s new scenes, '
          f'{result["renders_per_s_cached"]:,.0f}/s cached outlines')
    by_shape = ', '.join(f'{k} {v:.3f}' for k, v in result['ground_truth_s_by_shape'].items())
    print(f'ground truth: {result["ground_truth_s_per_scene"]:.3f} s/scene ({by_shape})')
