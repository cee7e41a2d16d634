"""pip install for the standalone ``fga`` command line (the ROS build uses CMakeLists.txt)."""

from pathlib import Path
import xml.etree.ElementTree as ET

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
VERSION = ET.parse(HERE / 'package.xml').getroot().findtext('version').strip()
SHARE = 'share/fga_ros'
DATA_DIRS = ('sim', 'config', 'models', 'launch', 'msg', 'srv')


def data_files():
    """Install the data directories to <prefix>/share/fga_ros, as colcon does."""
    files = [(SHARE, ['package.xml'])]
    for top in DATA_DIRS:
        for path in sorted((HERE / top).rglob('*')):
            if path.is_file() and '__pycache__' not in path.parts:
                rel = path.relative_to(HERE)
                files.append((f'{SHARE}/{rel.parent.as_posix()}', [rel.as_posix()]))
    return files


setup(
    name='fga_ros',
    version=VERSION,
    description='Learn to propose all feasible planar grasps; ROS 2 nodes and a CLI',
    packages=find_packages(include=['fga_ros', 'fga_ros.*']),
    data_files=data_files(),
    python_requires='>=3.10',
    install_requires=[
        'numpy>=1.23',
        'scipy>=1.9',
        'opencv-python-headless>=4.6',
        'PyYAML>=6.0',
        'matplotlib>=3.5',
        'tqdm>=4.60',
        'tensorboard>=2.10',
        'torch>=2.1',
    ],
    extras_require={'test': ['pytest>=7', 'rosbags>=0.10', 'ruff>=0.5', 'mypy==2.4.1']},
    entry_points={'console_scripts': ['fga = fga_ros.cli:main']},
)
