"""Known-answer tests of the KDE, volume and f-divergence estimators (fga_ros.core)."""

import math

import numpy as np
import pytest
from scipy import integrate, stats
import torch

from fga_ros.core.common.choices import (
    DIVERGENCES,
    F_DIVERGENCES,
    KDE_BANDWIDTH,
    PROPOSAL_BANDWIDTH,
)
from fga_ros.core.estimators.divergences import (
    SCORE_FLOOR,
    categorical_divergence,
    choice_costs,
    choice_surrogate,
    critic_loss,
    divergence_value,
    estimator_weights,
    f_divergence_surrogate,
    gan_actor_loss,
    me_actor_loss,
    radius_weight,
    target_log_density,
    target_log_density_at,
)
from fga_ros.core.estimators.kde import kde_log_density, log_volume, resample
from fga_ros.core.training.updates import f_divergence_loss

F64 = torch.float64


pytestmark = pytest.mark.usefixtures('one_thread')


def gaussian_log_pdf(x, mean, std):
    """Log-density of N(mean, std^2) at tensor x (1-D)."""
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)


def interval_indicator(x, intervals):
    """g(x) = 1 on the union of closed intervals [(lo, hi), ...], else 0; x: (...,)."""
    inside = torch.zeros_like(x, dtype=torch.bool)
    for lo, hi in intervals:
        inside |= (x >= lo) & (x <= hi)
    return inside.to(x.dtype)


# ---------------------------------------------------------------- KDE


def test_kde_log_density_matches_plain_loop():
    gen = torch.Generator().manual_seed(0)
    points = torch.randn(5, 2, generator=gen, dtype=F64)
    supports = torch.randn(7, 2, generator=gen, dtype=F64)
    sigma = (0.3, 0.7)
    got = kde_log_density(points, supports, sigma)
    cov = np.diag(np.square(sigma))
    for j, a in enumerate(points.numpy()):
        density = np.mean([stats.multivariate_normal(s, cov).pdf(a) for s in supports.numpy()])
        assert got[j].item() == pytest.approx(math.log(density), rel=1e-10)


def test_kde_log_density_matches_scipy_gaussian_kde_1d():
    rng = np.random.default_rng(1)
    data = rng.normal(size=40)
    h = 0.2
    reference = stats.gaussian_kde(data, bw_method=h / data.std(ddof=1))
    grid = np.linspace(-3.0, 3.0, 61)
    got = kde_log_density(
        torch.tensor(grid).view(-1, 1), torch.tensor(data).view(-1, 1), (h,)
    )
    np.testing.assert_allclose(got.numpy(), reference.logpdf(grid), rtol=1e-9)


def test_kde_integrates_to_one_on_2d_grid():
    supports = torch.tensor([[0.0, 0.0], [0.5, -0.3], [-0.4, 0.6]], dtype=F64)
    sigma = (0.2, 0.35)
    axis_x = torch.linspace(-2.0, 2.0, 401, dtype=F64)
    axis_y = torch.linspace(-3.0, 3.0, 601, dtype=F64)
    grid = torch.cartesian_prod(axis_x, axis_y)
    density = kde_log_density(grid, supports, sigma).exp().view(401, 601)
    total = torch.trapezoid(torch.trapezoid(density, axis_y, dim=1), axis_x)
    assert total.item() == pytest.approx(1.0, abs=1e-6)


def test_kde_batched_equals_loop_over_states():
    gen = torch.Generator().manual_seed(2)
    points = torch.randn(3, 6, 4, generator=gen, dtype=F64)
    supports = torch.randn(3, 5, 4, generator=gen, dtype=F64)
    batched = kde_log_density(points, supports, KDE_BANDWIDTH)
    assert batched.shape == (3, 6)
    for k in range(3):
        torch.testing.assert_close(batched[k], kde_log_density(points[k], supports[k],
                                                               KDE_BANDWIDTH))
    shared = kde_log_density(points, supports[0], KDE_BANDWIDTH)  # supports broadcast
    torch.testing.assert_close(shared[2], kde_log_density(points[2], supports[0],
                                                          KDE_BANDWIDTH))


