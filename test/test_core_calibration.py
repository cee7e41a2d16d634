"""Calibration, novelty gate and abstention; the bundled model's stored calibration."""

import math

import numpy as np
import pytest
import torch

from fga_ros import sim
from fga_ros.core.analysis.calibration_fit import (
    CALIBRATION_TURNS,
    Candidates,
    choose_scaling,
    novel_scenes,
)
from fga_ros.core.analysis.evaluation import evaluation_scenes
from fga_ros.core.analysis.ood_images import ood_images
from fga_ros.core.common.actions import encode_actions, turn_critic_inputs
from fga_ros.core.common.tensors import images_to_tensor
from fga_ros.core.inference.calibration import (
    Calibration,
    NoveltyGate,
    expected_calibration_error,
    fit_novelty_gate,
    fit_platt,
    gate_verdict,
    gates_from_meta,
    reliability_bins,
    texture_features,
)
from fga_ros.core.inference.constraints import TaskConstraints, rectangle
from fga_ros.core.inference.defaults import SCORE_FLOOR
from fga_ros.core.inference.proposer import Proposer
from fga_ros.core.models.model_file import export_model


def test_fit_platt_recovers_temperature_and_bias():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 4.0, 200_000)
    labels = rng.random(len(logits)) < 1.0 / (1.0 + np.exp(-(logits / 2.0 + 0.5)))
    temperature, bias = fit_platt(logits, labels)
    assert temperature == pytest.approx(2.0, rel=0.03) and bias == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match='both outcomes'):
        fit_platt([1.0, 2.0], [True, True])


def test_fit_platt_weights_act_as_repeated_samples():
    rng = np.random.default_rng(2)
    logits = rng.normal(0.0, 3.0, 4000)
    labels = rng.random(len(logits)) < 1.0 / (1.0 + np.exp(-logits))
    weights = rng.integers(0, 4, len(logits))
    repeated = fit_platt(np.repeat(logits, weights), np.repeat(labels, weights))
    np.testing.assert_allclose(fit_platt(logits, labels, weights=weights), repeated, rtol=1e-6)
    with pytest.raises(ValueError, match='weights'):
        fit_platt(logits, labels, weights=-np.ones(len(logits)))


def test_ece_known_answer():
    # bin [0.2, 0.267): 2 scores 0.25, feasible 0 of 2 -> gap 0.25; bin of 0.95: 2 scores,
    # both feasible -> gap 0.05; ECE = (2 * 0.25 + 2 * 0.05) / 4 = 0.15
    scores, labels = [0.25, 0.25, 0.95, 0.95], [0, 0, 1, 1]
    assert expected_calibration_error(scores, labels) == pytest.approx(0.15)
    bins = reliability_bins(scores, labels)
    assert bins['count'].sum() == 4 and len(bins['edges']) == 16
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == pytest.approx(0.0)


def test_calibration_and_gate_round_trip_through_meta():
    cal = Calibration(1.7, -0.3, (('shapes', ['H']),))
    again = Calibration.from_meta({'calibration': cal.to_meta()})
    assert (again.temperature, again.bias, again.fitted) == (1.7, -0.3, True)
    assert not Calibration.from_meta({}).fitted
    np.testing.assert_allclose(again.scores(np.array([0.0])), 1 / (1 + math.exp(0.3)))
    rng = np.random.default_rng(1)
    gate = fit_novelty_gate(rng.normal(size=(400, 3)), rng.normal(size=(400, 3)), 0.99)
    loaded = NoveltyGate.from_meta({'novelty': gate.to_meta()})
    np.testing.assert_allclose(loaded.distances([[10.0, 0, 0]]), gate.distances([[10.0, 0, 0]]))
    assert gate.distances([[10.0, 0, 0]])[0] > gate.threshold
    with pytest.raises(ValueError, match='temperature'):
        Calibration.from_meta({'calibration': {'method': 'platt', 'temperature': -1,
                                               'bias': 0}})


def _platt(**extra):
    return {'calibration': {'method': 'platt', 'temperature': 1.0, 'bias': 0.0, **extra}}


def test_views_and_bounds_of_a_stored_calibration():
    cal = Calibration(1.2, 0.4, (('shapes', ['H']),), ((0, 1, 2), (1, 2, 0)), CALIBRATION_TURNS)
    again = Calibration.from_meta({'calibration': cal.to_meta()})
    assert (again.views, again.turns, again.num_views) == (cal.views, CALIBRATION_TURNS, 8)
    older = Calibration.from_meta(_platt())  # older files: the image alone
    assert (older.views, older.turns) == (((0, 1, 2),), (0,))
    for turns in ([1, 0], [0, 0], [0, 4], [0, 1.0], [0, True], 'x', [0, 1, 2, 3, 1], [0, [1]]):
        with pytest.raises(ValueError, match='quarter_turns'):
            Calibration.from_meta(_platt(quarter_turns=turns))
    for views, problem in (([[1, 2, 0]], 'identity first'), ([[0, 1, 2], [0, 1, 2]], 'distinct'),
                           ([[0, 1, 2], [0, 1, 1]], 'orders'), ([[0, 1, 2]] * 7, 'at most'),
                           ('rgb', 'list')):
        with pytest.raises(ValueError, match=problem):
            Calibration.from_meta(_platt(views=views))
    for field, value in (('temperature', 1e6), ('bias', 1e3), ('bias', float('nan')),
                         ('temperature', '2'), ('bias', True)):
        with pytest.raises(ValueError, match=field):
            Calibration.from_meta(_platt(**{field: value}))


