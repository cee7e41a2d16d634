"""``fga`` with camera models (sim --camera-out, propose --camera-info/--camera-pose) and
dataset files (record, train --dataset/--record)."""

import json

import numpy as np
import pytest

from fga_ros import cli, sim
from fga_ros.bridge.camera_bench import camera_poses_to_sim_actions
from fga_ros.bridge.camera_geometry import quaternion_to_matrix
from fga_ros.core.common.dataset import read_dataset
from fga_ros.sim.pinhole import tilted_view

pytestmark = pytest.mark.usefixtures('one_thread')


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_propose_through_a_tilted_camera_model(capsys, tmp_path):
    cam = tmp_path / 'cam'
    code, _, err = _run(capsys, 'sim', '--shape', 'T', '--seed', 4, '--out', '',
                        '--camera-out', cam, '--camera-tilt', 40)
    assert code == 0, err
    files = ('--camera-info', cam / 'camera_info.yaml', '--camera-pose', cam / 'camera_pose.yaml')
    code, out, err = _run(capsys, 'propose', '--image', cam / 'image.png', *files, '--num', 8,
                          '--json', '--out', '')
    assert code == 0, err
    grasps = json.loads(out)['grasps']
    assert len(grasps) == 8
    view = tilted_view(40.0)
    positions = np.array([g['camera_pose']['position'] for g in grasps])
    rotations = np.array([quaternion_to_matrix(g['camera_pose']['orientation'])
                          for g in grasps])
    actions = camera_poses_to_sim_actions(view, positions, rotations)
    np.testing.assert_allclose([g['table_pose']['position'][:2] for g in grasps],
                               ((positions - view.translation) @ view.rotation)[:, :2],
                               atol=1e-9)
    feasible = sim.grasp_success(sim.make_scene('T', 4), actions)
    assert feasible.mean() >= 0.75  # the bundled model on one scene, through the mapping

    # no camera model for a 640 x 480 image: the mapping is unknown, said in one line
    code, _, err = _run(capsys, 'propose', '--image', cam / 'image.png', '--out', '')
    assert code == 2 and 'is 640 x 480 px' in err and '--camera-info' in err
    code, _, err = _run(capsys, 'propose', '--image', cam / 'image.png', files[0], files[1],
                        '--out', '')
    assert code == 2 and 'go together' in err
    # a workspace the camera does not see
    code, _, err = _run(capsys, 'propose', '--image', cam / 'image.png', *files,
                        '--workspace', '1,1,0.256', '--out', '')
    assert code == 2 and 'not inside the 640 x 480 camera image' in err
    (cam / 'camera_info.yaml').write_text('image_width: 640\nimage_height: 480\n'
                                          'camera_matrix: {data: [0,0,0,0,0,0,0,0,0]}\n')
    code, _, err = _run(capsys, 'propose', '--image', cam / 'image.png', *files, '--out', '')
    assert code == 2 and 'all zero' in err


def test_record_train_from_the_file_and_record_attempts(capsys, tmp_path):
    demos = tmp_path / 'demos.zip'
    code, out, err = _run(capsys, 'record', '--preset', 'tiny', '--out', demos)
    assert code == 0, err
    data = read_dataset(demos)
    assert len(data.images) == 10 and len(data.actions) == 200  # the tiny prefill
    code, out, err = _run(capsys, 'train', '--preset', 'tiny', '--steps', 3, '--out',
                          tmp_path / 'run', '--dataset', demos, '--offline-steps', 2,
                          '--record', tmp_path / 'tried.zip', '--set', 'eval_every=0',
                          '--no-progress')
    assert code == 0, err
    assert 'no oracle' in out and 'recorded 3 scenes' in out
    assert len(read_dataset(tmp_path / 'tried.zip').images) == 3
    # the record file is never overwritten
    code, _, err = _run(capsys, 'train', '--preset', 'tiny', '--steps', 3, '--out',
                        tmp_path / 'run2', '--record', tmp_path / 'tried.zip', '--no-progress')
    assert code == 2 and 'exists' in err
    # a resumed run is past its prefill: --dataset is refused
    code, _, err = _run(capsys, 'train', '--resume', '--steps', 4, '--out', tmp_path / 'run',
                        '--dataset', demos, '--no-progress')
    assert code == 2 and '--dataset applies to a new run' in err
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(demos.read_bytes()[:1000])
    code, _, err = _run(capsys, 'train', '--preset', 'tiny', '--out', tmp_path / 'run3',
                        '--dataset', bad, '--no-progress')
    assert code == 2 and 'truncated' in err
