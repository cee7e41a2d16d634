"""The run description file: what a run directory is, and what a resume may change.

``fga train`` and ``trainer_node`` write ``run.yaml`` into the run directory when a run
starts, and update it when it is resumed. It holds the full ``TrainConfig`` (its ``steps``
is the target step count), the preset and the overrides the run was started from, the
evaluation seed, the command and the fga_ros version. A resume takes everything from it;
only the fields the user explicitly asks for are compared with the run's, and applied when
they are ``RESUMABLE_CHANGES``, refused with the reason otherwise. Runs written before this
file existed are described by their checkpoint's config.
"""

import dataclasses
from datetime import datetime, timezone
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

import fga_ros
from fga_ros.core.common.config import (
    ARCHITECTURE_FIELDS,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    field_names,
    load_config,
)
from fga_ros.core.models import model_file
from fga_ros.core.training import checkpoint as ckpt
from fga_ros.file_writes import atomic_write
from fga_ros.safe_yaml import quote, read_yaml_mapping

RUN_FILE = 'run.yaml'
"""Name of the run description inside the run directory."""
RUN_FORMAT = 'fga_ros.run/1'
DEFAULT_PRESET = 'cpu'
"""The preset a new run starts from when none is named."""
CHECKPOINT_NAME = 'checkpoint.pt'
"""File name of the resumable checkpoint inside the run directory."""

RESUMABLE_CHANGES = ('steps', 'interaction_steps', 'grasps_per_state', 'lr_actor',
                     'lr_critic', 'eval_every', 'eval_states', 'eval_actions',
                     'checkpoint_every', 'log_every', 'device', 'num_threads')
"""Config fields a resumed run may change; every other field must match the run's."""

_REASONS = {
    **{name: "the saved network weights have the run's shapes" for name in ARCHITECTURE_FIELDS},
    'divergence': "the actor was trained toward the run's objective; a new run can reuse "
                  "this critic with --warm-start on the run's model.pt",
    'seed': 'the random generators continue from the checkpoint, a new seed would not take '
            'effect',
    'replay_positive': "the saved replay memory has the run's capacity",
    'replay_negative': "the saved replay memory has the run's capacity",
    'shapes': "the replay memory holds experiences of the run's world",
    'distortion': "the replay memory holds experiences of the run's world",
}
_DEFAULT_REASON = "the saved training state was built with the run's value"


class RunError(ValueError):
    """A run directory that cannot be started or resumed as asked (the message says why)."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """Contents of ``run.yaml``.

    Attributes:
        config: the run's full configuration; ``config.steps`` is the target step count.
        preset: preset name or YAML path the run started from (None: not known, a run
            written before ``run.yaml`` existed).
        overrides: fields set over the preset (``--set``, ``--steps``, node parameters),
            as plain YAML values.
        eval_seed: first scene seed of the periodic evaluation (None: the front end's
            default).
        command: the command line (or node) that started the run.
        created: UTC time of the start, ISO 8601.
        warm_start: model or checkpoint the run's critic started from, or None.
        resumes: one dict per resume that changed something or was asked by a new
            command: ``{'step', 'time', 'command', 'changes': {field: [old, new]}}``.
    """

    config: TrainConfig
    preset: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    eval_seed: int | None = None
    command: str = ''
    created: str = ''
    warm_start: str | None = None
    resumes: tuple = ()

    def to_dict(self) -> dict:
        return {'format': RUN_FORMAT, 'fga_ros': fga_ros.__version__,
                'created': self.created, 'command': self.command, 'preset': self.preset,
                'overrides': _plain(dict(self.overrides)), 'eval_seed': self.eval_seed,
                'warm_start': self.warm_start, 'resumes': [_plain(r) for r in self.resumes],
                'config': config_to_dict(self.config)}


def _plain(value):
    """``value`` with tuples as lists, for ``yaml.safe_dump``."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec='seconds')


def holds_run(out_dir: str | os.PathLike) -> bool:
    """Whether ``out_dir`` holds a run: a run description or a training checkpoint."""
    out_dir = Path(out_dir)
    return (out_dir / RUN_FILE).is_file() or (out_dir / CHECKPOINT_NAME).is_file()