def test_kde_is_finite_far_from_the_supports():
    supports = torch.zeros(4, 2, requires_grad=True)
    points = torch.full((3, 2), 50.0)  # ~2000 bandwidths away: q underflows in linear space
    log_q = kde_log_density(points, supports, (0.025, 0.025))
    assert torch.all(torch.isfinite(log_q)) and torch.all(log_q < -1e6)
    log_q.sum().backward()
    assert torch.all(torch.isfinite(supports.grad))


def test_resample_shape_centres_spread_and_reproducibility():
    supports = torch.tensor([[[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]]],
                            requires_grad=True)
    m = 5000
    samples = resample(supports, m, PROPOSAL_BANDWIDTH, torch.Generator().manual_seed(3))
    assert samples.shape == (1, 2 * m, 4) and not samples.requires_grad
    noise = samples - supports.detach().repeat_interleave(m, dim=1)
    assert noise.abs().mean(1).max().item() < 3.0  # consecutive blocks belong to one support
    torch.testing.assert_close(noise.std(dim=(0, 1)), torch.tensor(PROPOSAL_BANDWIDTH),
                               rtol=0.03, atol=0.0)
    again = resample(supports, m, PROPOSAL_BANDWIDTH, torch.Generator().manual_seed(3))
    assert torch.equal(samples, again)


