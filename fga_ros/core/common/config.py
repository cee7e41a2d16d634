"""Training configuration: one frozen dataclass, the single source of truth for defaults.

The defaults are the paper's setting (Table 4, 128x128 observations, 10^6 steps); the
YAML presets under ``config/presets/`` override some of them (``cpu``, ``tiny``).
Sizes and widths the paper does not state (channel widths, latent size, learning rates)
are our choices and say so in their docstrings.
"""

import ast
import dataclasses
from dataclasses import dataclass, field
import functools
import inspect
import math
from pathlib import Path
import typing
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from fga_ros.core.common.choices import (
    ACTOR_HEADS,
    CAMERA_VIEWS,
    CRITIC_READOUTS,
    DIVERGENCES,
    F_DIVERGENCES,
    HEATMAP_METHODS,
    KDE_BANDWIDTH,
    METHODS,
    PROPOSAL_BANDWIDTH,
)
from fga_ros.resources import share_path
from fga_ros.safe_yaml import clip, parse_yaml, quote, read_yaml_mapping
from fga_ros.sim import DISTORTIONS, train_shapes
from fga_ros.sim import shapes as sim_shapes

ARCHITECTURE_FIELDS = (
    'image_size', 'embed_channels', 'num_blocks', 'bottleneck_channels',
    'pixel_mlp_channels', 'latent_dim', 'actor_head', 'actor_hidden', 'critic_hidden',
    'critic_readout',
    'readout_span', 'readout_width', 'method', 'heatmap_angles', 'actor_angle_bins',
    'camera_view',
)
"""Fields that fix the network's parameter shapes (a checkpoint must agree on them)."""
ACTOR_ARCHITECTURE_FIELDS = ('latent_dim', 'actor_head', 'actor_hidden', 'actor_angle_bins')
"""The architecture fields of the actor head alone; the others, but ``camera_view``, fix the
extractor and the critic (a warm start copies those from another model)."""
WARM_START_FREE_FIELDS = ACTOR_ARCHITECTURE_FIELDS + ('camera_view',)
"""Architecture fields a warm start may change: the actor head's, and the camera view (fitted
anew after the new run's prefill)."""


UPPER_BOUNDS = {
    # networks: a file's config cannot ask for layers that do not fit in memory
    'image_size': 512, 'embed_channels': 1024, 'num_blocks': 64, 'bottleneck_channels': 1024,
    'pixel_mlp_channels': 1024, 'latent_dim': 256, 'actor_hidden': 4096, 'critic_hidden': 4096,
    'readout_span': 256.0, 'readout_width': 256.0, 'heatmap_angles': 64,
    'actor_angle_bins': 64,
    'heatmap_beta': 10_000.0,
    # estimators and batches
    'num_supports': 4096, 'resample_per_support': 64, 'uncertainty_proposals': 16384,
    'actor_batch': 1024, 'critic_batch': 16384, 'critic_actions_per_state': 256,
    'kde_bandwidth': 100.0, 'proposal_bandwidth': 100.0,
    # replay memory: ring arrays take 20 bytes per experience
    'replay_positive': 5_000_000, 'replay_negative': 5_000_000,
    'prefill_examples': 10_000_000, 'prefill_scenes': 1_000_000,
    # schedule and bookkeeping
    'steps': 10 ** 9, 'interaction_steps': 1024, 'grasps_per_state': 16384, 'critic_steps': 100,
    'actor_steps': 100, 'lr_actor': 10.0, 'lr_critic': 10.0, 'eval_every': 10 ** 9,
    'eval_states': 100_000, 'eval_actions': 16384, 'checkpoint_every': 10 ** 9,
    'log_every': 10 ** 9, 'seed': 2 ** 63 - 1, 'num_threads': 1024,
}
"""Largest accepted value of each numeric field (of each element for lists). The bounds
are far above every preset; they keep a hand-written or crafted config (a preset, a model
file's stored config) from asking for networks or buffers that cannot fit in memory."""
MIN_BANDWIDTH = 1e-4
"""Smallest KDE bandwidth component, network units (smaller ones underflow the kernel in
float32: every sample's density would be that of its own kernel alone)."""