def read_run(out_dir: str | os.PathLike) -> RunRecord:
    """The description of the run in ``out_dir``.

    Raises:
        RunError: no run there (names the directory), or an unreadable run file.
        CheckpointError: an older run (no run file) whose checkpoint is unreadable.
    """
    out_dir = Path(out_dir)
    path = out_dir / RUN_FILE
    if not path.is_file():
        checkpoint = out_dir / CHECKPOINT_NAME
        if not checkpoint.is_file():
            raise RunError(f'{out_dir} holds no training run (neither {RUN_FILE} nor '
                           f'{CHECKPOINT_NAME})')
        return RunRecord(config=model_file.config_of(checkpoint,
                                                    ckpt.load_checkpoint(checkpoint)))
    try:
        data = read_yaml_mapping(path)
        if data.get('format') != RUN_FORMAT:
            raise ValueError(f'format {quote(data.get("format"))} is not {RUN_FORMAT!r}')
        config = config_from_dict(data.get('config'), source='its config')
        overrides = data.get('overrides') or {}
        if not isinstance(overrides, dict):
            raise ValueError('overrides must be a mapping')
        eval_seed = data.get('eval_seed')
        if eval_seed is not None and (isinstance(eval_seed, bool) or not isinstance(
                eval_seed, int) or not 0 <= eval_seed < 2 ** 63):
            raise ValueError(f'eval_seed must be an integer in [0, 2**63), got '
                             f'{quote(eval_seed)}')
        resumes = data.get('resumes') or []
        if not isinstance(resumes, list) or not all(isinstance(r, dict) for r in resumes):
            raise ValueError('resumes must be a list of mappings')
        for key in ('preset', 'command', 'created', 'warm_start'):
            if not isinstance(data.get(key) or '', str):
                raise ValueError(f'{key} must be text, got {quote(data.get(key))}')
        return RunRecord(config=config, preset=data.get('preset'), overrides=overrides,
                         eval_seed=eval_seed, command=data.get('command') or '',
                         created=data.get('created') or '', warm_start=data.get('warm_start'),
                         resumes=tuple(resumes))
    except ValueError as error:
        raise RunError(f'{path}: unusable run description: {error}') from None


def write_run(out_dir: str | os.PathLike, record: RunRecord) -> Path:
    """Write ``record`` to ``out_dir/run.yaml`` atomically; return the path."""
    path = Path(out_dir) / RUN_FILE
    text = ('# fga_ros run description, read by `fga train --resume` and trainer_node '
            '(config.steps is the target step count)\n'
            + yaml.safe_dump(record.to_dict(), sort_keys=False))
    atomic_write(path, lambda stream: stream.write(text.encode('utf-8')))
    return path


def config_changes(old: TrainConfig, new: TrainConfig) -> dict:
    """``{field: (old value, new value)}`` for every field where the two configs differ."""
    return {name: (getattr(old, name), getattr(new, name)) for name in field_names()
            if getattr(old, name) != getattr(new, name)}


def refused_changes(old: TrainConfig, new: TrainConfig) -> list:
    """The changes from ``old`` to ``new`` a resumed run may not make, as text: one item per
    reason, ``"name old -> new, ... (reason)"``; empty when the change is allowed."""
    grouped: dict[str, dict[str, tuple]] = {}
    for name, change in config_changes(old, new).items():
        if name not in RESUMABLE_CHANGES:
            grouped.setdefault(_REASONS.get(name, _DEFAULT_REASON), {})[name] = change
    return [f'{format_changes(changes)} ({reason})' for reason, changes in grouped.items()]


def format_changes(changes: Mapping[str, tuple]) -> str:
    """``'lr_actor 0.001 -> 0.002, steps 20 -> 40'``."""
    return ', '.join(f'{name} {old!r} -> {new!r}' for name, (old, new) in changes.items())


def resumed_config(record: RunRecord, preset: str | None = None,
                   overrides: Mapping[str, Any] | None = None,
                   checkpointed: bool = True) -> tuple:
    """The configuration of a resumed run and the changes it makes to the run's.

    Args:
        record: the run's description (``read_run``).
        preset: a preset explicitly asked for, or None: the run's own configuration. An
            explicit preset is read with the run's overrides and then ``overrides`` on top,
            so naming the run's own preset again changes nothing.
        overrides: fields explicitly asked for (``--set``, ``--steps``, ...).
        checkpointed: whether the run has a checkpoint; a run stopped before its first one
            holds no training state, so any field may change.

    Returns:
        (config, changes): the configuration to resume with, and ``{field: (old, new)}``.

    Raises:
        RunError: a field a resumed run may not change (every one named with both values
            and the reason), or a bad preset or override.
    """
    overrides = dict(overrides or {})
    try:
        if preset is not None:
            config = load_config(preset, {**record.overrides, **overrides})
        else:
            config = config_from_dict(overrides, base=record.config, source='overrides')
    except (ValueError, FileNotFoundError) as error:
        raise RunError(str(error)) from None
    refused = refused_changes(record.config, config) if checkpointed else []
    if refused:
        raise RunError('a resumed run cannot change ' + '; '.join(refused)
                       + '. It may change ' + ', '.join(RESUMABLE_CHANGES)
                       + '; start a new run directory for other changes')
    return config, config_changes(record.config, config)


def resumed_record(record: RunRecord, config: TrainConfig, preset: str | None,
                   overrides: Mapping[str, Any], command: str, step: int,
                   changes: Mapping[str, tuple]) -> RunRecord:
    """``record`` after a resume at ``step`` with ``config``: the new config, the merged
    overrides (and preset, when one was asked for) and one more entry in ``resumes``."""
    entry = {'step': int(step), 'time': now(), 'command': command,
             'changes': {name: [old, new] for name, (old, new) in changes.items()}}
    return dataclasses.replace(
        record, config=config, preset=record.preset if preset is None else preset,
        overrides={**record.overrides, **_plain(dict(overrides))},
        resumes=record.resumes + (entry,))