def test_texture_statistic_known_answer():
    trunk = torch.zeros(1, 2, 4, 4)
    trunk[0, 0, :, 1::2] = 1.0  # channel 0: stripes across, flat down
    trunk[0, 1] = 5.0  # channel 1: constant
    np.testing.assert_allclose(texture_features(trunk).numpy(), [[1.0, 0.0, 0.0, 0.0]])


def test_texture_gate_round_trip_and_malformed_gates():
    rng = np.random.default_rng(3)
    gate = fit_novelty_gate(rng.normal(size=(300, 4)), rng.normal(size=(300, 4)), 0.99,
                            statistic='texture')
    meta = {'novelty_texture': gate.to_meta()}
    (loaded,) = gates_from_meta(meta)
    assert loaded.statistic == 'texture' and loaded.threshold == gate.threshold
    trunk = torch.zeros(1, 2, 4, 4)
    trunk[0, :, :, 1::2] = 30.0  # far from the fitted statistics
    novelty, why = gate_verdict([loaded], trunk)
    assert novelty > gate.threshold and why.startswith('texture novelty')
    assert gate_verdict([], trunk) == (pytest.approx(math.nan, nan_ok=True), '')
    bad = dict(meta['novelty_texture'], features='trunk channel mean and std')
    with pytest.raises(ValueError, match='novelty_texture.*features'):
        gates_from_meta({'novelty_texture': bad})
    bad = dict(meta['novelty_texture'], precision=[[1.0]])
    with pytest.raises(ValueError, match='novelty_texture.*precision'):
        gates_from_meta({'novelty_texture': bad})
    bad = dict(meta['novelty_texture'], mean=[0.0] * 5000)
    with pytest.raises(ValueError, match='novelty_texture'):
        gates_from_meta({'novelty_texture': bad})


def test_novel_scenes_leave_the_training_ranges():
    family = sim.load_world().family('T')
    scenes = novel_scenes('T', 20, seed=4)
    assert [s.seed for s in scenes] == [s.seed for s in novel_scenes('T', 20, seed=4)]
    for scene in scenes:
        params = scene.params
        outside = [not lo <= params[name] <= hi for name, (lo, hi) in family.param_ranges]
        assert any(outside) and all(params[name] >= 0.5 * lo
                                    for name, (lo, _) in family.param_ranges)


@pytest.fixture(scope='module')
def bundled():
    return Proposer.from_checkpoint(None, seed=0)


def test_bundled_model_is_calibrated_and_gated(bundled):
    state = bundled.snapshot()
    assert state.calibration.fitted and state.calibration.turns == CALIBRATION_TURNS
    assert [gate.statistic for gate in state.gates] == ['pooled', 'texture']
    assert set(dict(state.calibration.info)['shapes']) == set(sim.train_shapes())


def test_view_logits_are_the_mean_over_turned_images(bundled):
    state = bundled.snapshot()
    cal = Calibration(views=((0, 1, 2), (2, 0, 1)), turns=(0, 1, 3))
    image = sim.render(evaluation_scenes('Spoon', 1, seed=2)[0])
    inputs = torch.rand(7, 4) * 2.0 - 1.0
    with torch.inference_mode():
        features = state.model.features(images_to_tensor(image, state.config.image_size))
        mean = cal.logits(state.model, features, inputs)
        each = [state.model.score(state.model.features(images_to_tensor(
            np.ascontiguousarray(np.rot90(image[..., list(view)], turn, axes=(0, 1))),
            state.config.image_size)), turn_critic_inputs(inputs, turn)[None])[0]
            for turn in cal.turns for view in cal.views]
    assert len(each) == cal.num_views == 6
    torch.testing.assert_close(mean, torch.stack(each).mean(dim=0), atol=1e-4, rtol=1e-4)
    stacked = cal.view_images(images_to_tensor(image, state.config.image_size))
    for k, (turn, view) in enumerate((t, v) for t in cal.turns for v in cal.views):
        torch.testing.assert_close(stacked[k], images_to_tensor(np.ascontiguousarray(
            np.rot90(image[..., list(view)], turn, axes=(0, 1))), state.config.image_size)[0])


