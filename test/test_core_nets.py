"""Action-space conversions and the networks of appendix B."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fga_ros.core.common.actions import (
    CENTRE,
    HALF_WIDTH,
    decode_actor,
    encode_actions,
    normalise_actor_output,
    radius,
)
from fga_ros.core.common.choices import ACTOR_HEADS, CRITIC_READOUTS
from fga_ros.core.common.config import load_config
from fga_ros.core.common.tensors import images_to_tensor, resize_images, sample_latent
from fga_ros.core.models.heads import ActorHead, ActorOutput
from fga_ros.core.models.local_critic import LocalCritic
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.spatial_actor import SpatialActor
from fga_ros.sim import WORKSPACE_HI, WORKSPACE_LO
from fga_ros.sim.workspace import MAX_COORD, uniform_actions, wrap_alpha


@pytest.fixture(scope='module')
def config(tiny_config):
    return tiny_config


@pytest.fixture()
def model(config):
    torch.manual_seed(0)
    return ActorCritic(config)


@pytest.fixture(params=[(a, c) for a in ACTOR_HEADS for c in CRITIC_READOUTS],
                ids=lambda p: f'{p[0]}-actor-{p[1]}-critic')
def any_model(config, request):
    """A model with each actor head and critic readout."""
    torch.manual_seed(0)
    actor_head, critic_readout = request.param
    return ActorCritic(dataclasses.replace(config, actor_head=actor_head,
                                           critic_readout=critic_readout))


# -- actions ------------------------------------------------------------------------------

def test_workspace_maps_to_unit_square():
    assert (CENTRE, HALF_WIDTH) == (64.0, 39.0)
    corners = encode_actions(np.array([[25.0, 25.0, 0.0], [103.0, 64.0, math.pi / 4]]))
    np.testing.assert_allclose(corners, [[-1, -1, 0, 1], [1, 0, 1, 0]], atol=1e-12)


def test_encode_decode_round_trip():
    px = uniform_actions(500, np.random.default_rng(0))
    back = decode_actor(encode_actions(px))
    np.testing.assert_allclose(back, px, atol=1e-9)
    assert np.all((back[:, 2] >= 0) & (back[:, 2] < math.pi))


def test_doubled_angle_is_periodic_and_continuous():
    base = np.array([[60.0, 70.0, 0.3]])
    shifted = base + [0.0, 0.0, math.pi]
    np.testing.assert_allclose(encode_actions(shifted), encode_actions(base), atol=1e-12)
    near_zero = encode_actions(np.array([[60.0, 70.0, 1e-4]]))
    near_pi = encode_actions(np.array([[60.0, 70.0, math.pi - 1e-4]]))
    np.testing.assert_allclose(near_zero, near_pi, atol=1e-3)


def test_decode_ignores_radius_and_wraps():
    out = np.array([[0.0, 0.0, 0.3 * math.sin(-0.2), 0.3 * math.cos(-0.2)],
                    [0.0, 0.0, 1.2 * math.sin(-0.2), 1.2 * math.cos(-0.2)],
                    [0.0, 0.0, -1e-18, -1.0],  # phi = -pi, on the atan2 branch cut
                    [0.0, 0.0, -1e-18, 1.0]])  # phi a hair below 0: alpha wraps to ~0
    px = decode_actor(out)
    np.testing.assert_allclose(px[:2, 2], math.pi - 0.1)
    np.testing.assert_allclose(px[2, 2], math.pi / 2)
    assert 0.0 <= px[3, 2] < 1e-12
    np.testing.assert_allclose(px[:, :2], 64.0)


def test_decode_clips_into_half_open_workspace():
    px = decode_actor(np.array([[-3.0, 1.0, 0.0, 1.0], [1.0 + 1e-9, -1.0, 0.0, 1.0]]))
    assert px[0, 0] == WORKSPACE_LO and px[0, 1] == MAX_COORD
    assert MAX_COORD < WORKSPACE_HI and np.float32(MAX_COORD) < WORKSPACE_HI
    assert px[1, 1] == WORKSPACE_LO


def test_wrap_alpha_never_returns_pi():
    values = np.array([-1e-17, -math.pi, math.pi, 2 * math.pi - 1e-16, 7.0])
    wrapped = wrap_alpha(values)
    assert np.all((wrapped >= 0) & (wrapped < math.pi))
    np.testing.assert_array_equal(wrapped[:4], 0.0)
    assert wrapped[4] == 7.0 - 2 * math.pi
    for dtype in (torch.float32, torch.float64):
        tensor = wrap_alpha(torch.tensor([-1e-9, -1e-17, 7.0], dtype=dtype))
        assert tensor.dtype == dtype and bool(((tensor >= 0) & (tensor < math.pi)).all())


def test_torch_and_numpy_agree_and_keep_gradients():
    px = uniform_actions(20, np.random.default_rng(1))
    out = np.random.default_rng(2).normal(size=(20, 4))
    np.testing.assert_allclose(encode_actions(torch.tensor(px)).numpy(), encode_actions(px))
    np.testing.assert_allclose(decode_actor(torch.tensor(out)).numpy(), decode_actor(out))
    np.testing.assert_allclose(radius(torch.tensor(out)).numpy(), radius(out))
    t = torch.tensor(out, requires_grad=True)
    normalise_actor_output(t).sum().backward()
    assert t.grad is not None and torch.isfinite(t.grad).all()


def test_normalise_gives_unit_angle_part():
    out = np.array([[0.5, -0.2, 0.3, -0.4], [0.1, 0.1, 0.0, 0.0]])
    crit = normalise_actor_output(out)
    np.testing.assert_allclose(crit[0], [0.5, -0.2, 0.6, -0.8])
    np.testing.assert_allclose(radius(out), [0.5, 0.0])
    assert np.all(np.isfinite(crit))
    np.testing.assert_allclose(decode_actor(crit), decode_actor(out))


def test_action_shape_errors():
    with pytest.raises(ValueError, match=r'actions must have shape \(\.\.\., 3\)'):
        encode_actions(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r'actor outputs must have shape \(\.\.\., 4\)'):
        decode_actor(np.zeros(3))


def test_uniform_actions_in_range():
    px = uniform_actions(1000, np.random.default_rng(3))
    assert px.shape == (1000, 3)
    assert np.all((px[:, :2] >= WORKSPACE_LO) & (px[:, :2] < WORKSPACE_HI))
    assert np.all((px[:, 2] >= 0) & (px[:, 2] < math.pi))


# -- networks -----------------------------------------------------------------------------

def _images(config, count, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, config.image_size, config.image_size, 3))
    return images_to_tensor(images.astype(np.uint8), config.image_size)


def test_shapes(config, any_model):
    model = any_model
    images = _images(config, 3)
    features = model.features(images)
    grid = (config.image_size - 1) // 3 + 1
    assert features.num_states == 3
    assert features.trunk.shape == (3, config.embed_channels, grid, grid)
    assert model.extractor.feature_dim == config.pixel_mlp_channels[-1] * grid * grid
    assert features.flat.shape == (3, model.extractor.feature_dim)
    z = sample_latent(3, 5, model.latent_dim)
    actions = model.act(features, z)
    assert actions.shape == (3, 5, 4)
    assert actions[..., 2:].abs().max() <= 1.0
    # the spatial head's grasps may leave the workspace by up to two cell reaches (they get
    # zero target density there, and decode_actor clips them)
    reach = 2 * model.actor.reach if isinstance(model.actor, SpatialActor) else 0.0
    assert actions[..., :2].abs().max() <= 1.0 + reach
    assert model.score(features, normalise_actor_output(actions)).shape == (3, 5)
    assert model.sample(features, 7).shape == (3, 7, 4)


def test_latent_is_uniform_in_the_cube():
    z = sample_latent(4, 2000, 3, generator=torch.Generator().manual_seed(0))
    assert z.shape == (4, 2000, 3)
    assert z.min() >= -1 and z.max() <= 1
    assert abs(z.mean().item()) < 0.02


def test_uint8_and_float_inputs_agree(config, model):
    images = _images(config, 2)
    np.testing.assert_allclose(model.features(images).trunk.detach(),
                               model.features(images.float() / 255.0).trunk.detach(), atol=1e-5)


def test_bad_images_are_rejected(config, any_model):
    model = any_model
    with pytest.raises(ValueError, match=r'images must have shape \(S, 3, 32, 32\)'):
        model.features(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match='uint8 or floating point'):
        model.features(torch.zeros(1, 3, 32, 32, dtype=torch.int32))
    features = model.features(_images(config, 2))
    with pytest.raises(ValueError, match=r'second input must have shape \(2, n, 4\)'):
        model.score(features, torch.zeros(3, 5, 4))


def test_batched_heads_equal_per_action_loop(config, model):
    """The split first layer equals one MLP on concat(features, extra), action by action."""
    images = _images(config, 2, seed=1)
    features = model.features(images)
    z = sample_latent(2, 6, config.latent_dim, generator=torch.Generator().manual_seed(1))
    crit_in = normalise_actor_output(model.act(features, z))
    batched_actor = model.act(features, z)
    batched_critic = model.score(features, crit_in)

    def reference(head, feats, extra):
        weight = torch.cat([head.image_in.weight, head.extra_in.weight], dim=1)
        h = torch.relu(torch.nn.functional.linear(torch.cat([feats, extra]), weight,
                                                  head.image_in.bias))
        return head.tail(h)

    for s in range(2):
        for i in range(6):
            actor = torch.tanh(reference(model.actor.head, features.flat[s], z[s, i]))
            critic = reference(model.critic.head, features.flat[s], crit_in[s, i])
            torch.testing.assert_close(batched_actor[s, i], actor, atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(batched_critic[s, i], critic[0], atol=1e-6, rtol=1e-5)


def _grads(params):
    return [p.grad for p in params]


def test_actor_loss_does_not_reach_the_extractor(config, any_model):
    model = any_model
    features = model.features(_images(config, 2))
    actions, log_choice = model.sample_with_choice(features, 8)
    loss = actions.square().sum()
    if log_choice is not None:  # the spatial head's cell scores learn through it only
        loss = loss + log_choice.sum()
    loss.backward()
    assert all(g is None for g in _grads(model.extractor.parameters()))
    assert all(g is None for g in _grads(model.critic.parameters()))
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(model.actor_parameters()))


def test_both_actor_heads_keep_one_contract(config, any_model):
    """Whichever head, the actor takes ImageFeatures and latents and returns ActorOutput;
    only a head that makes a discrete choice returns its log-probabilities."""
    model = any_model
    assert isinstance(model.actor, ActorHead)
    features = model.features(_images(config, 3))
    z = sample_latent(3, 5, model.latent_dim, torch.Generator().manual_seed(0))
    out = model.actor(features, z)
    assert isinstance(out, ActorOutput) and out.actions.shape == (3, 5, 4)
    if isinstance(model.actor, SpatialActor):
        assert out.choice_log_probs.shape == (3, 5) and (out.choice_log_probs <= 0).all()
    else:
        assert out.choice_log_probs is None
    torch.testing.assert_close(model.act(features, z), out.actions)


def test_critic_loss_trains_extractor_and_critic_only(config, any_model):
    model = any_model
    features = model.features(_images(config, 4))
    actions = torch.tensor(encode_actions(uniform_actions(4, np.random.default_rng(0))),
                           dtype=torch.float32)[:, None]
    logits = model.score(features, actions)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)) \
        .backward()
    assert all(g is None for g in _grads(model.actor_parameters()))
    # every part of the extractor, the pixel-wise MLP included, learns from the critic
    for part in (model.extractor.embed, model.extractor.blocks, model.extractor.pixel_mlp):
        assert any(g is not None and g.abs().sum() > 0 for g in _grads(part.parameters()))
    assert all(g is not None for g in _grads(model.critic_parameters()))


def test_optimiser_groups_partition_the_parameters(any_model):
    actor = {id(p) for p in any_model.actor_parameters()}
    critic = {id(p) for p in any_model.critic_parameters()}
    assert not actor & critic
    assert actor | critic == {id(p) for p in any_model.parameters()}


# -- local critic readout -----------------------------------------------------------------

def _inputs(x, y, alpha):
    return torch.tensor(encode_actions(np.array([[x, y, alpha]])), dtype=torch.float32)[None]


@pytest.mark.parametrize('alpha', [0.0, 0.4, math.pi / 2, 2.5, math.pi - 1e-3])
def test_local_readout_samples_along_the_closing_direction(alpha):
    critic = LocalCritic(10, 8, 64, span=14.0, width=6.0, hidden=(8,))
    points = critic.trunk_points(_inputs(60.0, 70.0, alpha))[0, 0].numpy()
    offsets = points - [60.0, 70.0]
    np.testing.assert_allclose(offsets[[0, -1]].mean(0), 0.0, atol=1e-4)  # centred
    np.testing.assert_allclose(np.linalg.norm(offsets[-1]), 14.0, atol=1e-4)
    # parallel to the claws' closing direction (cos a, sin a), up to the gripper's symmetry
    direction = offsets[-1] / 14.0
    assert abs(abs(direction @ [math.cos(alpha), math.sin(alpha)]) - 1.0) < 1e-4
    raw = critic.raw_points(_inputs(60.0, 70.0, alpha))[0, 0].numpy() - [60.0, 70.0]
    across = raw @ [-math.sin(alpha), math.cos(alpha)]
    assert np.isclose(np.abs(across), 0.0, atol=1e-3).sum() == 9  # 9 along the centre line
    assert np.isclose(np.abs(across), 3.0, atol=1e-3).sum() == 18  # 9 on each side


@pytest.mark.parametrize('image_size', [32, 64, 128])
def test_local_readout_reads_the_pixel_under_the_point(image_size):
    """A point in network pixel (i, j) reads that pixel, whatever the network resolution."""
    scale = 128 // image_size
    rows, cols = np.mgrid[0:image_size, 0:image_size]
    image = torch.tensor(np.stack([cols, rows, cols * 0]), dtype=torch.float32)[None]
    i, j = 20 * image_size // 64, 37 * image_size // 64
    centre = torch.tensor([[[[(j + 0.5) * scale, (i + 0.5) * scale]]]])
    values = LocalCritic._sample(image, LocalCritic.image_grid(centre), False)[0, 0]
    np.testing.assert_allclose(values[:2].numpy(), [j, i], atol=1e-4)
    # a trunk cell c is centred on network pixel 3c
    trunk_side = (image_size - 1) // 3 + 1
    critic = LocalCritic(10, 3, image_size, span=14.0, width=6.0, hidden=(8,))
    rows, cols = np.mgrid[0:trunk_side, 0:trunk_side]
    trunk = torch.tensor(np.stack([cols, rows, cols * 0]), dtype=torch.float32)[None]
    c = 4
    centre = torch.tensor([[[[(3 * c + 0.5) * scale, (3 * c + 0.5) * scale]]]])
    values = LocalCritic._sample(trunk, critic.trunk_grid(centre, trunk_side), True)[0, 0]
    np.testing.assert_allclose(values[:2].numpy(), [c, c], atol=1e-4)


def test_positional_channels_are_not_in_the_state_dict(model):
    assert not any('positions' in k for k in model.state_dict())


def test_images_to_tensor_resizes():
    image = np.zeros((128, 128, 3), dtype=np.uint8)
    image[:64] = 255
    tensor = images_to_tensor(image, 64)
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == torch.uint8
    assert tensor[0, :, :32].min() == 255 and tensor[0, :, 32:].max() == 0
    assert resize_images(np.zeros((2, 5, 128, 128, 3), np.uint8), 32).shape == (2, 5, 32, 32, 3)
    with pytest.raises(ValueError, match='uint8'):
        resize_images(np.zeros((8, 8, 3)), 4)


def test_paper_and_cpu_models_build():
    for name, limit in (('cpu', 20 * 2**20), ('paper', None)):
        model = ActorCritic(load_config(name))
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        if limit:
            assert size <= limit


def test_local_critic_gradients_are_finite_at_axis_angles(config):
    """The pathwise ME baseline differentiates the critic w.r.t. actions, also at 0 and 90°."""
    model = ActorCritic(dataclasses.replace(config, critic_readout='local'))
    features = model.features(_images(config, 1))
    px = np.array([[[60.0, 60.0, 0.0], [60.0, 60.0, math.pi / 2], [50.0, 70.0, 1e-9]]])
    actions = torch.tensor(encode_actions(px), dtype=torch.float32, requires_grad=True)
    model.score(features, actions).sum().backward()
    assert torch.isfinite(actions.grad).all()
