"""Figures a robotics user reads without the code: legends, ground truth marked, one palette."""

import numpy as np
import pytest
import torch

from fga_ros import cli, sim
from fga_ros.core.analysis import figures
from fga_ros.core.common.config import load_config
from fga_ros.core.inference.proposer import Proposal
from fga_ros.core.models.nets import ActorCritic
from fga_ros.sim import drawing


def legend_labels(fig):
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def known_proposal(scene, feasible_count=5, infeasible_count=4):
    """Grasps of known outcome on a scene: feasible ones from the ground truth first."""
    gt = sim.ground_truth(scene)
    rng = np.random.default_rng(0)
    good = gt.sample_feasible(feasible_count, rng)
    bad = np.column_stack([rng.uniform(26, 30, (infeasible_count, 2)),
                           rng.uniform(0, np.pi, infeasible_count)])  # workspace corner
    actions = np.vstack([good, bad])
    n = len(actions)
    return Proposal(actions=actions, scores=np.linspace(0.9, 0.4, n), log_density=np.zeros(n),
                    cluster_ids=np.arange(n) % 3 + 1, ranks=np.arange(n), num_sampled=2 * n,
                    num_rejected=1, inference_ms=1.0)


def test_proposal_figure_marks_the_simulator_failures(tmp_path):
    scene = sim.make_scene('T', 1)
    proposal = known_proposal(scene)
    feasible = sim.grasp_success(scene, proposal.actions)
    assert feasible.tolist() == [True] * 5 + [False] * 4
    fig = figures.proposal_figure(sim.render(scene), proposal, tmp_path / 'p.png',
                                  feasible=feasible, timing='steady state')
    image_ax, score_ax = fig.axes[:2]
    crosses = [line for line in image_ax.lines if line.get_gid() == 'infeasible']
    assert len(crosses) == 1
    np.testing.assert_allclose(np.sort(crosses[0].get_xydata(), axis=0),
                               np.sort(proposal.actions[~feasible, :2], axis=0))
    bars = [line for line in score_ax.lines if line.get_gid() == 'infeasible']
    assert bars[0].get_xdata().tolist() == proposal.ranks[~feasible].tolist()
    labels = legend_labels(fig)
    assert 'infeasible (simulator check)' in labels
    assert [label for label in labels if label.startswith('cluster')] == [
        'cluster 1: 3 grasps', 'cluster 2: 3 grasps', 'cluster 3: 3 grasps']
    assert any(label.startswith('gripper: jaws') for label in labels)
    assert '0.5: score floor (calibrated; abstain below)' in labels
    assert 'steady state' in score_ax.get_title()
    # the glyph colours are the RViz marker colours of the same clusters
    colours = {tuple(np.round(line.get_color(), 6)) for line in image_ax.lines
               if line.get_gid() == 'grasp'}
    from fga_ros.bridge import markers
    expected = {tuple(np.round(c, 6)) for c in markers.cluster_colours(proposal.cluster_ids)}
    assert colours == expected


def test_proposal_figure_without_ground_truth_has_no_marks(tmp_path):
    scene = sim.make_scene('T', 1)
    fig = figures.proposal_figure(sim.render(scene), known_proposal(scene), tmp_path / 'p.png')
    assert not [line for ax in fig.axes for line in ax.lines if line.get_gid() == 'infeasible']
    assert 'infeasible (simulator check)' not in legend_labels(fig)


def test_fga_propose_checks_each_grasp_with_the_simulator(tmp_path, monkeypatch):
    seen = {}

    def spy(image, proposal, path, **kwargs):
        seen.update(kwargs, proposal=proposal)

    monkeypatch.setattr(figures, 'proposal_figure', spy)
    assert cli.main(['propose', '--shape', 'Box', '--seed', '3', '--distortion', 'rotation',
                     '--num', '12', '--out', str(tmp_path / 'p.png')]) == 0
    scene = sim.make_scene('Box', 3, 'rotation')
    np.testing.assert_array_equal(seen['feasible'],
                                  sim.grasp_success(scene, seen['proposal'].actions))
    assert seen['distortion'] == 'rotation' and seen['timing'] == cli.STEADY_STATE


