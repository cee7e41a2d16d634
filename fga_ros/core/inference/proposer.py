"""Grasp proposal: sample the actor, reject low-density samples, score, cluster and rank.

Pipeline of :meth:`Proposer.propose` for one camera image (batch size 1):

1. one pass of the feature extractor over the image and its calibration views (one batch);
   with novelty gates stored with the model, an image unlike the training scenes abstains
   here (:mod:`.calibration`);
2. a round of candidates: ``max(MIN_CANDIDATES, ceil(oversample * num_grasps / (1 -
   reject_fraction)))`` actor samples (one batched call of the actor head), their
   log-density under the actor's Gaussian KDE (eq. 8, bandwidth ``config.kde_bandwidth``,
   network units, all samples as supports), rejection of the ``round(reject_fraction *
   num_sampled)`` lowest-density ones (the paper's action optimisation, section 4.3, the '*'
   variants of section 6), and ``explore`` random grasps centred on the object
   (:mod:`.exploration`) of which those the critic scores at least ``EXPLORE_MIN_SCORE``
   join (they find modes the actor misses);
3. calibrated critic scores of the candidates (Platt scaling of the critic's mean logit over
   the views stored with the model: the image turned by quarter turns, its channels
   reordered; explored grasps are screened on the image as it is, and only those reaching
   ``EXPLORE_MIN_SCORE`` there are scored on the other views);
4. the task constraints (:mod:`.constraints`) drop candidates; while fewer than
   ``num_grasps`` allowed candidates reach the score floor, further rounds are drawn, up to
   ``MAX_SAMPLES`` actor samples in all and a time budget;
5. clustering of the allowed candidates, those at or above the floor apart from those
   below it (:func:`cluster_by_floor`), and ranking: candidates at or above the floor
   first, by cost or round-robin over clusters ('diverse'); the top ``num_grasps`` are
   returned;
6. abstention: when the best allowed candidate scores below the floor (or none is allowed,
   or the image is novel), the proposal holds no grasp and a ``message`` saying why.

With ``oversample`` > 1 the critic picks the returned grasps among several actor samples
each: a cheap way to trade a few milliseconds for grasps that are more often feasible
(``fga bench propose`` reports both). The section 6 metrics (``fga eval``) measure the raw
actor samples, without oversampling.

Leave-one-out or not: the KDE includes each sample's own kernel (it is the KDE the actor is
trained with, and it is finite for isolated samples). The self term is the same constant
``K(0) / N`` for every sample, so the density *order*, hence which samples are rejected, is
exactly that of the leave-one-out estimate.
"""

from dataclasses import dataclass
import math
import os
from pathlib import Path
import time
import typing
from typing import Any, Optional

import numpy as np
import torch

from fga_ros.core.common.actions import decode_actor, normalise_actor_output
from fga_ros.core.common.checks import check_count, check_fraction, check_image, check_number
from fga_ros.core.common.choices import RANKINGS
from fga_ros.core.common.config import TrainConfig
from fga_ros.core.common.tensors import (
    images_to_tensor,
    make_generator,
    model_device,
    select_device,
)
from fga_ros.core.estimators.kde import kde_log_density
from fga_ros.core.inference.calibration import (
    Calibration,
    NoveltyGate,
    gate_verdict,
    gates_from_meta,
)
from fga_ros.core.inference.clusters import cell_coordinates, cluster_by_floor
from fga_ros.core.inference.constraints import TaskConstraints, check_min_score
from fga_ros.core.inference.defaults import (
    EXPLORE,
    EXPLORE_MIN_SCORE,
    EXPLORE_SHARE,
    MAX_EXPLORE_SHARE,
    MAX_GRASPS,
    MAX_OVERSAMPLE,
    MAX_RESAMPLE,
    MAX_SAMPLES,
    MAX_SHARPNESS,
    MIN_CANDIDATES,
    NUM_GRASPS,
    OVERSAMPLE,
    RANKING,
    REJECT_FRACTION,
    RESAMPLE,
    SCORE_FLOOR,
    SHARPNESS,
    TIME_BUDGET_S,
)
from fga_ros.core.inference.density import num_to_reject, num_to_sample, self_log_density
from fga_ros.core.inference.exploration import object_critic_inputs
from fga_ros.core.inference.ranking import rank_order
from fga_ros.core.inference.resampling import (
    can_resample,
    check_pool,
    pool_sizes,
    resampled_samples,
)
from fga_ros.core.models.heads import ImageFeatures
from fga_ros.core.models.model_file import CheckpointError, load_model
from fga_ros.core.models.networks import Network
from fga_ros.resources import share_path