MAX_LAYERS = 16
"""Most hidden layers of ``actor_hidden`` / ``critic_hidden``."""
MAX_SHAPES = 64
"""Most entries of ``shapes`` (repeating a shape weights it)."""
MAX_BATCH_ACTIVATIONS = 2 ** 26
"""Largest batch (critic, actor or interaction) times ``embed_channels`` times the trunk
map's cells: the floats of one trunk activation (the paper's setting: 3.8 M)."""
MAX_KDE_PAIRS = 2 ** 27
"""Largest ``actor_batch * num_supports * num_supports * resample_per_support``: the kernel
entries of one actor step (the paper's setting: 0.5 M)."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of networks, estimators, replay memory and the training schedule."""

    # Networks (appendix B, figure 5). Widths are not given in the paper: ours.
    image_size: int = 128
    """network input side in pixels; 128-pixel observations are resized (area) to it"""
    embed_channels: int = 64
    """channels of the 5x5, stride-3 embedding convolution and of the residual trunk"""
    num_blocks: int = 7
    """residual bottleneck blocks after the embedding (paper: 7)"""
    bottleneck_channels: int = 32
    """inner channels of each bottleneck block (1x1 -> 3x3 -> 1x1)"""
    pixel_mlp_channels: tuple = (64, 32, 8)
    """output channels of the 3 pixel-wise shared MLP layers (1x1 convs); the last one
    times the trunk's spatial size is the image feature length"""
    latent_dim: int = 4
    """d, dimension of the actor's latent input z ~ Uniform([-1, 1]^d)"""
    actor_head: str = 'flat'
    """the actor: 'flat' (appendix B: MLP on the flattened feature vector and z) or
    'spatial' (a choice among the trunk map's cells, then a local MLP on the features
    around the chosen cell; fga_ros/core/models/spatial_actor.py)"""
    actor_angle_bins: int = 1
    """spatial actor: angle bins of its discrete choice, a choice being a (cell, bin) pair
    and the local MLP placing alpha within the bin's pi / actor_angle_bins, or up to
    spatial_actor.BIN_OVERLAP of a bin past its edges (1: one choice per cell, alpha
    free)"""
    actor_hidden: tuple = (256, 256, 256)
    """widths of the actor's hidden FC layers; a 4-unit output layer follows (4 FC layers)"""
    critic_hidden: tuple = (256, 256)
    """widths of the critic's hidden FC layers; a 1-unit logit layer follows (3 FC layers)"""
    critic_readout: str = 'flat'
    """how the critic reads the image: 'flat' (appendix B: MLP on the flattened feature
    vector and the action) or 'local' (trunk features and image pixels sampled along the
    gripper at the action; fga_ros/core/models/local_critic.py)"""
    readout_span: float = 14.0
    """local readout: half-length of the sampled segment along the closing direction, in
    pixels of the 128-pixel observation (default: the simulated gripper's claw reach,
    aperture / 2 + claw thickness)"""
    readout_width: float = 6.0
    """local readout: extent of the sampled pixels across the closing direction, same
    pixels (default: the simulated gripper's claw width)"""
    camera_view: str = 'table'
    """'table' (the image is the table seen from straight above, pixel = table point) or
    'fitted' (the trainer fits the camera's table-to-image homography from the prefill's
    successful grasps; the actor-critic rectifies every 128-px camera image with it, then
    reduces it to ``image_size``; the heat-map methods keep their maps in camera pixels and
    map grasps through it; fga_ros/core/models/camera_view.py, heatmap_nets.py)"""

    # Method: the paper's actor-critic or a heat-map baseline (appendix D.1).
    method: str = 'actor-critic'
    """what is trained: 'actor-critic' (the paper's generative actor and critic),
    'heatmap' (H: a fully convolutional network scores, per rotation of the image, grasps
    closing along the image x axis at every pixel) or 'stacked-heatmap' (SH: one network
    pass, one output channel per angle); the heat-map methods have no actor, so the actor
    fields (actor_head, actor_hidden, latent_dim, divergence, actor_steps, lr_actor, the
    KDE estimator's sizes), critic_hidden, critic_readout and pixel_mlp_channels do not
    apply to them (fga_ros/core/models/heatmap_nets.py)"""
    heatmap_angles: int = 16
    """heat-map methods: gripper angles alpha = k pi / heatmap_angles, k = 0, 1, ...
    (paper: 16)"""
    heatmap_beta: float = 100.0
    """heat-map methods: inverse temperature beta of eq. 14, grasps are drawn with
    probability proportional to xi^beta over the heat map's cells (paper: 100)"""

    # Objective and estimators (sections 3-4, Table 4).
    divergence: str = 'js'
    """actor objective: 'js', 'fkl', 'rkl' (f-divergences), 'gan' or 'me' (baselines)"""
    num_supports: int = 128
    """N, actor samples per state, the KDE supports"""
    resample_per_support: int = 2
    """m, proposal samples drawn around each support (M = m * N)"""
    uncertainty_proposals: int = 64
    """U, actor proposals per interaction; the one the critic is least sure of is tried"""
    actor_batch: int = 16
    """K, states per actor step"""
    critic_batch: int = 32
    """L, experiences per critic step, half positive and half negative"""
    critic_actions_per_state: int = 1
    """experiences per replayed state in a critic step: each of the L balanced draws
    brings this many of its state's experiences (1: the paper's batch)"""
    kde_bandwidth: tuple = KDE_BANDWIDTH
    """sigma, KDE standard deviations of [x, y, r sin(2 alpha), r cos(2 alpha)] in network
    units (x, y: workspace half-width = 1)"""
    proposal_bandwidth: tuple = PROPOSAL_BANDWIDTH
    """sigma', standard deviations of the resampling (proposal) KDE, same units"""
    cell_fkl_weight: float = 0.0
    """spatial actor, f-divergences: weight of the forward KL from the critic's feasibility
    mass per trunk cell to the cell probabilities, a mode-covering term on the cell choice
    (``updates.cell_fkl_loss``; 0: off)"""
    choice_surrogate_weight: float = 1.0
    """spatial actor: weight of the score-function gradient of the actor's own objective on
    its discrete choices (``divergences.choice_surrogate``); 0 leaves the choice
    probabilities to the ``cell_fkl_weight`` term alone, which then has to be > 0"""

    # Replay memory (section 4.1).
    replay_positive: int = 160_000
    """capacity of the positive (successful grasp) memory, experiences"""
    replay_negative: int = 160_000
    """capacity of the negative (failed grasp) memory, experiences"""
    prefill_examples: int = 80_000
    """imitation + random experiences stored before training (Algorithm 1, line 1)"""
    prefill_scenes: int = 2_000
    """distinct scenes the prefill examples are spread over"""
    prefill_imitation_fraction: float = 0.5
    """share of prefill examples drawn from the ground-truth feasible set (rest: random)"""

    # Schedule and optimisation (Algorithm 1). Learning rates are not given: ours (Adam).
    steps: int = 1_000_000
    """training steps (outer iterations of Algorithm 1)"""
    interaction_steps: int = 1
    """new states per training step, collected as one batch (over ROS: one per simulator,
    in parallel)"""
    grasps_per_state: int = 1
    """grasps tried on each new state: the most uncertain of the U proposals (paper: 1)"""
    critic_steps: int = 2
    """critic updates per training step"""
    actor_steps: int = 1
    """actor updates per training step"""
    lr_actor: float = 1e-4
    """Adam learning rate of the actor head"""
    lr_critic: float = 1e-4
    """Adam learning rate of the critic head and the shared feature extractor"""

    # World.
    shapes: tuple = field(default_factory=train_shapes)
    """simulator shape families used for training (default: the simulator's training split,
    H, 8, Spoon, T; Box is held out for testing)"""
    distortion: str = 'none'
    """camera distortion of the simulator (appendix D)"""

    # Bookkeeping.
    eval_every: int = 10_000
    """steps between evaluations (0: never)"""
    eval_states: int = 64
    """scenes per shape in each evaluation"""
    eval_actions: int = 1024
    """actor samples per evaluation scene (paper: 1024)"""
    checkpoint_every: int = 5_000
    """steps between checkpoints (0: only at the end)"""
    log_every: int = 100
    """steps between logged scalars"""
    seed: int = 0
    """seed of every random generator (numpy, torch, simulator)"""
    device: str = 'auto'
    """torch device: 'auto' (cuda when available, else cpu), 'cpu', 'cuda', 'cuda:1', ..."""
    num_threads: int = 0
    """torch intra-op CPU threads (0: torch's default)"""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check types and ranges; raise ``ValueError`` naming the first bad field."""
        self._check_types()
        self._check_ranges()
        self._check_choices()

    def _check_types(self) -> None:
        """Every field of its declared type (tuple elements included), floats finite."""
        hints = typing.get_type_hints(TrainConfig)
        for name in field_names():
            _check_type(name, getattr(self, name), hints[name])
        for name in field_names():
            value = getattr(self, name)
            numbers = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                raise ValueError(f'{name} must be finite, got {quote(value)}')

    def _check_ranges(self) -> None:
        """Counts, sizes and rates within their ranges and upper bounds."""
        positive = (
            'image_size', 'embed_channels', 'num_blocks', 'bottleneck_channels', 'latent_dim',
            'num_supports', 'resample_per_support', 'uncertainty_proposals', 'actor_batch',
            'critic_batch', 'replay_positive', 'replay_negative', 'prefill_scenes', 'steps',
            'interaction_steps', 'grasps_per_state', 'critic_actions_per_state',
            'readout_span', 'readout_width', 'eval_states', 'eval_actions', 'log_every',
            'lr_actor', 'lr_critic', 'heatmap_angles', 'heatmap_beta', 'actor_angle_bins',
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {quote(getattr(self, name))}')
        for name in ('prefill_examples', 'critic_steps', 'actor_steps', 'eval_every',
                     'checkpoint_every', 'seed', 'num_threads', 'cell_fkl_weight',
                     'choice_surrogate_weight'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {quote(getattr(self, name))}')
        for name, length, low in (('pixel_mlp_channels', 3, 1),
                                  ('kde_bandwidth', 4, MIN_BANDWIDTH),
                                  ('proposal_bandwidth', 4, MIN_BANDWIDTH)):
            value = getattr(self, name)
            if len(value) != length or not all(v >= low for v in value):
                raise ValueError(f'{name} must hold {length} values >= {low:g}, got '
                                 f'{quote(value)}')
        for name in ('actor_hidden', 'critic_hidden'):
            value = getattr(self, name)
            if not value or len(value) > MAX_LAYERS or not all(v > 0 for v in value):
                raise ValueError(f'{name} must hold 1 to {MAX_LAYERS} widths > 0, got '
                                 f'{quote(value)}')
        for name, bound in UPPER_BOUNDS.items():
            value = getattr(self, name)
            if any(v > bound for v in (value if isinstance(value, tuple) else (value,))):
                raise ValueError(f'{name} must be at most {bound}, got {quote(value)}')
        if not 0.0 <= self.prefill_imitation_fraction <= 1.0:
            raise ValueError('prefill_imitation_fraction must be in [0, 1], got '
                             f'{quote(self.prefill_imitation_fraction)}')

    def _check_choices(self) -> None:
        """Names among the known choices, and the fields that constrain each other."""
        if self.actor_head not in ACTOR_HEADS:
            raise ValueError(f'actor_head must be one of {ACTOR_HEADS}, got '
                             f'{quote(self.actor_head)}')
        if self.camera_view not in CAMERA_VIEWS:
            raise ValueError(f'camera_view must be one of {CAMERA_VIEWS}, got '
                             f'{quote(self.camera_view)}')
        if self.critic_readout not in CRITIC_READOUTS:
            raise ValueError(f'critic_readout must be one of {CRITIC_READOUTS}, got '
                             f'{quote(self.critic_readout)}')
        if self.grasps_per_state > self.uncertainty_proposals:
            raise ValueError(f'grasps_per_state ({self.grasps_per_state}) must not exceed '
                             f'uncertainty_proposals ({self.uncertainty_proposals})')
        if self.method not in METHODS:
            raise ValueError(f'method must be one of {METHODS}, got {quote(self.method)}')
        if self.divergence not in DIVERGENCES:
            raise ValueError(f'divergence must be one of {DIVERGENCES}, got '
                             f'{quote(self.divergence)}')
        if self.actor_angle_bins > 1 and self.actor_head != 'spatial':
            raise ValueError('actor_angle_bins > 1 needs actor_head: spatial, got '
                             f'{quote(self.actor_head)}')
        if self.cell_fkl_weight > 0 and (self.actor_head != 'spatial'
                                         or self.divergence not in F_DIVERGENCES):
            raise ValueError('cell_fkl_weight > 0 needs actor_head: spatial and an '
                             f'f-divergence ({", ".join(F_DIVERGENCES)})')
        if (self.actor_head == 'spatial' and self.choice_surrogate_weight == 0
                and self.cell_fkl_weight == 0):
            raise ValueError('choice_surrogate_weight: 0 needs cell_fkl_weight > 0 (nothing '
                             "else trains the spatial actor's choice probabilities)")
        check_scene_choice(self.shapes, self.distortion)
        check_work_bounds(self)
        if self.critic_batch < 2:
            raise ValueError(f'critic_batch must be >= 2 (half positive, half negative), '
                             f'got {self.critic_batch}')
        if not self.device:
            raise ValueError('device must be a non-empty string')


def check_work_bounds(config: TrainConfig) -> None:
    """Raise ValueError when one training step of ``config`` would hold more than
    ``MAX_BATCH_ACTIVATIONS`` floats in a trunk activation or ``MAX_KDE_PAIRS`` kernel
    entries (each field may be within its own bound while their product is not)."""
    grid = (config.image_size - 1) // 3 + 1
    batch = max(config.critic_batch, config.actor_batch,
                config.interaction_steps * config.uncertainty_proposals)
    activations = batch * config.embed_channels * grid * grid
    if activations > MAX_BATCH_ACTIVATIONS:
        raise ValueError(f'a batch of {batch} images of {config.image_size} pixels with '
                         f'embed_channels {config.embed_channels} needs {activations} floats '
                         f'per activation, more than {MAX_BATCH_ACTIVATIONS}')
    if config.method in HEATMAP_METHODS:
        check_heatmap_work(config)
    pairs = (config.actor_batch * config.num_supports * config.num_supports
             * config.resample_per_support)
    if pairs > MAX_KDE_PAIRS:
        raise ValueError(f'actor_batch * num_supports^2 * resample_per_support = {pairs}, '
                         f'more than {MAX_KDE_PAIRS}')


def check_heatmap_work(config: TrainConfig) -> None:
    """Raise ValueError when a heat-map network pass of ``config`` would hold more than
    ``MAX_BATCH_ACTIVATIONS`` floats in its full-resolution activation (embed_channels at
    image_size squared per image). H passes one image per tried rotation: each replayed
    experience in a critic step, every angle of every new state in an interaction."""
    rotated = config.method == 'heatmap'
    images = max(config.critic_batch * (config.critic_actions_per_state if rotated else 1),
                 config.interaction_steps * (config.heatmap_angles if rotated else 1))
    activations = images * config.embed_channels * config.image_size ** 2
    if activations > MAX_BATCH_ACTIVATIONS:
        raise ValueError(f'method {config.method}: a pass over {images} images of '
                         f'{config.image_size} pixels with embed_channels '
                         f'{config.embed_channels} needs {activations} floats per '
                         f'activation, more than {MAX_BATCH_ACTIVATIONS}')


def check_scene_choice(shapes: Sequence[str], distortion: str) -> None:
    """Raise ValueError unless ``shapes`` names one or more of the simulator's shape families
    and ``distortion`` is one of its distortions (a config's, or the simulator node's)."""
    if not 1 <= len(shapes) <= MAX_SHAPES:
        raise ValueError(f'shapes must name at least one shape and at most {MAX_SHAPES}, '
                         f'got {len(shapes)}')
    known = sim_shapes()
    unknown = [s for s in shapes if s not in known]
    if unknown:
        raise ValueError(f'shapes: unknown shape(s) {quote(unknown)}; valid shapes: '
                         f'{", ".join(known)}')
    if distortion not in DISTORTIONS:
        raise ValueError(f'distortion must be one of {DISTORTIONS}, got {quote(distortion)}')


_ELEMENT_TYPES = {
    'pixel_mlp_channels': int, 'actor_hidden': int, 'critic_hidden': int,
    'kde_bandwidth': float, 'proposal_bandwidth': float, 'shapes': str,
}


_TYPE_NAMES = {int: ('an integer', 'integers'), float: ('a number', 'numbers'),
               str: ('a string', 'strings')}


def _is_kind(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check_type(name: str, value: Any, kind: type) -> None:
    if kind is tuple:
        element = _ELEMENT_TYPES[name]
        if not isinstance(value, tuple) or not all(_is_kind(v, element) for v in value):
            raise ValueError(f'{name} must be a list of {_TYPE_NAMES[element][1]}, '
                             f'got {quote(value)}')
    elif not _is_kind(value, kind):
        raise ValueError(f'{name} must be {_TYPE_NAMES[kind][0]}, got {quote(value)}')


def _parse_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f'{name} must be a number, got {quote(text)}') from None
    if not math.isfinite(value):
        raise ValueError(f'{name} must be finite, got {quote(text)}')
    return value


def _coerce(name: str, value: Any, kind: type) -> Any:
    """Convert a YAML/JSON value to the field's type (lists -> tuples, ints -> floats).

    Strings are accepted for float fields when they spell a finite number, because YAML 1.1
    (PyYAML) reads ``1e-4`` (no dot) as a string; integers are accepted as shape names
    (YAML reads an unquoted ``8`` as a number).
    """
    if kind is float and isinstance(value, str):
        value = _parse_float(name, value)
    if kind is tuple and isinstance(value, list):
        value = tuple(value)
    if name == 'shapes' and isinstance(value, tuple):
        value = tuple(str(v) if _is_kind(v, int) else v for v in value)
    if kind is tuple and isinstance(value, tuple) and _ELEMENT_TYPES[name] is float:
        value = tuple(float(v) if _is_kind(v, float) else v for v in value)
    if kind is float and _is_kind(value, float):
        value = float(value)
    _check_type(name, value, kind)
    return value


def field_names() -> tuple[str, ...]:
    """Names of all ``TrainConfig`` fields, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig))


