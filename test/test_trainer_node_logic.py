"""trainer_node's own logic without ROS: rclpy, the messages and the ROS environment are
replaced by minimal stand-ins, and the node trains on the in-process simulator.

What this checks is the node's part: which parameters count as set, the run description,
resume rules, and what its hooks log and publish from ``Trainer.run``. Real ROS (parameter
overrides, QoS, executors) is exercised by test_ros_nodes.py where rclpy is installed.
"""

import importlib
import sys
import types

import pytest
import yaml

from fga_ros.core.common.env import SimEnvironment
from fga_ros.core.training.run_record import RUN_FILE, RunError
from fga_ros.core.training.trainer import EVAL_LOG_NAME

pytestmark = pytest.mark.usefixtures('one_thread')


class _Message:
    """A message stand-in: keyword fields become attributes."""

    def __init__(self, **fields):
        self.header = types.SimpleNamespace(stamp=None)
        self.__dict__.update(fields)


class _Status(_Message):
    OK, WARN, ERROR = b'\x00', b'\x01', b'\x02'


class _Logger:
    def __init__(self, lines):
        self.lines = lines

    def __getattr__(self, level):
        return lambda text: self.lines.append((level, text))


class _Context:
    def __init__(self):
        self.running = True

    def ok(self):
        return self.running

    def try_shutdown(self):
        self.running = False


class _Node:
    """What TrainerNode uses of ``rclpy.node.Node``; parameters as rclpy declares them:
    the override when given, else the default (None for an unset dynamic parameter)."""

    def __init__(self, name, parameter_overrides=()):
        self.overrides = {p.name: p.value for p in parameter_overrides}
        self.parameters = {}
        self.context = _Context()
        self.lines, self.published = [], []

    def declare_parameter(self, name, value=None, descriptor=None):
        self.parameters[name] = self.overrides.get(name, value)

    def get_parameter(self, name):
        return types.SimpleNamespace(value=self.parameters[name])

    def create_publisher(self, msg_type, topic, qos):
        return types.SimpleNamespace(publish=lambda msg: self.published.append((topic, msg)))

    def get_logger(self):
        return _Logger(self.lines)

    def get_name(self):
        return 'trainer'

    def get_clock(self):
        return types.SimpleNamespace(now=lambda: types.SimpleNamespace(to_msg=lambda: None))


class _SimOverRos(SimEnvironment):
    def __init__(self, node, namespaces, timeout, shapes=(), distortion='', seed=0):
        super().__init__(shapes, distortion, seed=seed)

    def stop(self):
        pass


def _module(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def node_module(monkeypatch):
    """``fga_ros.nodes.trainer_node`` imported over the stand-ins (removed afterwards)."""
    stand_ins = {
        'rclpy': _module('rclpy'),
        'rclpy.node': _module('rclpy.node', Node=_Node),
        'rclpy.qos': _module('rclpy.qos', QoSProfile=lambda **kw: None,
                             DurabilityPolicy=types.SimpleNamespace(TRANSIENT_LOCAL=1)),
        'diagnostic_msgs': _module('diagnostic_msgs'),
        'diagnostic_msgs.msg': _module('diagnostic_msgs.msg', DiagnosticArray=_Message,
                                       DiagnosticStatus=_Status, KeyValue=_Message),
        'std_msgs': _module('std_msgs'),
        'std_msgs.msg': _module('std_msgs.msg', String=_Message),
        'fga_ros.nodes.common': _module(
            'fga_ros.nodes.common', closing_logger=lambda node: node.get_logger(),
            descriptor=lambda *args, **kwargs: None, run=None),
        'fga_ros.nodes.ros_environment': _module(
            'fga_ros.nodes.ros_environment', RosEnvironment=_SimOverRos,
            EnvironmentStoppedError=type('EnvironmentStoppedError', (RuntimeError,), {})),
    }
    for name, module in stand_ins.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, 'fga_ros.nodes.trainer_node', raising=False)
    module = importlib.import_module('fga_ros.nodes.trainer_node')
    yield module
    sys.modules.pop('fga_ros.nodes.trainer_node', None)
    import fga_ros.nodes
    if getattr(fga_ros.nodes, 'trainer_node', None) is module:
        delattr(fga_ros.nodes, 'trainer_node')


def _start(module, out, **values):
    values = {'preset': 'tiny', 'out_dir': str(out), **values}
    node = module.TrainerNode(parameter_overrides=[
        types.SimpleNamespace(name=name, value=value) for name, value in values.items()])
    node.thread.join(120)
    assert not node.thread.is_alive() and node.error is None
    return node


FIRST = {'steps': 6, 'config.lr_actor': 0.002, 'config.prefill_examples': 40,
         'config.prefill_scenes': 4, 'config.eval_every': 3, 'config.checkpoint_every': 4,
         'config.log_every': 2}


def test_the_node_trains_evaluates_and_announces_each_model(node_module, tmp_path):
    node = _start(node_module, tmp_path, **FIRST)
    assert node.trainer.step == 6
    announced = [msg.data for topic, msg in node.published if topic == 'checkpoint']
    assert len(announced) == 2 and announced[-1] == str((tmp_path / 'model.pt').resolve())
    statuses = [msg.status[0] for topic, msg in node.published if topic == 'diagnostics']
    assert [s.message for s in statuses] == ['step 2/6', 'evaluation at step 3', 'step 4/6',
                                             'step 6/6', 'evaluation at step 6']
    keys = {kv.key for kv in statuses[0].values}
    assert {'step', 'total_steps', 'critic_loss', 'collection_success_rate',
            'steps_per_second', 'replay_positive'} <= keys
    assert EVAL_LOG_NAME in {p.name for p in tmp_path.iterdir()}
    description = yaml.safe_load((tmp_path / RUN_FILE).read_text())
    assert description['preset'] == 'tiny' and description['config']['lr_actor'] == 0.002
    assert ('info', 'finished at step 6') in node.lines


def test_a_relaunch_resumes_with_the_run_configuration(node_module, tmp_path):
    _start(node_module, tmp_path, **FIRST)
    # only steps is set again: the preset and every config.* come from the run
    node = node_module.TrainerNode(parameter_overrides=[
        types.SimpleNamespace(name='out_dir', value=str(tmp_path)),
        types.SimpleNamespace(name='steps', value=8)])
    node.thread.join(120)
    assert node.error is None and node.trainer.step == 8
    assert node.config.lr_actor == 0.002 and node.config.prefill_examples == 40
    assert ('info', f'resuming {tmp_path} at step 6 of 8; changed: steps 6 -> 8') in node.lines

    with pytest.raises(RunError, match=r"divergence 'js' -> 'fkl'"):
        _start(node_module, tmp_path, **{'config.divergence': 'fkl', 'steps': 10})
    with pytest.raises(RunError, match='already holds a training run; set resume: true'):
        _start(node_module, tmp_path, resume=False)


def test_the_wall_clock_limit_stops_the_node_with_a_checkpoint(node_module, tmp_path):
    node = _start(node_module, tmp_path, wall_hours=1e-9, **FIRST)
    assert node.trainer.step == 1
    assert any(level == 'warning' and 'wall-clock limit reached at step 1 of 6' in text
               for level, text in node.lines)
    assert [topic for topic, _ in node.published].count('checkpoint') == 1
