"""``fga grid``: a rows x columns table of evaluation files (Table 5's layout)."""

import json

import pytest

from fga_ros.cli import main
from fga_ros.core.analysis.result_grid import (
    GRID_METRICS,
    MAX_EVAL_BYTES,
    build_grid,
    format_grid,
)


def _evaluation(path, accuracy, box=0.5):
    shapes = {'H': accuracy, '8': accuracy, 'Spoon': accuracy, 'T': accuracy + 0.2, 'Box': box}
    data = {shape: {name: value / (5 if name == 'last_share_rejected' else 1)
                    for name in GRID_METRICS} | {'states': 4}
            for shape, value in shapes.items()}
    path.write_text(json.dumps(data))
    return path


def test_grid_means_the_training_shapes_and_keeps_every_shape(tmp_path):
    a = _evaluation(tmp_path / 'a.json', 0.6)
    b = _evaluation(tmp_path / 'b.json', 0.2, box=0.9)
    grid = build_grid([('ours', 'none', [a]), ('ours', 'projection', [b]), ('H', 'none', [b])])
    assert grid['rows'] == ['ours', 'H'] and grid['columns'] == ['none', 'projection']
    cell = grid['cells']['ours']['none']
    assert cell['mean']['accuracy_rejected'] == pytest.approx(0.65)  # (3 x 0.6 + 0.8) / 4
    assert cell['mean']['last_share_rejected'] == pytest.approx(0.13)
    assert grid['cells']['ours']['projection']['shapes']['Box']['mode_recall'] == 0.9
    assert 'projection' not in grid['cells']['H']


def test_a_cell_of_several_runs_averages_them_and_keeps_their_range(tmp_path):
    runs = [_evaluation(tmp_path / f'seed{k}.json', value, box=box)
            for k, (value, box) in enumerate([(0.6, 0.5), (0.2, 0.9), (0.4, 0.1)])]
    cell = build_grid([('ours', 'none', runs)])['cells']['ours']['none']
    # each run's training mean is (3 x value + value + 0.2) / 4 = value + 0.05
    assert [r['mean']['accuracy_rejected'] for r in cell['runs']] == pytest.approx(
        [0.65, 0.25, 0.45])
    assert cell['mean']['accuracy_rejected'] == pytest.approx(0.45)
    assert cell['range']['accuracy_rejected'] == pytest.approx([0.25, 0.65])
    assert cell['shapes']['Box']['accuracy_rejected'] == pytest.approx(0.5)
    assert cell['files'] == [str(r) for r in runs]


def test_cli_prints_the_range_of_a_cell_of_several_runs(tmp_path, capsys):
    a, b = _evaluation(tmp_path / 'a.json', 0.6), _evaluation(tmp_path / 'b.json', 0.2)
    figure = tmp_path / 'grid.png'
    assert main(['grid', f'ours/none={a},{b}', f'H/none={a}', '--figure', str(figure)]) == 0
    printed = capsys.readouterr().out
    assert '45.0 [25.0-65.0]' in printed and '65.0' in printed
    assert figure.read_bytes()[:4] == b'\x89PNG'
    assert main(['grid', f'ours/none={a},{a}']) == 2
    assert 'given twice in one cell' in capsys.readouterr().err


def test_a_long_row_name_keeps_the_columns_aligned(tmp_path):
    a, b = _evaluation(tmp_path / 'a.json', 0.6), _evaluation(tmp_path / 'b.json', 0.2)
    long = 'ours-rectified-first-at-10k-steps'
    text = format_grid(build_grid([(long, 'none', [a]), ('H', 'none', [b])]))
    lines = text.splitlines()[:3]  # heading, column names, first row
    assert lines[2].startswith(f'  {long} ')
    assert lines[1].index('none') + len('none') == lines[2].index('65.0') + len('65.0')


def test_cli_writes_json_and_figure_and_prints_the_table(tmp_path, capsys):
    a = _evaluation(tmp_path / 'a.json', 0.6)
    out, figure = tmp_path / 'grid.json', tmp_path / 'grid.png'
    assert main(['grid', f'ours/none={a}', f'ours/both={a}', '--json', str(out),
                 '--figure', str(figure)]) == 0
    printed = capsys.readouterr().out
    assert 'accuracy*' in printed and '65.0' in printed
    assert json.loads(out.read_text())['columns'] == ['none', 'both']
    assert figure.read_bytes()[:4] == b'\x89PNG'


@pytest.mark.parametrize('content, message', [
    ('{"H": {"accuracy_rejected": 1.5}}', 'H accuracy_rejected must be a number in'),
    ('{"H": [1, 2]}', "'H' holds no results"),
    ('[1, 2]', 'not an fga eval JSON'),
    ('{"H": ', 'not a readable evaluation'),
    (' ' * (MAX_EVAL_BYTES + 1), 'more than an evaluation'),
])
def test_bad_evaluation_files_are_named(tmp_path, capsys, content, message):
    bad = tmp_path / 'bad.json'
    bad.write_text(content)
    assert main(['grid', f'ours/none={bad}']) == 2
    err = capsys.readouterr().err
    assert 'bad.json' in err and message in err


def test_malformed_cells_and_repeats_are_refused(tmp_path, capsys):
    a = _evaluation(tmp_path / 'a.json', 0.6)
    for malformed in (f'ours={a}', f'ours/none={a},'):
        assert main(['grid', malformed]) == 2
        assert 'must read ROW/COLUMN=EVAL_JSON' in capsys.readouterr().err
    assert main(['grid', f'ours/none={a}', f'ours/none={a}']) == 2
    assert 'given twice' in capsys.readouterr().err