BUNDLED_MODEL = ('models', 'fga_cpu_js.pt')
"""Share-relative path of the model shipped with the package."""

NO_CONSTRAINTS = TaskConstraints()


@dataclass(frozen=True, eq=False)
class Proposal:
    """Ranked grasp proposals; row i has rank i. Arrays are read-only.

    Attributes:
        actions: (n, 3) float64 grasps (x px, y px, alpha rad in [0, pi)).
        scores: (n,) float64 calibrated critic success probabilities in [0, 1].
        log_density: (n,) float64 actor KDE log-density in network units (NaN where the
            generator has no density, e.g. CEM).
        cluster_ids: (n,) int64 cluster of each grasp, numbered from 1 in rank order of the
            clusters' first grasps (0 = unknown).
        ranks: (n,) int64, 0 = best.
        num_sampled: actor samples drawn in total.
        num_rejected: actor samples rejected for low density.
        inference_ms: wall time of the call, milliseconds.
        message: '' when grasps are proposed; otherwise why the proposal abstains (no rows).
        best_score: best calibrated score among the allowed candidates (NaN: none).
        novelty: the image's novelty distance (NaN without a gate).
        num_rounds: rounds of candidates drawn.
        num_explored: grasps the critic explored besides the actor's samples.
    """

    actions: np.ndarray
    scores: np.ndarray
    log_density: np.ndarray
    cluster_ids: np.ndarray
    ranks: np.ndarray
    num_sampled: int
    num_rejected: int
    inference_ms: float
    message: str = ''
    best_score: float = math.nan
    novelty: float = math.nan
    num_rounds: int = 1
    num_explored: int = 0

    def __post_init__(self) -> None:
        for name in ('actions', 'scores', 'log_density', 'cluster_ids', 'ranks'):
            getattr(self, name).setflags(write=False)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def abstained(self) -> bool:
        """Whether the proposal holds no grasp (``message`` says why)."""
        return bool(self.message)

    @property
    def num_clusters(self) -> int:
        """Number of distinct clusters among the returned grasps."""
        return len(np.unique(self.cluster_ids[self.cluster_ids > 0]))


def empty_proposal(message: str, num_sampled: int, num_rejected: int, start: float,
                   **extra: Any) -> Proposal:
    """A :class:`Proposal` without grasps that says why (``message``)."""
    return Proposal(np.zeros((0, 3)), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64),
                    np.zeros(0, dtype=np.int64), int(num_sampled), int(num_rejected),
                    1e3 * (time.perf_counter() - start), message, **extra)


class ModelState(typing.NamedTuple):
    """An immutable snapshot of what a ``Proposer`` answers from."""

    model: Network
    config: TrainConfig
    meta: dict
    calibration: Calibration
    gates: tuple[NoveltyGate, ...]


# -- sampling -----------------------------------------------------------------------------


def _features(model: Network, image: np.ndarray, device: torch.device) -> ImageFeatures:
    return model.features(images_to_tensor(image, model.input_size, device))


def _all_view_features(state: ModelState, image: np.ndarray, device: torch.device
                        ) -> tuple[ImageFeatures, Optional[ImageFeatures]]:
    """Features of the image (1 state) and of its other calibration views (num_views - 1
    states; None without them), from one batched pass of the feature extractor."""
    images = images_to_tensor(image, state.model.input_size, device)
    if state.calibration.num_views == 1:
        return state.model.features(images), None
    model = state.model
    every = model.features_of_table(state.calibration.view_images(model.table_images(images)))
    return ImageFeatures(*(t[:1] for t in every)), ImageFeatures(*(t[1:] for t in every))