def test_proposal_scores_are_the_calibrated_mean_over_the_views(bundled):
    """The proposer scores the image and its views in one batched pass: the same scores as
    the calibration's own mean logit over the views, computed view by view."""
    state = bundled.snapshot()
    image = sim.render(evaluation_scenes('T', 1, seed=5)[0])
    for explore in (0, 64):
        proposal = bundled.propose(image, num_grasps=32, seed=1, explore=explore, floor=0.0)
        with torch.inference_mode():
            features = state.model.features(images_to_tensor(image, state.config.image_size))
            inputs = encode_actions(torch.tensor(proposal.actions, dtype=torch.float32))
            expected = state.calibration.scores(
                state.calibration.logits(state.model, features, inputs))
        np.testing.assert_allclose(proposal.scores, expected.numpy(), atol=1e-4)


def _sets(shifts, rng, familiar=0.0):
    """Candidates whose true logit is l + familiar (familiar sets) or l + shift (novel sets,
    one shift per family)."""
    def candidates(shift):
        logits = rng.normal(1.0, 2.0, 20_000)
        feasible = rng.random(len(logits)) < 1.0 / (1.0 + np.exp(-(logits + shift)))
        return Candidates(logits, feasible, np.zeros(len(logits), dtype=np.int64), {})
    return {'familiar': [candidates(familiar) for _ in shifts],
            'novel': [candidates(shift) for shift in shifts]}


def test_choose_scaling_keeps_a_fit_only_where_it_carries_to_a_left_out_family():
    rng = np.random.default_rng(4)
    (temperature, bias), report = choose_scaling(_sets([-1.0] * 4, rng, familiar=-1.0))
    assert report['kept'] == 'fitted' and bias == pytest.approx(-1.0, abs=0.1)  # it carries
    # families disagree: a fit on three misleads on the fourth, the identity is kept
    (temperature, bias), report = choose_scaling(_sets([-1.5, 1.5, -1.5, 1.5], rng))
    assert report['kept'] == 'identity' and (temperature, bias) == (1.0, 0.0)
    assert len(report['identity']['novel']) == 4
    (_, _), report = choose_scaling(_sets([-1.0], rng))
    assert report == {'kept': 'fitted'}  # one family: nothing to leave out


def test_a_gate_for_another_model_is_refused(bundled):
    state = bundled.snapshot()
    rng = np.random.default_rng(5)
    small = fit_novelty_gate(rng.normal(size=(50, 4)), rng.normal(size=(50, 4)), 0.9)
    with pytest.raises(ValueError, match='another model'):
        Proposer(state.model, state.config, meta={'novelty': small.to_meta()})


def test_a_model_file_with_bad_views_is_refused_and_the_old_model_kept(bundled, tmp_path):
    state = bundled.snapshot()
    for field, value in (('quarter_turns', [0, 9]), ('quarter_turns', list(range(5000))),
                         ('views', [[0, 1, 2]] * 5000)):
        meta = dict(state.meta, calibration=dict(state.meta['calibration'], **{field: value}))
        path = tmp_path / f'{field}.pt'
        export_model(path, state.model, state.config, meta)
        with pytest.raises(ValueError, match=field):
            bundled.reload(path)
        assert bundled.snapshot() is state  # still serving the model it had


def test_images_without_an_object_abstain(bundled):
    images = ood_images(200, seed=5)
    answered = [kind for kind, image in images if not bundled.propose(image, seed=0).abstained]
    assert len(answered) <= 2, f'confident grasps on {answered}'  # >= 99 % abstain
    proposal = bundled.propose(images[0][1], seed=0)
    assert len(proposal) == 0 and 'abstained' in proposal.message
    noisy = next(image for kind, image in images if kind == 'gaussian_noise'
                 and image.std() > 40)  # the kind the pooled gate alone let through
    assert 'texture novelty' in bundled.propose(noisy, seed=0).message


def test_real_scenes_get_grasps_above_the_floor_first(bundled):
    for shape in sim.train_shapes():
        for scene in evaluation_scenes(shape, 2, seed=11):
            proposal = bundled.propose(sim.render(scene), seed=0)
            assert not proposal.abstained, (shape, proposal.message)
            above = proposal.scores >= SCORE_FLOOR
            assert above[0] and not np.any(np.diff(above.astype(int)) > 0)  # no below-above
            assert proposal.cluster_ids.min() >= 1


def test_constrained_proposals_stay_inside_or_answer_why(bundled):
    scene = evaluation_scenes('H', 1, seed=3)[0]
    image = sim.render(scene)
    left = TaskConstraints(region=rectangle(25, 25, 64, 103))
    proposal = bundled.propose(image, seed=0, constraints=left)
    assert not proposal.abstained and np.all(proposal.actions[:, 0] <= 64.0)
    corner = TaskConstraints(region=rectangle(25, 25, 27, 27), min_score=0.9)
    proposal = bundled.propose(image, seed=0, constraints=corner, time_budget=0.05)
    assert proposal.abstained and len(proposal) == 0
    assert 'constraints' in proposal.message and 'region' in proposal.message
