"""Dataset files of demonstrations and grasp attempts: writer, bounded reader, training."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from fga_ros import sim
from fga_ros.core.common import dataset as ds
from fga_ros.core.common.env import SimEnvironment, prefill_rng
from fga_ros.core.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures('one_thread')


def records(n=3, k=5, seed=0):
    env = SimEnvironment(('H', 'T'), seed=seed)
    return list(env.demonstrations(n, k, np.random.default_rng(seed)))


@pytest.fixture
def written(tmp_path):
    recs = records()
    path = ds.write_dataset(tmp_path / 'demos.zip', recs, 'test oracle')
    return path, recs


def test_round_trip(written):
    path, recs = written
    data = ds.read_dataset(path)
    assert data.source == 'test oracle'
    assert data.images.shape == (3, 128, 128, 3) and data.actions.shape == (15, 3)
    for (image, actions, labels), (i2, a2, l2) in zip(recs, data.records()):
        np.testing.assert_array_equal(image, i2)
        np.testing.assert_allclose(actions, a2)
        np.testing.assert_array_equal(labels, l2)


def rewrite(path, out, replace=None, drop=()):
    """Copy the archive ``path`` to ``out`` with some entries replaced or dropped."""
    replace = replace or {}
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, 'w') as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            dst.writestr(info.filename, replace.get(info.filename, src.read(info)))
    return out


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_truncated_file_is_refused(written, tmp_path):
    path, _ = written
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, len(data) - 30):
        bad = tmp_path / f'cut{cut}.zip'
        bad.write_bytes(data[:cut])
        with pytest.raises(ds.DatasetError, match='truncated|corrupt|not a dataset'):
            ds.read_dataset(bad)


def test_missing_file_and_not_a_dataset(tmp_path):
    with pytest.raises(ds.DatasetError, match='not found'):
        ds.read_dataset(tmp_path / 'nothing.zip')
    other = tmp_path / 'other.zip'
    with zipfile.ZipFile(other, 'w') as archive:
        archive.writestr('manifest.json', json.dumps({'format': 'something else'}))
    with pytest.raises(ds.DatasetError, match='not a grasp dataset'):
        ds.read_dataset(other)


@pytest.mark.parametrize('entry, value, message', [
    ('actions.npy', npy(np.zeros((15, 2))), r'shape \(15, 3\)'),
    ('actions.npy', npy(np.zeros((15, 3), dtype=np.float32)), 'must be float64'),
    ('actions.npy', npy(np.full((15, 3), 5.0)), r'x and y must lie in \[25.0, 103.0\)'),
    ('actions.npy', npy(np.full((15, 3), np.nan)), 'finite'),
    ('actions.npy', b'not an array', 'not a readable array'),
    ('labels.npy', npy(np.zeros(15, dtype=np.int64)), 'must be bool'),
    ('labels.npy', npy(np.zeros(14, dtype=bool)), r'shape \(15,\)'),
    ('states.npy', npy(np.array([0] * 5 + [2] * 5 + [1] * 5)), 'non-decreasing'),
    ('states.npy', npy(np.array([0] * 10 + [2] * 5)), 'at least one attempt'),
    ('states.npy', npy(np.array([0] * 10 + [7] * 5)), r'in \[0, 3\)'),
    ('images/000001.png', b'\x89PNG\r\n\x1a\n garbage', 'not a PNG'),
])
def test_wrong_records_are_refused(written, tmp_path, entry, value, message):
    path, _ = written
    bad = rewrite(path, tmp_path / 'bad.zip', {entry: value})
    with pytest.raises(ds.DatasetError, match=message):
        ds.read_dataset(bad)


def test_wrong_images_and_manifests_are_refused(written, tmp_path):
    import cv2
    path, _ = written
    small = cv2.imencode('.png', np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    with pytest.raises(ds.DatasetError, match='64 x 64 px'):
        ds.read_dataset(rewrite(path, tmp_path / 'a.zip', {'images/000000.png': small}))
    grey = cv2.imencode('.png', np.zeros((128, 128), np.uint8))[1].tobytes()
    with pytest.raises(ds.DatasetError, match='8-bit RGB'):
        ds.read_dataset(rewrite(path, tmp_path / 'b.zip', {'images/000002.png': grey}))
    with pytest.raises(ds.DatasetError, match='images/000001.png is missing'):
        ds.read_dataset(rewrite(path, tmp_path / 'c.zip', drop=('images/000001.png',)))
    manifest = json.loads(zipfile.ZipFile(path).read('manifest.json'))
    for change, message in [({'version': 2}, 'version 2 is not supported'),
                            ({'num_states': '3'}, 'num_states must be an integer'),
                            ({'num_attempts': 0}, 'num_attempts must be an integer'),
                            ({'image_size': 64}, 'image_size must be 128')]:
        text = json.dumps({**manifest, **change})
        with pytest.raises(ds.DatasetError, match=message):
            ds.read_dataset(rewrite(path, tmp_path / 'm.zip', {'manifest.json': text}))
    with pytest.raises(ds.DatasetError, match='not valid JSON'):
        ds.read_dataset(rewrite(path, tmp_path / 'j.zip', {'manifest.json': '{'}))


def test_size_limits(written, tmp_path):
    path, _ = written
    with pytest.raises(ds.DatasetError, match='more than the limit'):
        ds.read_dataset(path, max_bytes=100)
    big = b'\x89PNG\r\n\x1a\n' + b'\0' * (ds.MAX_PNG_BYTES + 1)
    with pytest.raises(ds.DatasetError, match='more than the limit'):
        ds.read_dataset(rewrite(path, tmp_path / 'big.zip', {'images/000000.png': big}))


def test_writer_checks_records_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / 'out.zip'
    image = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(ds.DatasetError, match='uint8'):
        with ds.DatasetWriter(target, 'x') as writer:
            writer.add(image, [[50.0, 50.0, 0.1]], [True])
            writer.add(image.astype(float), [[50.0, 50.0, 0.1]], [True])
    assert not target.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ds.DatasetError, match='labels must be bool'):
        ds.DatasetWriter(tmp_path / 'b.zip', 'x').add(image, [[50.0, 50.0, 0.1]], [1])
    with pytest.raises(ds.DatasetError, match='no records'):
        ds.DatasetWriter(tmp_path / 'c.zip', 'x').close()


class NoOracle:
    """An environment with a camera and a gripper but no demonstrations (a real robot)."""

    def __init__(self):
        self._sim = SimEnvironment(('H',), seed=3)
        self.tried = []  # (actions (count, k, 3), outcomes (count, k)) per call

    def new_states(self, count):
        return self._sim.new_states(count)

    def try_grasps(self, actions):
        outcomes = self._sim.try_grasps(actions)
        self.tried.append((np.asarray(actions), outcomes))
        return outcomes


def test_trainer_prefills_from_a_dataset_without_an_oracle(tiny_config, tmp_path, written):
    path, recs = written
    data = ds.read_dataset(path)
    recorder = ds.DatasetWriter(tmp_path / 'log.zip', 'trainer')
    env = NoOracle()
    trainer = Trainer(tiny_config, env, tmp_path / 'run', dataset=data,
                      offline_steps=2, recorder=recorder)
    trainer.run(steps=3)
    sizes = trainer.replay.sizes()
    tried = 3 * tiny_config.interaction_steps * tiny_config.grasps_per_state
    assert sum(sizes.values()) >= len(data.actions)
    assert trainer.step == 3
    recorder.close()
    log = ds.read_dataset(tmp_path / 'log.zip')
    # the recorder logs the tried grasps only (the dataset is not copied again)
    assert len(log.actions) == tried and len(log.images) == 3 * tiny_config.interaction_steps
    # the log holds exactly the grasps tried and the outcomes the robot reported
    np.testing.assert_allclose(
        log.actions[:, :2], np.concatenate([a.reshape(-1, 3) for a, _ in env.tried])[:, :2])
    np.testing.assert_array_equal(
        log.labels, np.concatenate([o.reshape(-1) for _, o in env.tried]))
    # a resumed run does not prefill again and continues online
    again = Trainer(tiny_config, NoOracle(), tmp_path / 'run', resume=True)
    again.run(steps=4)
    assert again.step == 4


def test_recorded_prefill_matches_the_oracle_examples(tiny_config, tmp_path):
    recorder = ds.DatasetWriter(tmp_path / 'prefill.zip', 'trainer')
    trainer = Trainer(tiny_config, SimEnvironment(tiny_config.shapes, seed=0), tmp_path / 'r',
                      recorder=recorder)
    trainer.prefill()
    recorder.close()
    log = ds.read_dataset(tmp_path / 'prefill.zip')
    assert len(log.actions) >= tiny_config.prefill_examples
    assert 0 < log.labels.mean() < 1  # expert and random grasps
    assert set(np.unique(log.states)) == set(range(len(log.images)))
    assert all(sim.IMAGE_SIZE == s for s in log.images.shape[1:3])


class WithoutDemonstrations:
    """``SimEnvironment`` of the same problem stream whose oracle must not be asked."""

    def __init__(self, shapes, seed):
        self._sim = SimEnvironment(shapes, seed=seed)

    def new_states(self, count):
        return self._sim.new_states(count)

    def try_grasps(self, actions):
        return self._sim.try_grasps(actions)

    def demonstrations(self, *args, **kwargs):
        raise AssertionError('a run prefilled from a file asked the oracle')


def test_a_run_prefilled_from_a_recording_trains_as_the_oracle_run(tiny_config, tmp_path):
    config = tiny_config
    oracle = Trainer(config, SimEnvironment(config.shapes, seed=4), tmp_path / 'oracle')
    num_states, per_state = oracle.prefill_scenes()
    # what `fga record --seed <config.seed>` writes for this preset
    recording = SimEnvironment(config.shapes, seed=config.seed).demonstrations(
        num_states, per_state, prefill_rng(config.seed), config.prefill_imitation_fraction)
    path = ds.write_dataset(tmp_path / 'demos.zip', recording, 'fga record')
    from_file = Trainer(config, WithoutDemonstrations(config.shapes, seed=4), tmp_path / 'file',
                        dataset=ds.read_dataset(path))
    oracle.run(steps=3)
    from_file.run(steps=3)
    assert from_file.replay.sizes() == oracle.replay.sizes()
    for (name, a), (_, b) in zip(oracle.model.state_dict().items(),
                                 from_file.model.state_dict().items()):
        assert torch.equal(a, b), name  # the same updates on the same data, bit for bit