def test_kde_and_resample_reject_bad_input():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match='bandwidth must have shape'):
        kde_log_density(x, x, (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match='positive'):
        kde_log_density(x, x, (0.1, 0.0))
    with pytest.raises(ValueError, match='action dimension'):
        kde_log_density(x, torch.zeros(3, 4), (0.1, 0.1))
    with pytest.raises(ValueError, match=r'points must have shape \(\.\.\., count, D\)'):
        kde_log_density(torch.zeros(2), x, (0.1, 0.1))
    with pytest.raises(ValueError, match='m must be a positive int'):
        resample(x, 0, (0.1, 0.1))
    with pytest.raises(ValueError, match='same shape'):
        log_volume(torch.zeros(3), torch.zeros(4))


# ---------------------------------------------------------------- volume and target


def proposal_samples(supports, m, sigma_prop, seed):
    """a* ~ KDE(supports, sigma') and log q'(a*); supports (..., N, 1)."""
    samples = resample(supports, m, sigma_prop, torch.Generator().manual_seed(seed))
    return samples, kde_log_density(samples, supports, sigma_prop)


def test_volume_of_an_interval_indicator():
    supports = torch.linspace(-0.5, 1.5, 50, dtype=F64).view(-1, 1)
    samples, log_q_prop = proposal_samples(supports, 400, (0.3,), seed=4)
    g = interval_indicator(samples[:, 0], [(0.2, 0.9)])
    volume = log_volume(torch.log(g), log_q_prop).exp().item()
    assert volume == pytest.approx(0.7, rel=0.03)


def test_volume_of_a_square_in_2d():
    axis = torch.linspace(-1, 1, 10, dtype=F64)
    samples, log_q_prop = proposal_samples(torch.cartesian_prod(axis, axis), 200, (0.3, 0.3),
                                           seed=5)
    g = ((samples.abs() <= 0.5).all(-1)).to(F64)  # [-0.5, 0.5]^2: area 1
    assert log_volume(torch.log(g), log_q_prop).exp().item() == pytest.approx(1.0, rel=0.03)


def test_target_log_density_is_uniform_on_the_feasible_set():
    supports = torch.linspace(-0.5, 1.5, 50, dtype=F64).view(1, -1, 1)
    samples, log_q_prop = proposal_samples(supports, 400, (0.3,), seed=6)
    g = interval_indicator(samples[..., 0], [(0.2, 0.9)])
    log_p = target_log_density(g, log_q_prop)
    assert log_p.shape == g.shape
    feasible = g > 0
    assert log_p[feasible].exp().mean().item() == pytest.approx(1 / 0.7, rel=0.03)
    torch.testing.assert_close(log_p[feasible].std(), torch.zeros((), dtype=F64))
    floor = log_p[~feasible].exp() / log_p[feasible].exp().mean()
    torch.testing.assert_close(floor, torch.full_like(floor, SCORE_FLOOR))


def test_target_log_density_applies_the_radius_weight():
    log_q_prop = torch.zeros(1, 2, dtype=F64)
    scores = torch.tensor([[1.0, 1.0]], dtype=F64)
    weights = torch.tensor([[1.0, 0.25]], dtype=F64)
    log_p = target_log_density(scores, log_q_prop, weights)
    assert (log_p[0, 0] - log_p[0, 1]).item() == pytest.approx(math.log(4.0))
    # V = mean(r / q') = (1 + 0.25) / 2 with q' = 1.
    assert log_p[0, 0].exp().item() == pytest.approx(1 / 0.625)
    with pytest.raises(ValueError, match=r'critic_scores must lie in \[0, 1\]'):
        target_log_density(scores + 1.0, log_q_prop)


def test_radius_weight_values_and_gradient_at_the_origin():
    actions = torch.tensor([[0.3, -0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.9], [1.0, 1.0, 0.0, 0.0]],
                           requires_grad=True)
    weights = radius_weight(actions)
    expected = [1.0, math.exp(-0.5), math.exp(-0.5 * (0.5 / 0.4) ** 2)]
    torch.testing.assert_close(weights, torch.tensor(expected))
    weights.sum().backward()
    assert torch.all(torch.isfinite(actions.grad))
    with pytest.raises(ValueError, match=r'actions4 must have shape \(\.\.\., 4\)'):
        radius_weight(torch.zeros(3, 3))


# ---------------------------------------------------------------- divergence values


def exact_gaussian_case(n_samples, seed):
    """Samples from q' = N(0, 2^2) with exact log q (N(0, 1)), log q', log p (N(1, 1.5^2))."""
    gen = torch.Generator().manual_seed(seed)
    samples = 2.0 * torch.randn(1, n_samples, generator=gen, dtype=F64)
    return (gaussian_log_pdf(samples, 0.0, 1.0), gaussian_log_pdf(samples, 0.0, 2.0),
            gaussian_log_pdf(samples, 1.0, 1.5))


def kl_gaussians(mean_a, std_a, mean_b, std_b):
    """KL(N(mean_a, std_a^2) || N(mean_b, std_b^2))."""
    return (math.log(std_b / std_a) + (std_a ** 2 + (mean_a - mean_b) ** 2) / (2 * std_b ** 2)
            - 0.5)


def js_by_quadrature(log_q, log_p):
    """(1/2) KL(p || m) + (1/2) KL(q || m), m = (p + q) / 2, for 1-D callables."""
    def integrand(x):
        q, p = math.exp(log_q(x)), math.exp(log_p(x))
        m = 0.5 * (p + q)
        return 0.5 * ((p * math.log(p / m) if p > 0 else 0.0)
                      + (q * math.log(q / m) if q > 0 else 0.0))
    return integrate.quad(integrand, -30, 30, limit=200)[0]


def test_divergence_values_match_closed_forms_with_exact_densities():
    log_q, log_q_prop, log_p = exact_gaussian_case(400_000, seed=7)
    rkl = divergence_value('rkl', log_q, log_q_prop, log_p).item()
    fkl = divergence_value('fkl', log_q, log_q_prop, log_p).item()
    js = divergence_value('js', log_q, log_q_prop, log_p).item()
    assert rkl == pytest.approx(kl_gaussians(0.0, 1.0, 1.0, 1.5), rel=0.02)
    assert fkl == pytest.approx(kl_gaussians(1.0, 1.5, 0.0, 1.0), rel=0.02)
    js_ref = js_by_quadrature(lambda x: float(gaussian_log_pdf(x, 0.0, 1.0)),
                              lambda x: float(gaussian_log_pdf(x, 1.0, 1.5)))
    assert js == pytest.approx(js_ref, rel=0.02)


def test_divergence_values_through_the_kde_estimator():
    # q = KDE of N(0, 1) samples with bandwidth h ~ N(0, 1 + h^2); p = N(0.5, 1) exactly.
    gen = torch.Generator().manual_seed(8)
    h = 0.3
    quantiles = (np.arange(500) + 0.5) / 500
    supports = torch.tensor(stats.norm.ppf(quantiles)).view(-1, 1)  # N(0, 1) quantiles
    samples = resample(supports, 40, (2 * h,), gen)
    log_q = kde_log_density(samples, supports, (h,))
    log_q_prop = kde_log_density(samples, supports, (2 * h,))
    log_p = gaussian_log_pdf(samples[:, 0], 0.5, 1.0)
    std_q = math.sqrt(1 + h ** 2)
    rkl = divergence_value('rkl', log_q, log_q_prop, log_p).item()
    fkl = divergence_value('fkl', log_q, log_q_prop, log_p).item()
    assert rkl == pytest.approx(kl_gaussians(0.0, std_q, 0.5, 1.0), rel=0.05)
    assert fkl == pytest.approx(kl_gaussians(0.5, 1.0, 0.0, std_q), rel=0.05)


def test_js_is_zero_for_equal_and_log2_for_disjoint_densities():
    log_q, log_q_prop, _ = exact_gaussian_case(10_000, seed=9)
    equal = divergence_value('js', log_q, log_q_prop, log_q).item()
    assert equal == pytest.approx(0.0, abs=1e-12)
    # p uniform on [6, 8], q = N(0, 1): disjoint up to 6 standard deviations.
    samples = 2.0 * torch.randn(1, 200_000, generator=torch.Generator().manual_seed(9),
                                dtype=F64) + 3.5
    log_q = gaussian_log_pdf(samples, 0.0, 1.0)
    log_q_prop = gaussian_log_pdf(samples, 3.5, 2.0)
    log_p = torch.log(interval_indicator(samples, [(6.0, 8.0)]) / 2.0)
    js = divergence_value('js', log_q, log_q_prop, log_p).item()
    assert js == pytest.approx(math.log(2.0), rel=0.02)
    assert js < math.log(2.0) + 0.02


# ---------------------------------------------------------------- gradient estimators


def test_estimator_weights_equal_table_2_in_linear_space():
    gen = torch.Generator().manual_seed(10)
    q, q_prop, p = (torch.rand(2, 9, generator=gen, dtype=F64) + 0.1 for _ in range(3))
    table2 = {
        'js': 0.5 * q / q_prop * torch.log(2 * q / (p + q)),
        'fkl': -p / q_prop,
        'rkl': q / q_prop * torch.log(q / p),
    }
    for kind, expected in table2.items():
        got = estimator_weights(kind, q.log(), q_prop.log(), p.log())
        torch.testing.assert_close(got, expected)


def divergence_by_quadrature(kind, theta, base, h, log_p_fn):
    """D_f(p || KDE(base + theta, h)) on a dense grid, float64."""
    grid = torch.linspace(-8.0, 8.0, 40_001, dtype=F64)
    log_q = kde_log_density(grid.view(-1, 1), (base + theta).view(-1, 1), (h,))
    log_p = log_p_fn(grid)
    q, p = log_q.exp(), log_p.exp()
    if kind == 'rkl':
        integrand = q * (log_q - log_p)
    elif kind == 'fkl':
        integrand = p * (log_p - log_q)
    else:
        log_m = torch.logaddexp(log_q, log_p) - math.log(2.0)
        integrand = 0.5 * (p * (log_p - log_m) + q * (log_q - log_m))
    return torch.trapezoid(integrand, grid).item()


@pytest.mark.parametrize('kind', F_DIVERGENCES)
def test_surrogate_gradient_matches_the_divergence_derivative(kind):
    """With the exact target, eq. 10 is an unbiased estimate of d/dtheta D_f(p || q_sigma)."""
    base = torch.linspace(-1.2, -0.2, 8, dtype=F64)
    h, h_prop = 0.3, 0.6

    def log_p_fn(x):
        return gaussian_log_pdf(x, 0.3, 0.4)

    theta = torch.zeros((), dtype=F64, requires_grad=True)
    supports = (base + theta).view(-1, 1)
    samples = resample(supports, 25_000, (h_prop,), torch.Generator().manual_seed(11))
    log_q = kde_log_density(samples, supports, (h,))
    log_q_prop = kde_log_density(samples, supports.detach(), (h_prop,))
    loss = f_divergence_surrogate(kind, log_q, log_q_prop, log_p_fn(samples[:, 0]))
    (grad,) = torch.autograd.grad(loss, theta)
    step = 1e-4
    finite_difference = (divergence_by_quadrature(kind, step, base, h, log_p_fn)
                         - divergence_by_quadrature(kind, -step, base, h, log_p_fn)) / (2 * step)
    assert finite_difference < 0  # the target lies to the right of the supports
    assert grad.item() == pytest.approx(finite_difference, rel=0.05)


@pytest.mark.parametrize('kind', F_DIVERGENCES)
def test_gradient_sign_with_the_estimated_target(kind):
    """Feasible set [0.3, 0.8] right of the supports: every estimator pushes them right."""
    base = torch.linspace(-0.4, 0.4, 16).view(1, -1, 1)
    theta = torch.zeros((), requires_grad=True)
    supports = base + theta
    samples = resample(supports, 64, (0.3,), torch.Generator().manual_seed(12))
    log_q = kde_log_density(samples, supports, (0.1,))
    log_q_prop = kde_log_density(samples, supports.detach(), (0.3,))
    log_p = target_log_density(interval_indicator(samples[..., 0], [(0.3, 0.8)]), log_q_prop)
    f_divergence_surrogate(kind, log_q, log_q_prop, log_p).backward()
    assert theta.grad.item() < 0


def test_surrogate_is_finite_with_zero_target_and_underflowing_q():
    gen = torch.Generator().manual_seed(13)
    supports = (0.1 * torch.randn(2, 8, 4, generator=gen)).requires_grad_()
    samples = resample(supports, 2, PROPOSAL_BANDWIDTH, gen)
    samples[:, :4] = supports.detach()[:, :4] + 6 * torch.tensor(PROPOSAL_BANDWIDTH)
    log_q = kde_log_density(samples, supports, KDE_BANDWIDTH)
    log_q_prop = kde_log_density(samples, supports.detach(), PROPOSAL_BANDWIDTH)
    assert log_q.min().item() < -300  # float32 q underflows to 0 there
    scores = (torch.rand(2, 16, generator=gen) > 0.5).float()
    scores[0] = 0.0  # p = 0 at every sample of state 0
    log_p = target_log_density(scores, log_q_prop)
    assert torch.all(torch.isfinite(log_p))
    for kind in F_DIVERGENCES:
        for target in (log_p, torch.log(scores)):  # estimated, and -inf passed directly
            supports.grad = None
            loss = f_divergence_surrogate(kind, log_q, log_q_prop, target)
            loss.backward(retain_graph=True)
            assert torch.isfinite(loss) and torch.all(torch.isfinite(supports.grad)), kind
            assert torch.all(torch.isfinite(divergence_value(kind, log_q, log_q_prop, target)))


def test_f_divergence_functions_reject_bad_input():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match='divergence must be one of'):
        f_divergence_surrogate('gan', x, x, x)
    with pytest.raises(ValueError, match='expected equal shapes'):
        f_divergence_surrogate('js', x, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match='divergence must be one of'):
        divergence_value('kl', x, x, x)


