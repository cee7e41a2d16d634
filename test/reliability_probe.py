"""Probe: time and peak memory of refusing the worst crafted files below 1 MB.

Each refusal runs in a fresh Python process; the figures are the wall time of the call and
the growth of the process's peak RSS during it (Linux: the peak is reset through
``/proc/self/clear_refs`` after the imports, then read from ``VmHWM``).
Run from the repository root: ``python3 test/reliability_probe.py`` (prints a table; a
benchmark, not a test: nothing is asserted).
"""

import json
from pathlib import Path
import subprocess
import sys
import tempfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's fga_ros, whatever is installed

import reliability_craft as craft  # noqa: E402
import torch  # noqa: E402

from fga_ros.core.models.model_file import export_model  # noqa: E402
from fga_ros.core.models.nets import ActorCritic  # noqa: E402

ONE_MB = 1024 * 1024

SNIPPET = """
import json, sys, time
{imports}


def status(key):
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024


before = status('VmRSS')
with open('/proc/self/clear_refs', 'w') as stream:
    stream.write('5')  # reset the peak (VmHWM) to the current RSS
start = time.perf_counter()
try:
    result = {call}
    outcome = 'refused: exit 2' if result == 2 else 'ACCEPTED'
except Exception as error:
    outcome = type(error).__name__ + ': ' + str(error).replace(sys.argv[1], '<file>')[:90]
seconds = time.perf_counter() - start
print(json.dumps({{'seconds': seconds, 'peak_growth_mb': status('VmHWM') - before,
                  'outcome': outcome}}))
"""
CLI_IMPORTS = ('from fga_ros import cli\n'
               'import fga_ros.core.inference.proposer, fga_ros.core.training.trainer\n'
               'import fga_ros.core.common.env, fga_ros.image_files, fga_ros.sim\n'
               'import fga_ros.core.analysis.figures, torch.utils.tensorboard')
"""The CLI's lazy imports, done before the clock starts: the figures are the cost of the
file, not of importing torch (5-10 s on a loaded 2-core machine)."""

ENTRIES = {
    'load_model': ('from fga_ros.core.models.model_file import load_model',
                   'load_model(sys.argv[1])'),
    'Proposer.reload': ('from fga_ros.core.inference.proposer import Proposer\n'
                        'proposer = Proposer.from_checkpoint(None)',
                        'proposer.reload(sys.argv[1])'),
    'fga propose --checkpoint': (CLI_IMPORTS,
                                 "cli.main(['propose', '--checkpoint', sys.argv[1], '--out', "
                                 "''])"),
    'load_config': ('from fga_ros.core.common.config import load_config',
                    'load_config(sys.argv[1])'),
    'fga train --preset': (CLI_IMPORTS,
                           "cli.main(['train', '--preset', sys.argv[1], '--out', "
                           "sys.argv[1] + '.run'])"),
    'read_image': ('from fga_ros.image_files import read_image', 'read_image(sys.argv[1])'),
    'fga propose --image': (CLI_IMPORTS,
                            "cli.main(['propose', '--image', sys.argv[1], '--out', ''])"),
    'load_replay': ('from fga_ros.core.training.checkpoint import load_replay',
                    'load_replay(sys.argv[1])'),
}


def probe(entry, path):
    imports, call = ENTRIES[entry]
    code = SNIPPET.format(imports=imports, call=call)
    result = subprocess.run([sys.executable, '-c', code, str(path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600,
                            env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    lines = [line for line in result.stdout.splitlines() if line.startswith('{')]
    if not lines:
        return {'seconds': float('nan'), 'peak_growth_mb': float('nan'),
                'outcome': f'CRASH {result.returncode}: {result.stderr[-200:]}'}
    return json.loads(lines[-1])


def crafted_files(directory):
    directory = Path(directory)
    config = craft.tiny_config()
    torch.manual_seed(0)
    good = directory / 'good.pt'
    export_model(good, ActorCritic(config), config)
    payload = craft.model_payload(good)
    files = []
    for name in ('config_huge_actor_hidden', 'config_huge_embed', 'config_huge_image',
                 'config_shared_list_bomb', 'weight_expanded_view', 'config_long_string'):
        path = craft.write_torch(directory / f'{name}.pt',
                                 craft.model_payload_cases(payload)[name])
        files += [(e, name, path) for e in ('load_model', 'Proposer.reload',
                                            'fga propose --checkpoint')]
    for name, path in craft.model_byte_cases(good, directory).items():
        if name in ('deflate_bomb_record', 'bitflip_tensor_0', 'pickle_global'):
            files += [(e, name, path) for e in ('load_model', 'fga propose --checkpoint')]
    for name in ('billion_laughs', 'deep_flow', 'many_nodes', 'oversized_300kb', 'big_integer',
                 'long_bad_value', 'huge_width'):
        path = directory / f'{name}.yaml'
        path.write_bytes(craft.yaml_cases()[name])
        files += [(e, name, path) for e in ('load_config', 'fga train --preset')]
    bomb = directory / 'png_bomb.png'
    bomb.write_bytes(craft.png_bomb())
    files += [(e, 'png_bomb_15000x15000', bomb) for e in ('read_image', 'fga propose --image')]
    header = directory / 'png_header_30000x20000.png'
    header.write_bytes(craft.image_cases()['png_bomb_header'])
    files += [(e, 'png_header_30000x20000', header) for e in ('read_image',)]
    return [(e, n, p) for e, n, p in files if p.stat().st_size < ONE_MB]


def main():
    with tempfile.TemporaryDirectory() as directory:
        rows = [(entry, name, path.stat().st_size, probe(entry, path))
                for entry, name, path in crafted_files(directory)]
    print(f'{"entry point":26} {"crafted file":26} {"KB":>6} {"refusal s":>9} '
          f'{"peak +MB":>8} outcome')
    for entry, name, size, r in rows:
        print(f'{entry:26} {name:26} {size / 1024:6.0f} {r["seconds"]:9.3f} '
              f'{r["peak_growth_mb"]:8.1f} {r["outcome"]}')
    worst_time = max(r['seconds'] for *_, r in rows)
    worst_mem = max(r['peak_growth_mb'] for *_, r in rows)
    accepted = sum(r['outcome'].startswith(('ACCEPTED', 'CRASH')) for *_, r in rows)
    print(f'{len(rows)} attempts with files < 1 MB: slowest {worst_time:.2f} s, largest peak '
          f'RSS growth {worst_mem:.0f} MB, {accepted} accepted or crashed')


if __name__ == '__main__':
    main()
