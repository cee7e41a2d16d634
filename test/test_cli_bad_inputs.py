"""Crafted bad inputs of the ``fga`` command line: one ``fga <command>: error:`` line that
names the problem, exit status 2, no traceback, nothing lost, before any long work.

Each case was found by feeding the CLI files and flags a careless or hostile user might
(camera YAML, datasets, evaluation JSON, run descriptions, numeric flags, devices)."""

import zipfile

import cv2
import numpy as np
import pytest
import torch

from fga_ros import cli
from fga_ros.core.common.config import config_to_dict
from fga_ros.core.common.dataset import DatasetError, read_dataset, write_dataset
from fga_ros.core.models.nets import ActorCritic
from fga_ros.core.training.checkpoint import save_checkpoint
from fga_ros.image_files import read_image

pytestmark = pytest.mark.usefixtures('one_thread')


def _run(capsys, *argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's refusals: its usage, then the error line
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, *argv, says):
    """The command ends with exit 2 and one error line containing ``says`` (argparse's
    refusals print their usage lines before it)."""
    code, _, err = _run(capsys, *argv)
    errors = [line for line in err.strip().splitlines() if 'error:' in line]
    assert code == 2, err
    assert len(errors) == 1 and 'Traceback' not in err, err
    assert errors[0] == err.strip().splitlines()[-1], err
    assert says in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize('argv, says', [
    (['bench', 'propose', '--repeats', '0'], 'argument --repeats: must be in [1,'),
    (['bench', 'defaults', '--states', '0'], 'argument --states: must be in [1,'),
    (['bench', 'sim', '--seconds', 'inf'], 'argument --seconds: must be a number in (0,'),
    (['bench', 'sim', '--seconds', 'nan'], 'argument --seconds'),
    (['train', '--out', 'x', '--wall-hours', '0'], 'argument --wall-hours'),
    (['train', '--out', 'x', '--wall-hours', '-1'], 'argument --wall-hours'),
    (['train', '--out', 'x', '--seed-eval', '-1'], 'argument --seed-eval: must be in [0,'),
    (['propose', '--seed', str(10 ** 23)], 'argument --seed: must be in [0,'),
    (['sim', '--num-grasps', str(10 ** 9)], 'argument --num-grasps: must be in [0, 4096]'),
    (['record', '--out', 'r.zip', '--per-state', str(10 ** 9)], 'argument --per-state'),
    (['record', '--out', 'r.zip', '--states', '100', '--per-state', '1000000'],
     'a dataset holds at most'),
    (['sim', '--camera-out', 'cam', '--camera-size', '100000x100000'],
     '--camera-size must be at most 4096 px a side'),
    (['bench', 'camera', '--tilts', 'abc'], '--tilts must be comma-separated degrees'),
    (['propose', '--shape', 'H', '--device', 'meta'], "device 'meta' is not supported"),
    (['calibrate', '--out', 'c.pt', '--scenes', str(10 ** 12)], '--scenes must be in [8,'),
    (['calibrate', '--out', 'c.pt', '--shapes', 'bogus'], "unknown shape 'bogus'"),
])
def test_bad_flags_are_refused_before_any_work(capsys, tmp_path, monkeypatch, argv, says):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, *argv, says=says)
    assert not any(tmp_path.iterdir())  # nothing written


def _tiny_checkpoint(path, tiny_config):
    torch.manual_seed(0)
    save_checkpoint(path, {'config': config_to_dict(tiny_config),
                           'model': ActorCritic(tiny_config).state_dict(), 'step': 3})


@pytest.mark.parametrize('flag', ['--checkpoint', '--out'])
def test_calibrate_never_writes_over_a_training_checkpoint(capsys, tmp_path, tiny_config, flag):
    """`fga calibrate --checkpoint RUN/checkpoint.pt` without --out (or any --out naming a
    checkpoint) used to replace the resumable checkpoint with a model file: the run could
    no longer resume."""
    path = tmp_path / 'checkpoint.pt'
    _tiny_checkpoint(path, tiny_config)
    before = path.read_bytes()
    _refused(capsys, 'calibrate', flag, path, '--scenes', 40, says='is a training checkpoint')
    assert path.read_bytes() == before


def _camera_files(tmp_path, capsys):
    out = tmp_path / 'cam'
    code, _, err = _run(capsys, 'sim', '--shape', 'T', '--seed', 4, '--camera-out', out)
    assert code == 0, err
    return out