def test_critic_actor_figure_explains_itself(tmp_path):
    config = load_config('tiny')
    torch.manual_seed(0)
    model = ActorCritic(config).eval()
    scene = sim.make_scene('H', 0)
    gt = sim.ground_truth(scene)
    fig = figures.critic_actor_figure(model, config, scene, gt, tmp_path / 'f.png',
                                      num_samples=256, grid=13, angle_bins=6)
    labels = legend_labels(fig)
    assert [label for label in labels if label.startswith('mode')] == [
        f'mode {m}' for m in range(1, gt.num_modes + 1)]
    assert {'no feasible grasp', 'workspace: allowed grasp centres'} <= set(labels)
    colourbars = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == '<colorbar>']
    assert colourbars == ['critic success probability',
                          'actor samples per cell (1 = the busiest cell)']
    mm_axes = [child for ax in fig.axes for child in ax.child_axes
               if child.get_xlabel() == 'x [mm]']
    assert len(mm_axes) == 7  # each projection and the camera image
    # the example grasp of mode m is drawn in mode m's colour
    problem = fig.axes[0]
    grasp_colours = [tuple(line.get_color()) for line in problem.lines
                     if line.get_gid() == 'grasp'][::3]
    np.testing.assert_allclose(grasp_colours, drawing.mode_rgb(range(1, gt.num_modes + 1)))


def test_rank_share_and_learning_curve_legends(tmp_path):
    results = {'T': {'accuracy': 0.9, 'accuracy_rejected': 0.95, 'rank_shares': [0.5, 0.4],
                     'rank_shares_rejected': [0.5, 0.45]}}
    fig = figures.rank_share_figure(results, tmp_path / 'r.png', reject_fraction=0.1)
    assert legend_labels(fig) == ['infeasible proposals', 'mode ranked 2',
                                  'mode ranked 1 (most visited)']
    assert '10% lowest-density' in fig.axes[0].get_xlabel()
    records = [{'step': s, 'seconds': 60.0 * s, 'acc/T': 0.5, 'acc*/T': 0.6, 'acc/mean': 0.5,
                'acc*/mean': 0.6} for s in (100, 200)]
    fig = figures.learning_curve_figure(records, tmp_path / 'c.png')
    assert legend_labels(fig) == ['T', 'mean', 'solid: after density rejection (*)',
                                  'dashed: without rejection']


def test_learning_curve_step_axis_continues_beyond_the_evaluations():
    # evaluations at 2500 / 5000 / 7500 steps, 0.1 h apart after a 0.05 h prefill: the step
    # axis must put 2000 before the first evaluation, not on it (np.interp would clamp)
    hours, steps = np.array([0.15, 0.25, 0.35]), np.array([2500.0, 5000.0, 7500.0])
    to_steps = figures._extrapolated(np.array([0.13, 0.15, 0.3, 0.4]), hours, steps)
    assert to_steps == pytest.approx([2000.0, 2500.0, 6250.0, 8750.0])
    assert figures._extrapolated(to_steps, steps, hours) == pytest.approx([0.13, 0.15, 0.3, 0.4])


@pytest.mark.parametrize('name', ['critic', 'actor'])
def test_maps_are_probabilities(name):
    grid, bins = 5, 4
    if name == 'actor':
        volume = figures.actor_map(np.array([[30.0, 40.0, 0.1], [30.2, 40.1, 0.1]]), grid,
                                   bins)
        assert volume.max() == 1.0 and volume.sum() == 1.0
    else:
        config = load_config('tiny')
        torch.manual_seed(0)
        model = ActorCritic(config).eval()
        image = torch.zeros(1, 3, config.image_size, config.image_size)
        with torch.inference_mode():
            volume = figures.critic_map(model, model.features(image), grid, bins)
        assert volume.shape == (bins, grid, grid)
        assert 0.0 <= volume.min() and volume.max() <= 1.0


def test_modes_figure_crosses_the_simulator_failures(tmp_path):
    from fga_ros.core.analysis.oracle_experiment import modes_figure
    scene = sim.make_scene('H', 0)
    gt = sim.ground_truth(scene)
    rng = np.random.default_rng(0)
    actions = np.vstack([gt.sample_feasible(50, rng), np.column_stack(
        [rng.uniform(25, 103, (50, 2)), rng.uniform(0, np.pi, 50)])])
    results = {'js': {'actions': actions, 'accuracy': 0.5, 'modes_visited': gt.num_modes,
                      'num_modes': gt.num_modes}}
    fig = modes_figure(results, scene, tmp_path / 'm.png')
    crosses = [line for line in fig.axes[0].lines if line.get_gid() == 'infeasible'][0]
    failed = ~sim.grasp_success(scene, actions)
    assert failed.sum() >= 40  # random grasps mostly fail
    np.testing.assert_allclose(crosses.get_xydata(), actions[failed, :2])
    labels = legend_labels(fig)
    assert labels == [f'mode {m}' for m in range(1, gt.num_modes + 1)] + [
        'no feasible grasp', 'infeasible sample']