@functools.lru_cache(maxsize=None)
def field_descriptions() -> dict[str, str]:
    """``{field name: its docstring}`` (one line), e.g. for ROS parameter descriptors."""
    class_def = ast.parse(inspect.getsource(TrainConfig)).body[0]
    assert isinstance(class_def, ast.ClassDef)
    body = class_def.body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and isinstance(after, ast.Expr) \
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            docs[node.target.id] = ' '.join(after.value.value.split())
    return docs


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Return ``config`` as a plain dict (tuples become lists) for YAML and checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()}


def config_from_dict(values: object, base: Optional[TrainConfig] = None,
                     source: str = 'config') -> TrainConfig:
    """Build a ``TrainConfig`` from ``base`` (default: the defaults) updated with ``values``.

    Args:
        values: mapping of field name -> value (lists accepted for tuple fields).
        base: config whose fields are kept where ``values`` is silent.
        source: what ``values`` came from, used in error messages.

    Raises:
        ValueError: unknown key (the message lists the valid ones), wrong type or range.
    """
    if not isinstance(values, dict):
        raise ValueError(f'{source} must be a mapping of option: value, '
                         f'got {type(values).__name__}')
    names = field_names()
    unknown = [clip(k) for k in values if k not in names]
    if unknown:
        listed = ', '.join(unknown[:5]) + (f' (and {len(unknown) - 5} more)'
                                           if len(unknown) > 5 else '')
        raise ValueError(f'{source}: unknown option(s) {listed}; valid options: '
                         f'{", ".join(names)}')
    hints = typing.get_type_hints(TrainConfig)
    coerced = {}
    for key, value in values.items():
        try:
            coerced[key] = _coerce(key, value, hints[key])
        except ValueError as error:
            raise ValueError(f'{source}: {error}') from None
    try:
        return dataclasses.replace(base if base is not None else TrainConfig(), **coerced)
    except ValueError as error:
        raise ValueError(f'{source}: {error}') from None