# ---------------------------------------------------------------- mode coverage

EQUAL_MODES = ((-1.0, -0.5), (0.5, 1.0))
UNEQUAL_MODES = ((-1.0, -0.2), (0.6, 0.8))  # uniform target: 80% and 20% of the mass


class LatentGenerator(torch.nn.Module):
    """a = scale * z + shift + mlp(z), z ~ U(-1, 1); the mlp starts at zero output."""

    def __init__(self, scale, shift):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(),
                                       torch.nn.Linear(32, 32), torch.nn.Tanh(),
                                       torch.nn.Linear(32, 1))
        torch.nn.init.zeros_(self.mlp[-1].weight)
        torch.nn.init.zeros_(self.mlp[-1].bias)
        self.scale, self.shift = scale, shift

    def forward(self, z):
        return self.scale * z + self.shift + self.mlp(z)


def train_mode_shares(kind, modes, scale, shift, steps=300, n=64, m=4, seed=0):
    """Train on the exact target g = 1 on ``modes``; return the share of actions per mode.

    The generator starts uniform on [shift - scale, shift + scale]; sigma = 0.05 and
    sigma' = 0.15 (c = 3 as in Table 4), N = 64, M = 256, Adam(lr=3e-3).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    actor = LatentGenerator(scale, shift)
    optimiser = torch.optim.Adam(actor.parameters(), lr=3e-3)
    sigma, sigma_prop = (0.05,), (0.15,)
    for _ in range(steps):
        supports = actor(2 * torch.rand(1, n, 1, generator=gen) - 1)
        samples = resample(supports, m, sigma_prop, gen)
        log_q = kde_log_density(samples, supports, sigma)
        log_q_prop = kde_log_density(samples, supports.detach(), sigma_prop)
        log_p = target_log_density(interval_indicator(samples[..., 0], modes), log_q_prop)
        optimiser.zero_grad()
        f_divergence_surrogate(kind, log_q, log_q_prop, log_p).backward()
        optimiser.step()
    with torch.no_grad():
        actions = actor(torch.linspace(-1, 1, 2001).view(-1, 1))[:, 0]
    return [interval_indicator(actions, [mode]).mean().item() for mode in modes]


@pytest.mark.parametrize('kind', ['js', 'fkl'])
def test_js_and_fkl_cover_both_modes_from_a_broad_start(kind):
    shares = train_mode_shares(kind, EQUAL_MODES, scale=1.0, shift=0.0)  # U[-1, 1] at start
    assert min(shares) >= 0.2, shares


def test_rkl_drops_the_small_mode_that_js_and_fkl_keep():
    """Same broad start, modes of 80% and 20% mass across a gap of 0.8.

    RKL's penalty on mass in the gap, (q/q') log(q/p) with p at the floor, is unbounded, so
    it gives up the small mode rather than keep the path to it; the JS penalty is at most
    (q/q') log(2) / 2 and FKL has none.
    """
    shares = {kind: train_mode_shares(kind, UNEQUAL_MODES, scale=1.0, shift=0.0, steps=150)
              for kind in F_DIVERGENCES}
    assert shares['rkl'][0] > 0.95 and shares['rkl'][1] < 0.01, shares
    assert shares['js'][1] >= 0.03 and shares['fkl'][1] >= 0.03, shares


def test_fkl_covers_a_mode_rkl_never_reaches():
    """Start on [-1, 0.2]: only the proposal's tail (sigma' = 0.15) reaches [0.5, 1].

    FKL's weight -p/q' is largest where q' is small, so it pulls mass into the far mode.
    The RKL (and JS) weights carry q/q', which vanishes there: RKL stays where it started.
    """
    fkl = train_mode_shares('fkl', EQUAL_MODES, scale=0.6, shift=-0.4)
    rkl = train_mode_shares('rkl', EQUAL_MODES, scale=0.6, shift=-0.4)
    assert min(fkl) >= 0.2, fkl
    assert rkl[0] > 0.9 and rkl[1] < 0.05, rkl


# ---------------------------------------------------------------- discrete choices


CELLS = torch.tensor([0.1, 0.35, 0.6, 0.85], dtype=F64)
FEASIBLE_CELLS = [(0.02, 0.18), (0.52, 0.68)]  # around cells 0 and 2


def train_choice_shares(kind, steps=300, n=64, seed=0):
    """Mixture over 4 fixed cells (each a narrow uniform around its centre); only the
    choice probabilities are trained, by the score-function term of ``f_divergence_loss``,
    on the exact target g = 1 around cells 0 and 2. Returns pi."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.zeros(4, dtype=F64, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.05)
    for _ in range(steps):
        log_pi = torch.log_softmax(logits, 0)
        cells = torch.multinomial(log_pi.exp().detach(), n, replacement=True, generator=gen)
        offsets = 0.04 * (2 * torch.rand(n, generator=gen, dtype=F64) - 1)
        supports = (CELLS[cells] + offsets).view(1, n, 1)
        optimiser.zero_grad()
        f_divergence_loss(kind, supports, lambda x: interval_indicator(x[..., 0], FEASIBLE_CELLS),
                          2, (0.03,), (0.09,), gen, log_pi[cells].view(1, n)).backward()
        optimiser.step()
    return torch.softmax(logits, 0).detach()


