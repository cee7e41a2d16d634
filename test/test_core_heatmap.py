"""The heat-map baselines H and SH (appendix D.1): shapes, rotations, cells, eq. 14."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from fga_ros.core.common.actions import decode_actor, encode_actions, normalise_actor_output
from fga_ros.core.common.config import TrainConfig, load_config
from fga_ros.core.models.heatmap_geometry import (
    cell_actions,
    nearest_angle_bin,
    rotate,
    workspace_cells,
)
from fga_ros.core.models.heatmap_nets import HeatmapModel
from fga_ros.core.models.heatmap_sampling import eq14_log_probs, sample_eq14
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.models.networks import build_network
from fga_ros.sim.workspace import WORKSPACE_HI, WORKSPACE_LO

pytestmark = pytest.mark.usefixtures('one_thread')
METHODS = ('heatmap', 'stacked-heatmap')


def _config(method, **overrides):
    return dataclasses.replace(load_config('tiny'), method=method, **overrides)


def _model(method, seed=0, **overrides):
    torch.manual_seed(seed)
    return build_network(_config(method, **overrides)).eval()


def _images(count, side=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, side, side), dtype=torch.uint8, generator=generator)


# -- networks ------------------------------------------------------------------------------


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('angles', [16, 5])
def test_output_shapes(method, angles):
    model = _model(method, heatmap_angles=angles)
    assert isinstance(model, HeatmapModel) and model.actor_parameters() == []
    features = model.features(_images(3))
    assert features.trunk.shape == (3, angles, 32, 32)
    assert features.flat.shape == (3, angles * 32 * 32)
    samples = model.sample(features, 7, torch.Generator().manual_seed(1))
    assert samples.shape == (3, 7, 4)
    critic_inputs = normalise_actor_output(samples)
    assert model.score(features, critic_inputs).shape == (3, 7)
    assert model.logits_at(_images(3), critic_inputs).shape == (3, 7)


def test_the_methods_build_their_own_networks():
    assert isinstance(build_network(load_config('tiny')), ActorCritic)
    channels = {m: _model(m).network.output.out_channels for m in METHODS}
    assert channels == {'heatmap': 1, 'stacked-heatmap': 16}


@pytest.mark.parametrize('method', METHODS)
def test_the_network_is_translation_equivariant(method):
    """No positional channels: shifting the image shifts the heat maps (away from borders)."""
    model = _model(method, image_size=64)
    image = torch.zeros((1, 3, 64, 64), dtype=torch.uint8)
    image[..., 24:30, 20:40] = 255
    shifted = torch.roll(image, shifts=(6, 9), dims=(2, 3))
    with torch.no_grad():
        net = model.network
        a = net(image.float() / 127.5 - 1.0)
        b = net(shifted.float() / 127.5 - 1.0)
    # shifts by a multiple of the stride (3) keep the sampling grid; compare the interior
    assert torch.allclose(a[..., 12:44, 12:44], b[..., 18:50, 21:53], atol=1e-5)


@pytest.mark.parametrize('method', METHODS)
def test_score_reads_the_drawn_cell_and_logits_at_agrees(method):
    """A drawn cell's centre and bin read back its own heat-map value; the one-pass-per-grasp
    scoring of training equals reading the full (rotated-back) stack there."""
    model = _model(method)
    images = _images(2, seed=3)
    with torch.no_grad():
        features = model.features(images)
        cells = torch.randint(0, features.flat.shape[1], (2, 50),
                              generator=torch.Generator().manual_seed(0))
        critic_inputs = normalise_actor_output(cell_actions(cells, 32, 16))
        expected = torch.gather(features.flat, 1, cells)
        assert torch.allclose(model.score(features, critic_inputs), expected, atol=1e-5)
        assert torch.allclose(model.logits_at(images, critic_inputs), expected, atol=1e-5)


# -- geometry ------------------------------------------------------------------------------


def _ramp(side, a=0.3, b=-0.7, c=0.2):
    u = (torch.arange(side, dtype=torch.float64) + 0.5) * (2.0 / side) - 1.0
    ys, xs = torch.meshgrid(u, u, indexing='ij')
    return (a * xs + b * ys + c)[None, None]


def _disc(side, radius=0.6):
    u = (torch.arange(side, dtype=torch.float64) + 0.5) * (2.0 / side) - 1.0
    ys, xs = torch.meshgrid(u, u, indexing='ij')
    return xs ** 2 + ys ** 2 < radius ** 2


@pytest.mark.parametrize('angle', [0.0, 0.3, math.pi / 2, 2.0, 3.0])
def test_rotation_round_trip(angle):
    """Rotating a map by alpha and back by -alpha restores it, and the rotated map holds at
    p the value the map holds at R(alpha) p (bilinear resampling is exact on a linear map;
    the disc keeps away from the border)."""
    side = 40
    ramp = _ramp(side)
    angles = torch.tensor([angle], dtype=torch.float64)
    rotated = rotate(ramp, angles)
    back = rotate(rotated, -angles)
    inside = _disc(side)
    assert torch.allclose(back[0, 0][inside], ramp[0, 0][inside], atol=1e-9)
    # J(p) = I(R p): J's gradient is R^T (a, b)
    cos, sin = math.cos(angle), math.sin(angle)
    expected = _ramp(side, 0.3 * cos - 0.7 * sin, 0.3 * -sin + -0.7 * cos)
    assert torch.allclose(rotated[0, 0][inside], expected[0, 0][inside], atol=1e-9)


def test_quarter_turn_moves_pixels_exactly():
    """At pi / 2 the rotation permutes pixels: J(x, y) = I(-y, x) in centred coordinates."""
    image = torch.arange(36, dtype=torch.float64).reshape(1, 1, 6, 6)
    rotated = rotate(image, torch.tensor([math.pi / 2], dtype=torch.float64))
    # output row i, column j samples x = -(y_j), y = x_j: input row j, column 5 - i
    expected = torch.rot90(image, k=1, dims=(2, 3))
    assert torch.allclose(rotated, expected, atol=1e-9)


@pytest.mark.parametrize('bin_index', [0, 3, 4, 9, 13])
def test_a_bar_along_a_bin_angle_lies_along_the_x_axis_after_rotation(bin_index):
    """H's convention: the image rotated for bin k shows grasps closing along alpha_k as
    grasps closing along the image x axis (x right, y down, alpha from x towards y)."""
    side, angles = 64, 16
    alpha = bin_index * math.pi / angles
    u = torch.arange(side, dtype=torch.float64) - (side - 1) / 2
    ys, xs = torch.meshgrid(u, u, indexing='ij')
    # distance from the line through the centre along (cos alpha, sin alpha)
    across = (-math.sin(alpha) * xs + math.cos(alpha) * ys).abs()
    bar = ((across < 1.5) & (xs ** 2 + ys ** 2 < 20 ** 2)).double()[None, None]
    rotated = rotate(bar, torch.tensor([alpha], dtype=torch.float64))[0, 0]
    weight = rotated / rotated.sum()
    spread_y = float((weight * ys ** 2).sum())
    spread_x = float((weight * xs ** 2).sum())
    assert spread_y < 2.0 < 50.0 < spread_x


def test_cells_cover_the_workspace_at_the_papers_78_by_78():
    assert int(workspace_cells(128).sum()) == 78 * 78
    assert int(workspace_cells(64).sum()) == 39 * 39
    cells = torch.arange(16 * 128 * 128)
    allowed = workspace_cells(128)[None].expand(16, -1, -1).reshape(-1)
    px = decode_actor(cell_actions(cells[allowed], 128, 16).double())
    assert float(px[:, :2].min()) >= WORKSPACE_LO and float(px[:, :2].max()) < WORKSPACE_HI
    assert set(np.round(px[:, 2].numpy() * 16 / math.pi, 4)) == set(float(k) for k in range(16))


def test_nearest_angle_bin_wraps_at_pi():
    alphas = torch.tensor([0.0, 0.09, 0.11, math.pi - 0.05, math.pi / 2])
    px = torch.stack([torch.full_like(alphas, 60.0), torch.full_like(alphas, 60.0), alphas], -1)
    bins = nearest_angle_bin(encode_actions(px), 16)  # bin width pi / 16 = 0.196
    assert bins.tolist() == [0, 0, 1, 0, 8]


# -- eq. 14 --------------------------------------------------------------------------------


def _brute_force_eq14(logits, allowed, beta):
    """The categorical of eq. 14 written out cell by cell."""
    weights = []
    for logit, ok in zip(logits, allowed):
        xi = 1.0 / (1.0 + math.exp(-logit))
        weights.append(math.exp(beta * math.log(xi)) if ok else 0.0)
    total = sum(weights)
    return np.array([w / total for w in weights])


@pytest.mark.parametrize('beta', [1.0, 3.0, 100.0])
def test_eq14_probabilities_match_a_brute_force_categorical(beta):
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, 2.9, -4.0]], dtype=torch.float64)
    allowed = torch.tensor([True, True, True, False, True, True])
    expected = _brute_force_eq14(logits[0].tolist(), allowed.tolist(), beta)
    got = eq14_log_probs(logits, allowed, beta).exp()[0].numpy()
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-300)
    assert got[3] == 0.0  # outside the workspace


@pytest.mark.parametrize('beta', [1.0, 3.0])
def test_eq14_draws_follow_the_brute_force_categorical(beta):
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, 2.9, -4.0],
                           [0.0, 0.0, 1.0, -2.0, 0.3, 0.1]], dtype=torch.float64)
    allowed = torch.tensor([True, True, True, False, True, True])
    draws = 40_000
    cells, log_q = sample_eq14(logits, allowed, beta, draws, torch.Generator().manual_seed(5))
    assert cells.shape == (2, draws) and log_q.shape == (2, draws)
    for row in range(2):
        expected = _brute_force_eq14(logits[row].tolist(), allowed.tolist(), beta)
        frequency = np.bincount(cells[row].numpy(), minlength=6) / draws
        sigma = np.sqrt(expected * (1 - expected) / draws)
        assert np.all(np.abs(frequency - expected) <= 5 * sigma + 1e-12), (frequency, expected)
        assert np.allclose(log_q[row].exp().numpy(), expected[cells[row].numpy()])


def test_beta_100_concentrates_the_draws_on_the_best_cells():
    logits = torch.tensor([[4.0, 1.0, 0.0, 3.0]])
    allowed = torch.ones(4, dtype=torch.bool)
    cells, _ = sample_eq14(logits, allowed, 100.0, 2000, torch.Generator().manual_seed(0))
    share = np.bincount(cells[0].numpy(), minlength=4) / 2000
    # xi 0.982 vs 0.953: (0.982 / 0.953)^100 = 20, the rest vanish
    assert share[0] > 0.9 and share[1] == share[2] == 0.0


def test_eq14_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match='allowed'):
        eq14_log_probs(torch.zeros((2, 5)), torch.ones(4, dtype=torch.bool), 1.0)


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize('overrides, field', [
    ({'method': 'heat-map'}, 'method'),
    ({'heatmap_angles': 0}, 'heatmap_angles'),
    ({'heatmap_angles': 65}, 'heatmap_angles'),
    ({'heatmap_angles': 2.5}, 'heatmap_angles'),
    ({'heatmap_beta': 0.0}, 'heatmap_beta'),
    ({'heatmap_beta': float('nan')}, 'heatmap_beta'),
    ({'heatmap_beta': 1e6}, 'heatmap_beta'),
    ({'method': 'heatmap', 'critic_batch': 256, 'critic_actions_per_state': 4},
     'method heatmap'),
])
def test_config_errors_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**overrides)


def test_config_defaults_are_the_papers():
    config = TrainConfig()
    assert (config.method, config.heatmap_angles, config.heatmap_beta) == (
        'actor-critic', 16, 100.0)