@pytest.mark.parametrize('file, text, says', [
    ('camera_info.yaml', 'image_width: .inf\nimage_height: 480\ncamera_matrix: {data: '
     '[800, 0, 320, 0, 800, 240, 0, 0, 1]}\n', 'width must be a whole number'),
    ('camera_info.yaml', 'image_width: true\nimage_height: 480\ncamera_matrix: {data: '
     '[800, 0, 320, 0, 800, 240, 0, 0, 1]}\n', 'width must be a whole number'),
    ('camera_info.yaml', 'image_width: 640\nimage_height: 480\ncamera_matrix: {data: '
     '[800, 0, 320, 0, 800, 240, 0, 0, 1]}\ndistortion_coefficients: {data: abc}\n',
     'camera_info d must be a list of numbers'),
    ('camera_info.yaml', '[' * 5000 + ']' * 5000, 'not a readable YAML camera_info file'),
    ('camera_pose.yaml', 'a: &a [1, 2]\ntranslation: [0, 0, 1]\nrotation: [0, 0, 0, 1]\n'
     'camera_frame: *a\n', 'not a readable YAML camera pose file'),
    ('camera_pose.yaml', 'translation: [0, 0, 1]\nrotation: [1.0e308, 1.0e308, 0, 0]\n'
     'camera_frame: [1, 2]\n', 'camera_frame must be a frame name'),
    ('camera_pose.yaml', 'translation: [0, 0, 1]\nrotation: !!python/object/apply:os.system '
     '[ls]\n', 'not a readable YAML camera pose file'),
])
def test_bad_camera_files_are_refused_in_one_line(capsys, tmp_path, file, text, says):
    cam = _camera_files(tmp_path, capsys)
    (cam / file).write_text(text)
    _refused(capsys, 'propose', '--image', cam / 'image.png', '--camera-info',
             cam / 'camera_info.yaml', '--camera-pose', cam / 'camera_pose.yaml', says=says)


def test_a_directory_is_named_as_one(capsys, tmp_path):
    cam = _camera_files(tmp_path, capsys)
    (tmp_path / 'dir.png').mkdir()
    _refused(capsys, 'propose', '--image', tmp_path / 'dir.png', says='is a directory')
    _refused(capsys, 'propose', '--image', cam / 'image.png', '--camera-info', cam,
             '--camera-pose', cam / 'camera_pose.yaml', says='is a directory')


def _dataset(path, successes=True):
    image = np.full((128, 128, 3), 90, np.uint8)
    records = [(image, np.array([[60.0, 60.0, 0.5], [70.0, 62.0, 1.0]]),
                np.array([successes, False]))]
    return write_dataset(path, records, 'test')