@pytest.mark.parametrize('kind', F_DIVERGENCES)
def test_choice_gradient_moves_the_mass_to_the_feasible_cells(kind):
    pi = train_choice_shares(kind)
    assert pi[1] + pi[3] < 0.05, pi
    if kind != 'rkl':  # the mass-covering divergences keep both feasible cells
        assert min(pi[0], pi[2]) > 0.3, pi


def test_choice_costs_are_f_prime_of_q_over_p():
    log_q = torch.log(torch.tensor([[0.5, 2.0, 1.0]], dtype=F64))
    log_p = torch.log(torch.tensor([[1.0, 1.0, 4.0]], dtype=F64))
    t = torch.exp(log_q - log_p)
    torch.testing.assert_close(choice_costs('fkl', log_q, log_p), -1 / t)
    torch.testing.assert_close(choice_costs('rkl', log_q, log_p), torch.log(t))
    torch.testing.assert_close(choice_costs('js', log_q, log_p), 0.5 * torch.log(2 * t / (1 + t)))
    with pytest.raises(ValueError, match='divergence must be one of'):
        choice_costs('gan', log_q, log_p)


def test_choice_surrogate_uses_a_baseline_and_a_scale_free_step():
    log_choice = torch.zeros(1, 4, dtype=F64, requires_grad=True)
    costs = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=F64)
    choice_surrogate(costs, log_choice).backward()
    grad = log_choice.grad.clone()
    assert grad.sum().item() == pytest.approx(0.0)  # a constant cost moves nothing
    assert torch.all(grad[0, 1:] > grad[0, :-1])  # costlier choices are made less likely
    log_choice.grad = None
    choice_surrogate(100 * costs + 7, log_choice).backward()
    torch.testing.assert_close(log_choice.grad, grad)


