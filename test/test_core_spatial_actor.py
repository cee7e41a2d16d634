"""The spatial actor head: cell choice, placement, translation equivariance, training."""

import dataclasses

import pytest
import torch

from fga_ros.core.common.actions import CENTRE, HALF_WIDTH, decode_actor
from fga_ros.core.common.tensors import sample_latent
from fga_ros.core.estimators.divergences import RADIUS_MEAN, categorical_divergence
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.spatial_actor import BIN_OVERLAP, SpatialActor, choose_cells
from fga_ros.core.training import updates
from fga_ros.core.training.updates import actor_step_loss, cell_fkl_loss, cell_target

CHANNELS, GRID, IMAGE = 4, 22, 64


@pytest.fixture()
def actor():
    torch.manual_seed(0)
    return SpatialActor(CHANNELS, GRID, IMAGE, latent_dim=3, hidden=(16, 16))


def test_cells_are_drawn_with_their_probabilities():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3, 0.0]])
    z0 = 2.0 * torch.rand((1, 40000), generator=torch.Generator().manual_seed(0)) - 1.0
    cells = choose_cells(torch.log(probs), z0)
    freq = torch.bincount(cells[0], minlength=5).float() / z0.shape[1]
    torch.testing.assert_close(freq, probs[0], atol=0.01, rtol=0)
    # the ends of the latent range never pick a cell of probability 0
    ends = choose_cells(torch.log(probs), torch.tensor([[-1.0, 1.0, 1.0 - 1e-9]]))
    assert ends.tolist() == [[0, 3, 3]]


def test_cells_out_of_reach_of_the_workspace_are_never_chosen(actor):
    trunk = torch.randn(2, CHANNELS, GRID, GRID)
    log_probs = actor.cell_log_probs(trunk)
    centres = actor.centres
    inside = (centres.abs() <= 1.0).all(-1)
    far = (centres.abs() - actor.reach > 1.0).any(-1)
    assert torch.isfinite(log_probs[:, inside]).all()
    assert torch.isinf(log_probs[:, far]).all() and far.any()
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2))
    actions, log_choice = actor.act_on_trunk(trunk, 2.0 * torch.rand(2, 500, 4) - 1.0)
    assert torch.isfinite(log_choice).all()
    # a reachable cell's reach overlaps the workspace: its grasps lie within 2 reaches of it
    assert (actions[..., :2].abs() <= 1.0 + 2 * actor.reach + 1e-6).all()


def test_grasps_are_placed_within_reach_of_their_cell(actor):
    trunk = torch.randn(1, CHANNELS, GRID, GRID)
    z = 2.0 * torch.rand(1, 300, 4) - 1.0
    actions, log_choice = actor.act_on_trunk(trunk, z)
    log_probs = actor.cell_log_probs(trunk)
    cells = choose_cells(log_probs, z[..., 0])
    offset = actions[..., :2] - actor.centres[cells]
    assert (offset.abs() <= actor.reach + 1e-6).all()
    torch.testing.assert_close(log_choice, torch.gather(log_probs, 1, cells))
    # one cell is 3 network pixels = 6 observation pixels at a 64-pixel input
    cell_px = (actor.centres[1, 0] - actor.centres[0, 0]) * HALF_WIDTH
    assert cell_px.item() == pytest.approx(6.0)
    assert (actor.centres[0] * HALF_WIDTH + CENTRE).tolist() == pytest.approx([1.0, 1.0])


def test_what_is_learnt_at_one_place_holds_at_every_place(actor):
    """Moving the image content by whole cells moves the cell scores and the grasps."""
    trunk = torch.zeros(1, CHANNELS, GRID, GRID)
    trunk[0, :, 8:11, 7:10] = torch.randn(CHANNELS, 3, 3)
    moved = torch.roll(trunk, shifts=(2, 3), dims=(2, 3))  # 2 cells down, 3 right
    logits = actor.cell_scores(trunk)[0, 0]
    logits_moved = actor.cell_scores(moved)[0, 0]
    torch.testing.assert_close(logits_moved[10:13, 10:13], logits[8:11, 7:10])
    z = 2.0 * torch.rand(1, 5, 3) - 1.0
    cell = torch.full((1, 5), 9 * GRID + 8)
    grasps = actor.place(trunk, cell, z)
    grasps_moved = actor.place(moved, cell + 2 * GRID + 3, z)
    step = actor.centres[1, 0] - actor.centres[0, 0]
    torch.testing.assert_close(grasps_moved[..., :2], grasps[..., :2] + torch.stack([3 * step,
                                                                                     2 * step]))
    torch.testing.assert_close(grasps_moved[..., 2:], grasps[..., 2:])


def test_bad_latents_are_rejected(actor):
    with pytest.raises(ValueError, match=r'z must have shape \(1, n, 4\)'):
        actor.act_on_trunk(torch.zeros(1, CHANNELS, GRID, GRID), torch.zeros(1, 5, 3))


@pytest.mark.parametrize('divergence, angle_bins', [
    ('js', 1), ('fkl', 1), ('rkl', 1), ('gan', 1), ('me', 1), ('js', 4), ('gan', 4)])