def _patched(path, out, name, edit):
    """A copy of the dataset ``path`` at ``out`` whose entry ``name`` is edited."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, 'w') as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, edit(data) if info.filename == name else data)
    return out


def _npy(shape_text):
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}"
    header = header.ljust(118) + '\n'
    return b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header.encode()


def test_bad_datasets_are_refused_before_they_cost_memory(tmp_path):
    good = _dataset(tmp_path / 'good.zip')
    cases = {
        'a header claiming 10**15 rows': (_patched(
            good, tmp_path / 'big.zip', 'actions.npy', lambda _: _npy('(1000000000000000, 3)')),
            'must have shape (2, 3)'),
        'a manifest nested 200,000 deep': (_patched(
            good, tmp_path / 'deep.zip', 'manifest.json',
            lambda _: b'[' * 200_000 + b']' * 200_000), 'manifest.json is not valid JSON'),
    }
    deflated = tmp_path / 'deflated.zip'
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(deflated, 'w') as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), zipfile.ZIP_DEFLATED)
    cases['a compressed entry'] = (deflated, 'compressed or encrypted')
    encrypted = tmp_path / 'encrypted.zip'
    data = bytearray(good.read_bytes())
    for signature, flag_offset in ((b'PK\x03\x04', 6), (b'PK\x01\x02', 8)):
        start = data.find(signature)
        while start >= 0:
            data[start + flag_offset] |= 1
            start = data.find(signature, start + 4)
    encrypted.write_bytes(bytes(data))
    cases['an encrypted entry'] = (encrypted, 'compressed or encrypted')
    for what, (path, says) in cases.items():
        with pytest.raises(DatasetError, match=None) as caught:
            read_dataset(path)
        assert says in str(caught.value), what
        assert len(str(caught.value)) < 300, what
    assert len(read_dataset(good).actions) == 2


def test_a_dataset_without_a_success_is_refused_before_the_run_starts(capsys, tmp_path):
    path = _dataset(tmp_path / 'none.zip', successes=False)
    _refused(capsys, 'train', '--preset', 'tiny', '--out', tmp_path / 'run', '--dataset', path,
             says='holds no successful grasp')
    assert not (tmp_path / 'run').exists()


def test_an_evaluation_json_nested_too_deep_is_refused(capsys, tmp_path):
    deep = tmp_path / 'deep.json'
    deep.write_text('[' * 100_000 + ']' * 100_000)
    line = _refused(capsys, 'grid', f'a/b={deep}', '--json', tmp_path / 'g.json',
                    says='not a readable evaluation')
    assert len(line) < 300


@pytest.mark.parametrize('edit, says', [
    ({'resumes': 5}, 'resumes must be a list of mappings'),
    ({'eval_seed': 'abc'}, 'eval_seed must be an integer'),
    ({'eval_seed': 1.5}, 'eval_seed must be an integer'),
])
def test_a_damaged_run_description_is_refused_at_resume(capsys, tmp_path, tiny_config, edit,
                                                       says):
    import yaml

    from fga_ros.core.training.run_record import RunRecord, write_run
    from fga_ros.safe_yaml import read_yaml_mapping

    run = tmp_path / 'run'
    write_run(run, RunRecord(config=tiny_config, eval_seed=0))
    data = dict(read_yaml_mapping(run / 'run.yaml'), **edit)
    (run / 'run.yaml').write_text(yaml.safe_dump(data))
    _refused(capsys, 'train', '--out', run, '--resume', says=says)


def test_exif_orientation_is_not_applied(tmp_path):
    """Grasp pixels refer to the camera's own pixel grid: an EXIF rotation must not turn
    the image (it used to fail a 640 x 480 image and silently turn a square one)."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :8] = 255  # a bright left edge
    ok, encoded = cv2.imencode('.jpg', image)
    assert ok
    data = bytearray(encoded.tobytes())
    # an APP1 Exif segment holding orientation 6 (turn 90 degrees clockwise)
    tiff = (b'MM\x00*\x00\x00\x00\x08' + b'\x00\x01' + b'\x01\x12\x00\x03\x00\x00\x00\x01'
            + b'\x00\x06\x00\x00' + b'\x00\x00\x00\x00')
    app1 = b'Exif\x00\x00' + tiff
    segment = b'\xff\xe1' + (len(app1) + 2).to_bytes(2, 'big') + app1
    path = tmp_path / 'turned.jpg'
    path.write_bytes(bytes(data[:2]) + segment + bytes(data[2:]))
    read = read_image(path)
    assert read.shape == (48, 64, 3)
    assert read[:, :8].mean() > 200 and read[:, -8:].mean() < 50


def test_a_model_with_a_damaged_calibration_is_named(capsys, tmp_path):
    from fga_ros.core.inference.proposer import bundled_model_path
    from fga_ros.core.models.model_file import export_model, load_model

    model, config, meta = load_model(bundled_model_path())
    meta = dict(meta, calibration=dict(meta['calibration'], bias=float('inf')))
    path = tmp_path / 'bad.pt'
    export_model(path, model, config, meta)
    line = _refused(capsys, 'propose', '--shape', 'H', '--checkpoint', path, says=str(path))
    assert 'bias' in line


def test_too_few_calibration_scenes_are_refused_before_the_work(tiny_config):
    from fga_ros.core.analysis.calibration_fit import fit_calibration, min_scenes

    needed = min_scenes(tiny_config, 4)
    assert 4 * (needed // 2) > 2 * tiny_config.embed_channels  # the gates can be fitted
    assert 4 * ((needed - 2) // 2) <= 2 * tiny_config.embed_channels  # and not with fewer
    with pytest.raises(ValueError, match=f'use at least {needed}'):
        fit_calibration(ActorCritic(tiny_config), tiny_config, ('H', '8', 'Spoon', 'T'),
                        needed - 1, progress=lambda *_: pytest.fail('work started'))


@pytest.mark.parametrize('text', ['steps: 4\x07\n', 'distortion: \x01', 'a: b\x00'])
def test_control_characters_in_yaml_are_refused_in_one_line(text):
    from fga_ros.safe_yaml import YamlError, parse_yaml

    with pytest.raises(YamlError, match='preset.yaml: malformed YAML: unacceptable character'):
        parse_yaml(text, 'preset.yaml')


def test_a_device_file_is_not_read_as_an_evaluation(capsys, tmp_path):
    _refused(capsys, 'grid', 'a/b=/dev/zero', '--json', tmp_path / 'g.json',
             says='/dev/zero: not a readable evaluation')