def test_target_density_elsewhere_uses_the_samples_volume():
    scores = torch.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=F64)
    log_q_prop = torch.zeros(1, 4, dtype=F64)  # q' = 1 on [0, 1]: V = 3/4
    at = target_log_density_at(torch.tensor([[1.0, 0.5]], dtype=F64), scores, log_q_prop)
    # (the zero score counts as SCORE_FLOOR)
    torch.testing.assert_close(at.exp(), torch.tensor([[4 / 3, 2 / 3]], dtype=F64), rtol=1e-5,
                               atol=0)
    torch.testing.assert_close(target_log_density(scores, log_q_prop)[0, 0], at[0, 0])


# ---------------------------------------------------------------- baselines and critic


def test_gan_actor_loss_forms_and_gradient_direction():
    scores = torch.tensor([0.2, 0.6], requires_grad=True)
    loss = gan_actor_loss(scores)
    assert loss.item() == pytest.approx((math.log(0.8) + math.log(0.4)) / 2)
    loss.backward()
    assert torch.all(scores.grad < 0)  # descending raises the critic's score
    non_saturating = gan_actor_loss(scores, non_saturating=True)
    assert non_saturating.item() == pytest.approx(-(math.log(0.2) + math.log(0.6)) / 2)
    extreme = torch.tensor([0.0, 1.0], requires_grad=True)
    for flag in (False, True):
        value = gan_actor_loss(extreme, non_saturating=flag)
        value.backward()
        assert torch.isfinite(value) and torch.all(torch.isfinite(extreme.grad))