def test_every_objective_trains_the_cell_choice_and_the_placement(tiny_config, divergence,
                                                                   angle_bins):
    config = dataclasses.replace(tiny_config, actor_head='spatial', divergence=divergence,
                                 critic_readout='local', actor_angle_bins=angle_bins)
    torch.manual_seed(0)
    model = ActorCritic(config)
    assert model.latent_dim == config.latent_dim + 1
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    loss, stats = actor_step_loss(model, config, images, torch.Generator().manual_seed(0))
    loss.backward()
    for part in (model.actor.cell_scores, model.actor.local):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in model.extractor.parameters())
    assert 0.0 <= stats['actor_score'] <= 1.0


def test_sampling_is_reproducible_with_a_generator(tiny_config):
    model = ActorCritic(dataclasses.replace(tiny_config, actor_head='spatial'))
    features = model.features(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    z = sample_latent(1, 6, model.latent_dim, torch.Generator().manual_seed(3))
    a = model.act(features, z)
    b = model.sample(features, 6, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_cell_target_follows_the_critic_and_the_cell_term_trains_only_the_scorer(
        tiny_config, monkeypatch):
    config = dataclasses.replace(tiny_config, actor_head='spatial', critic_readout='local',
                                 cell_fkl_weight=1.0)
    torch.manual_seed(0)
    model = ActorCritic(config)
    features = model.features(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    reachable = ~model.actor.unreachable
    # A critic that finds only grasps centred left of x_n = -0.5 feasible: cells wholly
    # left of it and in the workspace share the top probability, cells wholly right of it
    # or outside the workspace get only the floor, and cells across a border lie between.
    monkeypatch.setattr(model, 'score', lambda f, a: torch.where(a[..., 0] < -0.5, 20.0, -20.0))
    log_p = cell_target(model, features, points_per_cell=16)
    assert log_p.shape == (2, int(reachable.sum()))
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(2, dtype=log_p.dtype))
    half = 0.5 * model.actor.reach
    x, y = model.actor.centres[reachable].T
    inside = (x - half >= -1.0) & (x + half < -0.5) & (y.abs() + half <= 1.0)  # workspace
    outside = (x - half > -0.5) | (x + half < -1.0) | (y.abs() - half > 1.0)
    probs = log_p.exp()
    top = probs[:, inside]
    torch.testing.assert_close(top, top[:, :1].expand_as(top))
    assert probs[:, outside].max() < 1e-6 * top.min()
    assert probs[:, ~inside & ~outside].max() <= top.min() + 1e-7
    assert probs[:, ~inside & ~outside].sum() > 0
    monkeypatch.undo()
    loss = cell_fkl_loss(model, features, torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() > 0
    # The gradient on the cell logits is pi - p (cross-entropy), here through the scorer.
    logits = model.actor.cell_scores(features.trunk.detach()).flatten(1)
    logits = logits[:, ~model.actor.unreachable].detach().requires_grad_()
    log_p = cell_target(model, features, generator=torch.Generator().manual_seed(0))
    categorical_divergence('fkl', torch.log_softmax(logits, -1), log_p).mean().backward()
    torch.testing.assert_close(logits.grad, (logits.softmax(-1) - log_p.exp()).detach() / 2)
    assert all(p.grad is not None for p in model.actor.cell_scores.parameters())
    assert all(p.grad is None for p in model.actor.local.parameters())
    assert all(p.grad is None for p in model.extractor.parameters())
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    actor_step_loss(model, config, images, torch.Generator().manual_seed(0))[0].backward()
    with pytest.raises(ValueError, match='cell_fkl_weight'):
        dataclasses.replace(config, divergence='gan')


def test_without_the_choice_surrogate_only_the_cell_term_trains_the_scorer(
        tiny_config, monkeypatch):
    """choice_surrogate_weight = 0: the scorer's gradient of the actor loss is exactly
    cell_fkl_weight times that of its cell_fkl_loss; with weight 1 the sampled term adds."""
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    cell_terms = []

    def recorded(*args, **kwargs):
        cell_terms.append(cell_fkl_loss(*args, **kwargs))
        return cell_terms[-1]

    monkeypatch.setattr(updates, 'cell_fkl_loss', recorded)

    def scorer_grads(config):
        torch.manual_seed(0)
        model = ActorCritic(config)
        params = list(model.actor.cell_scores.parameters())
        loss = actor_step_loss(model, config, images, torch.Generator().manual_seed(1))[0]
        total = torch.autograd.grad(loss, params, retain_graph=True)
        cell = torch.autograd.grad(config.cell_fkl_weight * cell_terms[-1], params)
        return total, cell

    config = dataclasses.replace(tiny_config, actor_head='spatial', critic_readout='local',
                                 cell_fkl_weight=0.5, choice_surrogate_weight=0.0)
    total, cell = scorer_grads(config)
    for got, want in zip(total, cell):
        torch.testing.assert_close(got, want)
    total, cell = scorer_grads(dataclasses.replace(config, choice_surrogate_weight=1.0))
    assert any(not torch.allclose(got, want) for got, want in zip(total, cell))
    with pytest.raises(ValueError, match='choice_surrogate_weight'):
        dataclasses.replace(config, cell_fkl_weight=0.0)
    with pytest.raises(ValueError, match='choice_surrogate_weight'):
        dataclasses.replace(config, choice_surrogate_weight=-1.0)


def test_with_angle_bins_each_choice_places_alpha_in_its_bin():
    torch.manual_seed(0)
    bins = 4
    actor = SpatialActor(CHANNELS, GRID, IMAGE, latent_dim=3, hidden=(16, 16),
                         angle_bins=bins)
    trunk = torch.randn(2, CHANNELS, GRID, GRID)
    log_probs = actor.cell_log_probs(trunk)
    assert log_probs.shape == (2, GRID * GRID * bins)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2))
    # the bins of one cell share its reach: all reachable or all not
    assert (actor.unreachable.reshape(-1, bins) == actor.unreachable[::bins, None]).all()
    z = 2.0 * torch.rand(2, 2000, 4) - 1.0
    actions, log_choice = actor.act_on_trunk(trunk, z)
    choices = choose_cells(log_probs, z[..., 0])
    torch.testing.assert_close(log_choice, torch.gather(log_probs, 1, choices))
    # alpha lies in the chosen bin or at most BIN_OVERLAP of a bin past its edges (mod pi)
    width = torch.pi / bins
    alpha = decode_actor(actions)[..., 2]
    middle = (choices % bins + 0.5) * width
    past_middle = torch.remainder(alpha - middle + 0.5 * torch.pi, torch.pi) - 0.5 * torch.pi
    assert (past_middle.abs() <= (0.5 + BIN_OVERLAP) * width + 1e-5).all()
    assert len(torch.unique(choices % bins)) == bins
    offset = actions[..., :2] - actor.centres[choices // bins]
    assert (offset.abs() <= actor.reach + 1e-6).all()
    # the radius lies in (0, 2 RADIUS_MEAN): the radius weight's peak is reachable
    radius = actions[..., 2:].norm(dim=-1)
    assert (radius < 2.0 * RADIUS_MEAN).all() and (radius > 0.0).all()


def test_with_angle_bins_alpha_is_continuous_in_the_mlp_output():
    """Sweeping the MLP's angle output over (-1, 1) moves alpha steadily across the bin and
    its overlaps, without the jump from one edge to the other of an atan2 map."""
    actor = SpatialActor(CHANNELS, GRID, IMAGE, latent_dim=3, hidden=(16,), angle_bins=4)
    out = torch.stack([torch.linspace(-0.999, 0.999, 2001), torch.zeros(2001)], dim=-1)
    sin_cos = actor._into_bin(out[None], torch.full((1, 2001), 2))[0]
    twice_alpha = torch.atan2(sin_cos[:, 0], sin_cos[:, 1])
    steps = torch.remainder(twice_alpha.diff() + torch.pi, 2.0 * torch.pi) - torch.pi
    assert (steps > 0).all() and steps.max() < 1e-2
    torch.testing.assert_close(sin_cos.norm(dim=-1), torch.full((2001,), RADIUS_MEAN))
    span = (0.5 + BIN_OVERLAP) * 2.0 * torch.pi / 4
    centre = 2.0 * torch.pi * 2.5 / 4
    torch.testing.assert_close(steps.sum(), torch.tensor(2 * 0.999 * span), atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(twice_alpha[1000] % (2 * torch.pi), torch.tensor(centre))


def test_cell_target_with_angle_bins_follows_the_critic_in_alpha(tiny_config, monkeypatch):
    config = dataclasses.replace(tiny_config, actor_head='spatial', critic_readout='local',
                                 actor_angle_bins=4, cell_fkl_weight=1.0)
    torch.manual_seed(0)
    model = ActorCritic(config)
    features = model.features(torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8))
    # feasible only for alpha in [0, pi / 4), i.e. 2 alpha in [0, pi / 2): bin 0 of 4
    monkeypatch.setattr(model, 'score', lambda f, a: torch.where(
        (a[..., 2] >= 0) & (a[..., 3] > 0), 20.0, -20.0))
    probs = cell_target(model, features, points_per_cell=8).exp()[0]
    choices = torch.nonzero(~model.actor.unreachable).squeeze(1)
    inside = (model.actor.centres[choices // 4].abs() + 0.5 * model.actor.reach <= 1.0).all(-1)
    in_bin0 = probs[(choices % 4 == 0) & inside]
    torch.testing.assert_close(in_bin0, in_bin0[:1].expand_as(in_bin0))
    assert probs[choices % 4 != 0].max() < 1e-6 * in_bin0.min()
    monkeypatch.undo()
    loss = cell_fkl_loss(model, features, torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for p in model.actor.cell_scores.parameters())


def test_angle_bins_need_the_spatial_head(tiny_config):
    with pytest.raises(ValueError, match='actor_angle_bins > 1 needs actor_head: spatial'):
        dataclasses.replace(tiny_config, actor_head='flat', actor_angle_bins=2)
    with pytest.raises(ValueError, match='actor_angle_bins must be > 0'):
        dataclasses.replace(tiny_config, actor_head='spatial', actor_angle_bins=0)
