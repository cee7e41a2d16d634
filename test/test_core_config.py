"""Training configuration: presets, YAML loading, validation; device selection."""

import dataclasses

import pytest
import torch

from fga_ros.core.common import choices
from fga_ros.core.common.config import (
    ARCHITECTURE_FIELDS,
    DIVERGENCES,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    field_descriptions,
    field_names,
    load_config,
    parse_overrides,
    preset_names,
)
from fga_ros.core.common.tensors import configure_threads, select_device
from fga_ros.core.estimators import divergences


def test_paper_preset_equals_the_defaults():
    assert load_config('paper') == TrainConfig()


def test_defaults_are_table_4():
    c = TrainConfig()
    assert (c.num_supports, c.resample_per_support, c.uncertainty_proposals) == (128, 2, 64)
    assert (c.actor_batch, c.critic_batch) == (16, 32)
    assert c.kde_bandwidth == (0.025, 0.025, 0.4, 0.4)
    assert c.proposal_bandwidth == (0.075, 0.075, 1.2, 1.2)
    assert (c.replay_positive, c.replay_negative) == (160_000, 160_000)
    assert (c.steps, c.interaction_steps, c.critic_steps, c.actor_steps) == (1_000_000, 1, 2, 1)
    assert (c.image_size, c.num_blocks) == (128, 7)
    assert c.shapes == ('H', '8', 'Spoon', 'T')


@pytest.mark.parametrize('name', ['paper', 'cpu', 'tiny'])
def test_presets_load_and_validate(name):
    config = load_config(name)
    assert isinstance(config, TrainConfig)
    assert name in preset_names()


def test_cpu_and_tiny_are_smaller_than_paper():
    paper, cpu, tiny = (load_config(n) for n in ('paper', 'cpu', 'tiny'))
    assert tiny.image_size < cpu.image_size < paper.image_size
    assert tiny.steps < cpu.steps < paper.steps


def test_divergences_have_one_source():
    assert DIVERGENCES is choices.DIVERGENCES
    assert divergences.F_DIVERGENCES is choices.F_DIVERGENCES
    assert TrainConfig().divergence in DIVERGENCES


def test_dict_round_trip():
    config = load_config('cpu', {'divergence': 'fkl', 'seed': 3})
    values = config_to_dict(config)
    assert isinstance(values['kde_bandwidth'], list)
    assert config_from_dict(values) == config


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().steps = 3


def test_every_field_has_a_description():
    docs = field_descriptions()
    assert set(docs) == set(field_names())
    assert docs['num_supports'] == 'N, actor samples per state, the KDE supports'
    assert '\n' not in docs['pixel_mlp_channels']


def test_architecture_fields_exist():
    assert set(ARCHITECTURE_FIELDS) <= set(field_names())


def test_overrides_apply_and_coerce():
    config = load_config('tiny', {'steps': 7, 'shapes': ['H', 8], 'lr_actor': '1e-4',
                                  'kde_bandwidth': [1, 1, 1, 1]})
    assert config.steps == 7
    assert config.shapes == ('H', '8')
    assert config.lr_actor == pytest.approx(1e-4)
    assert config.kde_bandwidth == (1.0, 1.0, 1.0, 1.0)


def test_yaml_path_and_empty_file(tmp_path):
    path = tmp_path / 'mine.yaml'
    path.write_text('steps: 12\nshapes: [T]\nlr_critic: 1e-3\n')
    config = load_config(str(path))
    assert (config.steps, config.shapes, config.lr_critic) == (12, ('T',), 1e-3)
    empty = tmp_path / 'empty.yaml'
    empty.write_text('# nothing\n')
    assert load_config(str(empty)) == TrainConfig()


def test_unknown_key_names_it_and_lists_valid_ones(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('stepz: 3\n')
    with pytest.raises(ValueError, match=r'stepz.*valid options: image_size') as info:
        load_config(str(path))
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match='unknown option.*nope'):
        load_config('tiny', {'nope': 1})


@pytest.mark.parametrize('key, value, message', [
    ('steps', 'many', 'steps must be an integer'),
    ('steps', 2.5, 'steps must be an integer'),
    ('steps', True, 'steps must be an integer'),
    ('lr_actor', 'fast', 'lr_actor must be a number'),
    ('lr_actor', 'nan', 'lr_actor must be finite'),
    ('actor_hidden', [16, 'wide'], 'actor_hidden must be a list of integers'),
    ('divergence', 'kl', 'divergence must be one of'),
    ('distortion', 'fisheye', 'distortion must be one of'),
    ('shapes', ['Star'], "unknown shape.*'Star'"),
    ('shapes', [], 'at least one shape'),
    ('kde_bandwidth', [0.1, 0.1, 0.0, 0.1], 'kde_bandwidth must hold 4 values >= 0.0001'),
    ('kde_bandwidth', [1e-50] * 4, 'kde_bandwidth must hold 4 values >= 0.0001'),
    ('pixel_mlp_channels', [8, 8], 'pixel_mlp_channels must hold 3 values'),
    ('image_size', 0, 'image_size must be > 0'),
    ('critic_batch', 1, 'critic_batch must be >= 2'),
    ('prefill_imitation_fraction', 1.5, r'prefill_imitation_fraction must be in \[0, 1\]'),
    ('seed', -1, 'seed must be >= 0'),
])
def test_bad_values_are_named(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_config('tiny', {key: value})


def test_direct_construction_validates():
    with pytest.raises(ValueError, match='num_supports must be > 0'):
        TrainConfig(num_supports=0)
    with pytest.raises(ValueError, match='actor_hidden must be a list of integers'):
        TrainConfig(actor_hidden=[16, 16])  # a list is not the declared tuple


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('steps: [1, 2\n')
    with pytest.raises(ValueError, match='broken.yaml: malformed YAML'):
        load_config(str(path))
    path.write_text('- 1\n- 2\n')
    with pytest.raises(ValueError, match='broken.yaml: expected a mapping'):
        load_config(str(path))


def test_unknown_preset_lists_presets():
    with pytest.raises(FileNotFoundError, match='presets: cpu, paper, tiny'):
        load_config('nonexistent')


def test_parse_overrides():
    assert parse_overrides(['steps=10', 'shapes=[H, T]', 'divergence=fkl']) == {
        'steps': 10, 'shapes': ['H', 'T'], 'divergence': 'fkl'}
    with pytest.raises(ValueError, match='key=value'):
        parse_overrides(['steps'])
    with pytest.raises(ValueError, match='override shapes: malformed YAML'):
        parse_overrides(['shapes=[H'])
    with pytest.raises(ValueError, match='override shapes: line 1: aliases'):
        parse_overrides(['shapes=[&a H, *a]'])


def test_select_device():
    assert select_device('cpu') == torch.device('cpu')
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert select_device('auto').type == expected
    with pytest.raises(ValueError, match='unknown device'):
        select_device('toaster')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='CUDA is not available'):
            select_device('cuda')


def test_configure_threads():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        assert configure_threads(0) == 1  # 0 leaves the setting alone
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match='num_threads'):
        configure_threads(-2)