def test_me_actor_loss_is_eq_12():
    log_q = torch.tensor([[0.5, -1.0]])
    scores = torch.tensor([[0.9, 0.1]])
    assert me_actor_loss(log_q, scores).item() == pytest.approx((0.5 - 0.9 - 1.0 - 0.1) / 2)
    expected = (0.5 - math.log(0.9) - 1.0 - math.log(0.1)) / 2
    assert me_actor_loss(log_q, scores, log_scores=True).item() == pytest.approx(expected)


def test_critic_loss_is_class_balanced():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0])
    labels = torch.tensor([1, 1, 0, 0, 0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, labels.float(), reduction='none')
    expected = 0.5 * (bce[:2].mean() + bce[2:].mean())
    torch.testing.assert_close(critic_loss(logits, labels), expected)
    balanced = labels[:4].bool()
    torch.testing.assert_close(critic_loss(logits[:4], balanced), bce[:4].mean())
    torch.testing.assert_close(critic_loss(logits[2:], labels[2:]), bce[2:].mean())
    with pytest.raises(ValueError, match='labels must be 0 or 1'):
        critic_loss(logits, labels * 2)


def test_divergence_names_are_one_tuple():
    assert DIVERGENCES == ('js', 'fkl', 'rkl', 'gan', 'me')
    assert F_DIVERGENCES == DIVERGENCES[:3]


# -- exact f-divergence between categorical distributions (cell choice) -------------------


@pytest.mark.parametrize('kind', ['js', 'fkl', 'rkl'])
def test_categorical_divergence_value_and_gradient(kind):
    torch.manual_seed(0)
    logits = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    log_p = torch.log_softmax(torch.randn(3, 7, dtype=torch.float64), -1)
    log_pi = torch.log_softmax(logits, -1)
    value = categorical_divergence(kind, log_pi, log_p)
    # Value: a plain loop over categories with Table 1's f, D = sum_c p_c f(pi_c / p_c).
    f = {'js': lambda t: 0.5 * (t * math.log(2 * t / (1 + t)) + math.log(2 / (1 + t))),
         'fkl': lambda t: -math.log(t), 'rkl': lambda t: t * math.log(t)}[kind]
    pi, p = log_pi.exp().tolist(), log_p.exp().tolist()
    for row in range(3):
        loop = sum(pc * f(qc / pc) for qc, pc in zip(pi[row], p[row]))
        assert value[row].item() == pytest.approx(loop, rel=1e-10)
    assert categorical_divergence(kind, log_p, log_p).abs().max() < 1e-12
    # Gradient w.r.t. the logits: autograd against central finite differences.
    value.sum().backward()
    eps = 1e-6
    brute = torch.zeros_like(logits)
    with torch.no_grad():
        for idx in np.ndindex(*logits.shape):
            for sign in (1, -1):
                shifted = logits.detach().clone()
                shifted[idx] += sign * eps
                brute[idx] += sign * categorical_divergence(
                    kind, torch.log_softmax(shifted, -1), log_p).sum() / (2 * eps)
    torch.testing.assert_close(logits.grad, brute, rtol=1e-6, atol=1e-8)
    # ... and the closed form d D / d pi_c = f'(pi_c / p_c) through the softmax.
    t = (log_pi - log_p).exp().detach()
    fprime = {'js': 0.5 * torch.log(2 * t / (1 + t)), 'fkl': -1 / t,
              'rkl': torch.log(t) + 1}[kind]
    pis = log_pi.exp().detach()
    closed = pis * (fprime - (pis * fprime).sum(-1, keepdim=True))
    torch.testing.assert_close(logits.grad, closed, rtol=1e-8, atol=1e-10)


def test_categorical_divergence_rejects_empty_categories():
    log_p = torch.log(torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match='finite'):
        categorical_divergence('js', torch.tensor([0.0, -math.inf]), log_p)