def sample_with_density(model: Network, config: TrainConfig, image: np.ndarray, n: int,
                        generator: Optional[torch.Generator] = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` actor samples for one image and their KDE log-densities (no critic).

    Args:
        image: (128, 128, 3) uint8 RGB; n: number of samples.

    Returns:
        (actions (n, 3) float64 px/rad, log_density (n,) float64 in network units).
    """
    check_image(image)
    n = check_count('n', n, 1, MAX_SAMPLES)
    with torch.inference_mode():
        features = _features(model, image, model_device(model))
        out = model.sample(features, n, generator)[0]
        log_density = self_log_density(out, config.kde_bandwidth)
        actions = decode_actor(out)
    return (actions.cpu().numpy().astype(np.float64),
            log_density.cpu().numpy().astype(np.float64))


def finish_proposal(actions: np.ndarray, critic_inputs: np.ndarray, scores: np.ndarray,
                    log_density: np.ndarray, num_grasps: int, ranking: str, num_sampled: int,
                    num_rejected: int, start: float, floor: float = 0.0,
                    cost: Optional[np.ndarray] = None, **extra: Any) -> Proposal:
    """Cluster, rank, select the top ``num_grasps`` and pack a :class:`Proposal`.

    Args:
        actions: (m, 3) px; critic_inputs: (m, 4); scores, log_density: (m,); numpy arrays
        of the m >= 1 candidates. start: ``time.perf_counter()`` at the call.
        floor: candidates scoring below it rank after all others and are clustered apart;
        cost: (m,) ranking cost (default 1 - score). extra: further :class:`Proposal` fields.
    """
    labels = cluster_by_floor(critic_inputs, scores, floor)
    top = rank_order(scores, labels, ranking, floor, cost, cell_coordinates(critic_inputs),
                     num_grasps)[:num_grasps]
    kept = labels[top]
    _, first = np.unique(kept, return_index=True)
    lookup = np.empty(labels.max() + 1, dtype=np.int64)
    lookup[kept[np.sort(first)]] = np.arange(1, len(first) + 1)  # from 1, in rank order
    return Proposal(
        actions=np.asarray(actions, dtype=np.float64)[top],
        scores=np.asarray(scores, dtype=np.float64)[top],
        log_density=np.asarray(log_density, dtype=np.float64)[top],
        cluster_ids=lookup[kept], ranks=np.arange(len(top), dtype=np.int64),
        num_sampled=int(num_sampled), num_rejected=int(num_rejected),
        inference_ms=1e3 * (time.perf_counter() - start), **extra)


class _Request(typing.NamedTuple):
    """The checked arguments of one ``Proposer.propose`` call."""

    num_grasps: int
    reject_fraction: float
    ranking: str
    explore: int
    floor: float
    time_budget: float
    num_sampled: int
    """actor samples per round: enough for ``num_grasps * oversample`` after rejection,
    at least ``min_candidates``"""


class _Rounds(typing.NamedTuple):
    """The candidates of the rounds of one call and what it took to draw them."""

    rounds: list
    """per round, (actions, critic inputs, scores, log-densities) of the allowed ones"""
    drawn: int
    explored: int
    rejected: int
    best_any: float
    """the best score of any candidate, allowed or not"""


def _check_request(num_grasps: int, reject_fraction: float, ranking: str, oversample: int,
                   explore: int, min_candidates: int, floor: float,
                   time_budget: float) -> _Request:
    """The arguments of ``Proposer.propose``, checked in order (ValueError naming the first
    bad one)."""
    num_grasps = check_count('num_grasps', num_grasps, 1, MAX_GRASPS)
    reject_fraction = check_fraction('reject_fraction', reject_fraction)
    if ranking not in RANKINGS:
        raise ValueError(f'ranking must be one of {RANKINGS}, got {ranking!r}')
    oversample = check_count('oversample', oversample, 1, MAX_OVERSAMPLE)
    explore = check_count('explore', explore, 0, MAX_SAMPLES)
    min_candidates = check_count('min_candidates', min_candidates, 1, MAX_SAMPLES)
    try:
        floor = check_min_score(floor)
    except ValueError as error:
        raise ValueError(str(error).replace('min_score', 'floor')) from None
    if not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise ValueError(f'time_budget must be a positive number of seconds, got '
                         f'{time_budget!r}')
    wanted = num_to_sample(num_grasps * oversample, reject_fraction)
    if wanted > MAX_SAMPLES:
        raise ValueError(f'oversample * num_grasps / (1 - reject_fraction) = {wanted} '
                         f'samples, more than {MAX_SAMPLES}; lower num_grasps, oversample '
                         f'or reject_fraction')
    return _Request(num_grasps, reject_fraction, ranking, explore, floor, time_budget,
                    max(wanted, min_candidates))


def _answer(drawn: _Rounds, request: _Request, constraints: TaskConstraints,
            novelty: float, start: float) -> Proposal:
    """The proposal from the drawn rounds, or an abstention that says why: no candidate
    allowed by the constraints, or the best one below the floor."""
    actions, inputs, scores, log_density = (np.concatenate(parts)
                                            for parts in zip(*drawn.rounds))
    extra = {'novelty': novelty, 'num_rounds': len(drawn.rounds),
             'num_explored': drawn.explored}
    if len(scores) == 0:
        return empty_proposal(
            f'no grasp satisfies the constraints ({constraints.describe()}) among '
            f'{drawn.drawn} actor samples and {drawn.explored} explored grasps in '
            f'{len(drawn.rounds)} round(s) (best score without them '
            f'{drawn.best_any:.3f})', drawn.drawn, drawn.rejected, start, **extra)
    best = float(scores.max())
    if best < request.floor:
        where = (f' satisfying the constraints ({constraints.describe()})'
                 if constraints.filters else '')
        return empty_proposal(
            f'abstained: the best grasp{where} scores {best:.3f}, below the floor '
            f'{request.floor:.3f}; no grasp proposed', drawn.drawn, drawn.rejected, start,
            best_score=best, **extra)
    return finish_proposal(actions, inputs, scores, log_density, request.num_grasps,
                           request.ranking, drawn.drawn, drawn.rejected, start, request.floor,
                           constraints.cost(actions, scores), best_score=best, **extra)


class Proposer:
    """Grasp proposals from a trained actor-critic (see the module docstring).

    Thread safety: every call reads one :class:`ModelState` at its start, so
    :meth:`load_state` / :meth:`reload` can swap weights while calls are running; a call
    never mixes two models. A model handed to the proposer must not be trained further
    (pass a copy).

    Args:
        model: ``ActorCritic`` or ``HeatmapModel`` (moved to ``device`` and put in eval mode).
        config: its ``TrainConfig`` (image size, KDE bandwidth).
        device: torch device string ('cpu', 'cuda', 'auto').
        seed: optional seed of the proposer's own generator, used by calls that pass
            neither ``generator`` nor ``seed`` (None: torch's global generator).
        meta: optional metadata of the model (e.g. from its file).
    """

    def __init__(self, model: Network, config: TrainConfig, device: str = 'cpu',
                 seed: Optional[int] = None, meta: Optional[dict[str, Any]] = None) -> None:
        self.device = select_device(device)
        self._state: ModelState
        self.generator = make_generator(self.device, seed=seed)
        self.load_state(model, config, meta)

    @classmethod
    def from_checkpoint(cls, path: Optional[str | os.PathLike] = None, device: str = 'cpu',
                        seed: Optional[int] = None) -> 'Proposer':
        """Proposer for an exported model or training checkpoint.

        Args:
            path: model file; None: the bundled model ``share/fga_ros/models/fga_cpu_js.pt``.

        Raises:
            FileNotFoundError: no such file (names it). CheckpointError: unusable file,
                calibration or novelty gate (names the file).
        """
        path = _model_path(path)
        model, config, meta = load_model(path, map_location=select_device(device))
        try:
            return cls(model, config, device=device, seed=seed, meta=meta)
        except ValueError as error:  # its calibration or novelty gates
            raise CheckpointError(f'{path}: {error}') from None

    def snapshot(self) -> ModelState:
        """The current :class:`ModelState` (model, config, meta)."""
        return self._state

    @property
    def config(self) -> TrainConfig:
        """``TrainConfig`` of the model in service."""
        return self._state.config

    def load_state(self, model: Network, config: TrainConfig,
                   meta: Optional[dict[str, Any]] = None) -> None:
        """Answer later calls from ``model`` / ``config``; running calls finish on the old.

        The calibration and novelty gates come from ``meta`` (none stored: raw critic
        probabilities, no gate).

        Raises:
            ValueError: a model without the heads, or a malformed calibration or gate.
        """
        if not all(hasattr(model, name) for name in ('features', 'sample', 'score')):
            raise ValueError(f'model must provide features, sample and score, got '
                             f'{type(model).__name__}')
        meta = dict(meta or {})
        calibration, gates = Calibration.from_meta(meta), gates_from_meta(meta)
        if gates:
            with torch.inference_mode():
                blank = torch.zeros((1, 3, model.input_size, model.input_size),
                                    dtype=torch.uint8, device=next(model.parameters()).device)
                channels = model.features(blank).trunk.shape[1]
            for gate in gates:
                if len(gate.mean) != 2 * channels:
                    raise ValueError(f'novelty gate {gate.statistic!r} holds '
                                     f'{len(gate.mean)} features, the model gives '
                                     f'{2 * channels}: it was fitted for another model')
        # One reference assignment: calls running now keep the state they read.
        self._state = ModelState(model.to(self.device).eval(), config, meta, calibration, gates)

    def reload(self, path: Optional[str | os.PathLike] = None) -> None:
        """Load a model file (None: the bundled one) and swap it in atomically.

        On any error the current model stays in service and the error propagates.
        """
        path = _model_path(path)
        model, config, meta = load_model(path, map_location=self.device)
        try:
            self.load_state(model, config, meta)
        except ValueError as error:
            raise CheckpointError(f'{path}: {error}') from None

    def _generator(self, generator: Optional[torch.Generator],
                   seed: Optional[int]) -> Optional[torch.Generator]:
        chosen = make_generator(self.device, generator, seed)
        return self.generator if chosen is None else chosen

    def sample_actions(self, image: np.ndarray, n: int,
                       generator: Optional[torch.Generator] = None,
                       seed: Optional[int] = None, resample: int = RESAMPLE,
                       explore_share: float = EXPLORE_SHARE, sharpness: float = SHARPNESS
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples for one image and their KDE log-densities.

        With ``resample`` > 1 and a feasibility critic (``resampling.can_resample``): drawn
        towards the critic's target (its logit averaged over the calibration's views and
        scaled by ``sharpness``, 0..MAX_SHARPNESS) from ``resample * n`` actor samples and
        ``explore_share`` as many grasps centred on the object, with the pool's KDE
        log-density (``resampling``); otherwise the model's own samples
        (``sample_with_density``). Both: (actions (n, 3) float64 px/rad, log_density (n,)
        float64 in network units). The pool's KDE is quadratic in it: about 0.13 s for
        1,024 samples on 2 CPU cores, 31 s for MAX_SAMPLES.
        """
        state = self._state
        generator = self._generator(generator, seed)
        n = check_count('n', n, 1, MAX_SAMPLES)
        resample = check_count('resample', resample, 1, MAX_RESAMPLE)
        explore_share = check_number('explore_share', explore_share, 0.0, MAX_EXPLORE_SHARE)
        sharpness = check_number('sharpness', sharpness, 0.0, MAX_SHARPNESS)
        if resample == 1 or not can_resample(state.model, state.config):
            return sample_with_density(state.model, state.config, image, n, generator)
        check_pool(n, resample, explore_share)
        check_image(image)
        with torch.inference_mode():
            out, log_density = resampled_samples(
                state.model, state.config.kde_bandwidth, state.calibration, image,
                _all_view_features(state, image, self.device), n,
                pool_sizes(n, resample, explore_share), sharpness, generator)
            actions = decode_actor(out)
        return (actions.cpu().numpy().astype(np.float64),
                log_density.cpu().numpy().astype(np.float64))

    def propose(self, image: np.ndarray, num_grasps: int = NUM_GRASPS,
                reject_fraction: float = REJECT_FRACTION, ranking: str = RANKING,
                generator: Optional[torch.Generator] = None, seed: Optional[int] = None,
                oversample: int = OVERSAMPLE, constraints: Optional[TaskConstraints] = None,
                floor: float = SCORE_FLOOR, explore: int = EXPLORE,
                time_budget: float = TIME_BUDGET_S,
                min_candidates: int = MIN_CANDIDATES) -> Proposal:
        """Ranked, density-filtered grasp proposals for one camera image (module docstring).

        Args:
            image: (128, 128, 3) uint8 RGB camera frame.
            num_grasps: grasps to return, 1..MAX_GRASPS.
            reject_fraction: share of lowest-density samples rejected, [0, 1).
            ranking: 'score' or 'diverse' (see ``rank_order``).
            oversample: actor samples per returned grasp, 1..MAX_OVERSAMPLE (module doc).
            constraints: :class:`TaskConstraints` (None: none).
            floor: score floor in [0, 1] (ranking and abstention).
            explore: grasps centred on the object the critic scores per round,
                0..MAX_SAMPLES.
            time_budget: s after which no further round starts (constrained calls), > 0.
            min_candidates: actor samples drawn at least per round, 1..MAX_SAMPLES.
            generator / seed: optional randomness for reproducible proposals.

        Returns:
            :class:`Proposal` with ``num_grasps`` rows in rank order, or none and a
            ``message`` when it abstains.

        Raises:
            ValueError: naming the bad argument.
        """
        start = time.perf_counter()
        check_image(image)
        request = _check_request(num_grasps, reject_fraction, ranking, oversample, explore,
                                 min_candidates, floor, time_budget)
        constraints = NO_CONSTRAINTS if constraints is None else constraints
        generator = self._generator(generator, seed)
        state = self._state
        with torch.inference_mode():
            features, views = _all_view_features(state, image, self.device)
            novelty, why = (gate_verdict(state.gates, features.trunk) if state.gates
                            else (math.nan, ''))
            if why:
                return empty_proposal(
                    f'abstained: the image does not look like a scene the model was trained '
                    f'on ({why}); no grasp proposed', 0, 0, start, novelty=novelty,
                    num_rounds=0)
            drawn = self._draw_rounds(state, image, (features, views), request, constraints,
                                      generator, start)
        return _answer(drawn, request, constraints, novelty, start)

    def _draw_rounds(self, state: ModelState, image: np.ndarray,
                     all_features: tuple[ImageFeatures, Optional[ImageFeatures]],
                     request: _Request, constraints: TaskConstraints,
                     generator: Optional[torch.Generator], start: float) -> _Rounds:
        """Rounds of candidates until one is enough: without filtering constraints always
        one; with them, until ``num_grasps`` allowed candidates reach the floor, the
        sample budget is spent or ``time_budget`` has passed."""
        rounds: list[tuple[np.ndarray, ...]] = []
        drawn, explored, rejected, best_any = 0, 0, 0, -math.inf
        while True:
            batch = self._round(state, image, all_features, request.num_sampled,
                                request.reject_fraction, request.explore, generator)
            drawn += request.num_sampled
            explored += request.explore
            rejected += num_to_reject(request.num_sampled, request.reject_fraction)
            best_any = max(best_any, float(batch[2].max()))
            allowed = constraints.allowed(batch[0], batch[2])
            rounds.append(tuple(a[allowed] for a in batch))
            if not constraints.filters:
                break
            good = sum(int((r[2] >= request.floor).sum()) for r in rounds)
            if good >= request.num_grasps or drawn + request.num_sampled > MAX_SAMPLES \
                    or time.perf_counter() - start > request.time_budget:
                break
        return _Rounds(rounds, drawn, explored, rejected, best_any)

    def _round(self, state: ModelState, image: np.ndarray,
               all_features: tuple[ImageFeatures, Optional[ImageFeatures]], num_sampled: int,
               reject_fraction: float, explore: int,
               generator: Optional[torch.Generator]) -> tuple[np.ndarray, ...]:
        """One round of candidates: (actions (m, 3), critic inputs (m, 4), calibrated scores
        (m,), log-densities (m,)) numpy arrays; actor samples first, then explored grasps.
        ``all_features``: those of the image and of its other views (``_all_view_features``).
        """
        model, config, calibration = state.model, state.config, state.calibration
        features, views = all_features
        out = model.sample(features, num_sampled, generator)[0]
        log_density = self_log_density(out, config.kde_bandwidth)
        keep = torch.topk(log_density, num_sampled - num_to_reject(num_sampled, reject_fraction),
                          sorted=False).indices
        out, log_density = out[keep], log_density[keep]
        inputs = normalise_actor_output(out)
        if explore:
            extra = object_critic_inputs(image, explore, generator, self.device)
            inputs = torch.cat([inputs, extra])
        first = model.score(features, inputs[None])[0]  # the image as it is
        if explore:  # screened on the first view, then scored on all
            found = len(out) + torch.nonzero(
                calibration.scores(first[len(out):]) >= EXPLORE_MIN_SCORE)[:, 0]
            index = torch.cat([torch.arange(len(out), device=self.device), found])
            inputs, first = inputs[index], first[index]
        scores = calibration.scores(calibration.logits(model, features, inputs, first, views))
        if explore:
            passed = len(out) + torch.nonzero(scores[len(out):] >= EXPLORE_MIN_SCORE)[:, 0]
            found_density = (kde_log_density(inputs[passed], out, config.kde_bandwidth)
                             if len(passed) else log_density[:0])
            index = torch.cat([torch.arange(len(out), device=self.device), passed])
            inputs, scores = inputs[index], scores[index]
            log_density = torch.cat([log_density, found_density])
        actions = decode_actor(inputs)
        return (actions.cpu().numpy().astype(np.float64), inputs.cpu().numpy(),
                scores.cpu().numpy().astype(np.float64),
                log_density.cpu().numpy().astype(np.float64))


def bundled_model_path() -> Path:
    """Path of the model shipped with the package: ``share/fga_ros/models/fga_cpu_js.pt``."""
    return share_path(*BUNDLED_MODEL)


def _model_path(path: Optional[str | os.PathLike]) -> str | os.PathLike:
    return bundled_model_path() if path is None else path