def preset_names() -> tuple[str, ...]:
    """Names of the presets shipped in ``config/presets``."""
    return tuple(sorted(p.stem for p in share_path('config', 'presets').glob('*.yaml')))


def resolve_config_path(preset_or_path: Union[str, Path]) -> Path:
    """Return the YAML file for a preset name or a path to a YAML file.

    Raises:
        FileNotFoundError: neither a preset nor an existing file (lists the presets).
    """
    text = str(preset_or_path)
    preset = share_path('config', 'presets', text + '.yaml')
    if '/' not in text and '\\' not in text and preset.is_file():
        return preset
    path = Path(text).expanduser()
    if path.is_file():
        return path
    raise FileNotFoundError(f'no preset or YAML file named {quote(text)}; presets: '
                            f'{", ".join(preset_names())}')


def load_config(preset_or_path: Union[str, Path],
                overrides: Optional[Mapping[str, Any]] = None) -> TrainConfig:
    """Load a preset (``'paper'``, ``'cpu'``, ``'tiny'``) or YAML file, then apply overrides.

    Args:
        preset_or_path: preset name (``config/presets/<name>.yaml``) or a YAML file path.
        overrides: optional mapping of field name -> value applied last.

    Raises:
        FileNotFoundError: unknown preset / missing file.
        ValueError: malformed YAML, unknown option, wrong type or range (names the source).
    """
    path = resolve_config_path(preset_or_path)
    config = config_from_dict(read_yaml_mapping(path), source=str(path))
    if overrides:
        config = config_from_dict(dict(overrides), base=config, source='overrides')
    return config


MAX_OVERRIDE_BYTES = 4096
"""Longest value of one ``key=value`` override, bytes."""


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``['steps=1000', 'shapes=[H, T]']`` (YAML values) into an overrides dict.

    Raises:
        ValueError: an item without ``=`` or with a malformed, too long or too deep value.
    """
    overrides = {}
    for item in items:
        key, sep, text = item.partition('=')
        if not sep or not key.strip():
            raise ValueError(f'override {quote(item)} must look like key=value')
        overrides[key.strip()] = parse_yaml(text, f'override {clip(key.strip())}',
                                            MAX_OVERRIDE_BYTES)
    return overrides
