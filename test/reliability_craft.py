"""Crafted damaged and hostile files for the reliability tests and probe (not a test module).

Each ``*_cases()`` function returns ``{case id: maker}``; ``maker(directory)`` writes the
crafted file into ``directory`` and returns its path. Payload-level cases re-sign the
crafted payload with a correct digest, so that the checks behind the digest are exercised;
byte-level cases damage the file after it was written (the digest must catch them).
"""

import io
import json
from pathlib import Path
import pickle
import struct
import zipfile
import zlib

import numpy as np
import torch

from fga_ros.core.common.config import load_config
from fga_ros.core.common.integrity import DIGEST_KEY, IntegrityError, payload_digest

TINY = 'tiny'


def tiny_config():
    return load_config(TINY)


def write_torch(path, payload, sign=True):
    """``torch.save`` ``payload`` to ``path``; with ``sign`` its digest is (re)computed."""
    if sign and isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k != DIGEST_KEY}
        try:
            payload[DIGEST_KEY] = payload_digest(payload)
        except IntegrityError:  # e.g. shared references expanding to 10^9 values
            payload[DIGEST_KEY] = '0' * 64
    torch.save(payload, path)
    return Path(path)


def rewrite_zip(src, dst, change=None, compression=zipfile.ZIP_STORED, extra=()):
    """Copy zip ``src`` to ``dst``: ``change(name, bytes) -> bytes`` per record, then
    ``extra`` (name, bytes) records."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, change(info.filename, data) if change else data)
        for name, data in extra:
            zout.writestr(name, data)
    return Path(dst)


def record_offsets(path, suffix):
    """(start, size) of the data of each record whose name ends with ``suffix``."""
    spans = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(suffix) or (suffix == '/data/' and '/data/' in
                                                  info.filename):
                with open(path, 'rb') as stream:
                    stream.seek(info.header_offset + 26)
                    name_len, extra_len = struct.unpack('<HH', stream.read(4))
                start = info.header_offset + 30 + name_len + extra_len
                spans.append((start, info.file_size))
    return spans


def flip_byte(path, offset, dst):
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 0x10
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def png_header(width, height, idat=b''):
    """A PNG whose IHDR claims ``width`` x ``height`` RGB pixels."""
    def chunk(kind, body):
        return (struct.pack('>I', len(body)) + kind + body
                + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat)
            + chunk(b'IEND', b''))


def png_bomb(width=15000, height=15000):
    """A real decompression bomb: width x height black RGB pixels, zlib level 9."""
    row = b'\x00' + bytes(3 * width)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * 64) for _ in range(height // 64)]
    parts.append(compressor.compress(row * (height % 64)))
    parts.append(compressor.flush())
    return png_header(width, height, b''.join(parts))


# -- model files ---------------------------------------------------------------------------


def model_payload(model_path):
    """The payload of a valid exported model file (loaded plainly; it is ours)."""
    return torch.load(model_path, weights_only=True)


def _weight_name(payload, index=0):
    return sorted(payload['model'])[index]


def _with_weight(payload, change, index=0):
    model = dict(payload['model'])
    name = _weight_name(payload, index)
    model[name] = change(model[name])
    return dict(payload, model=model)


def _with_config(payload, **values):
    return dict(payload, config=dict(payload['config'], **values))


def _shared_list_bomb():
    inner = list(range(1000))
    middle = [inner] * 1000
    return [middle] * 1000  # 10^9 leaves when expanded, a few KB pickled


MODEL_PAYLOAD_CASES = (
    'payload_list', 'payload_tensor', 'payload_int', 'format_missing', 'format_legacy_v1',
    'format_unknown_long', 'config_missing', 'config_not_mapping', 'config_unknown_key',
    'config_huge_actor_hidden', 'config_huge_critic_hidden', 'config_huge_embed',
    'config_huge_blocks', 'config_huge_image', 'config_huge_latent', 'config_huge_replay',
    'config_negative_image', 'config_nan_lr', 'config_shared_list_bomb', 'config_long_string',
    'config_mlp_wrong_length', 'config_bool_int', 'model_missing', 'model_not_mapping',
    'model_empty', 'model_key_missing', 'model_key_extra', 'model_key_not_string',
    'weight_wrong_shape', 'weight_transposed', 'weight_int32', 'weight_float64',
    'weight_float16', 'weight_bool', 'weight_complex', 'weight_nan', 'weight_inf',
    'weight_one_nan', 'weight_expanded_view', 'weight_not_tensor', 'weight_none',
    'meta_not_mapping')
"""Names of the cases of :func:`model_payload_cases`."""


def model_payload_cases(good):
    """Payload-level cases (re-signed): ``{id: payload}`` from the valid payload ``good``."""
    weight = _weight_name(good)
    cases = {
        'payload_list': [1, 2, 3],
        'payload_tensor': torch.zeros(3),
        'payload_int': 7,
        'format_missing': {k: v for k, v in good.items() if k != 'format'},
        'format_legacy_v1': dict(good, format='fga_ros.model/1'),
        'format_unknown_long': dict(good, format='x' * 100_000),
        'config_missing': {k: v for k, v in good.items() if k != 'config'},
        'config_not_mapping': dict(good, config='y' * 100_000),
        'config_unknown_key': _with_config(good, hidden_layers=[60000]),
        'config_huge_actor_hidden': _with_config(good, actor_hidden=[60000, 60000, 60000]),
        'config_huge_critic_hidden': _with_config(good, critic_hidden=[60000, 60000]),
        'config_huge_embed': _with_config(good, embed_channels=1_000_000),
        'config_huge_blocks': _with_config(good, num_blocks=100_000),
        'config_huge_image': _with_config(good, image_size=100_000),
        'config_huge_latent': _with_config(good, latent_dim=10 ** 9),
        'config_huge_replay': _with_config(good, replay_positive=10 ** 12),
        'config_negative_image': _with_config(good, image_size=-1),
        'config_nan_lr': _with_config(good, lr_actor=float('nan')),
        'config_shared_list_bomb': _with_config(good, shapes=_shared_list_bomb()),
        'config_long_string': _with_config(good, divergence='z' * 1_000_000),
        'config_mlp_wrong_length': _with_config(good, pixel_mlp_channels=[8, 8]),
        'config_bool_int': _with_config(good, num_blocks=True),
        'model_missing': {k: v for k, v in good.items() if k != 'model'},
        'model_not_mapping': dict(good, model=[1, 2]),
        'model_empty': dict(good, model={}),
        'model_key_missing': dict(good, model={k: v for k, v in good['model'].items()
                                               if k != weight}),
        'model_key_extra': dict(good, model=dict(good['model'], **{'actor.extra': torch.ones(2)})),
        'model_key_not_string': dict(good, model={**good['model'], 7: torch.ones(2)}),
        'weight_wrong_shape': _with_weight(good, lambda t: torch.zeros(t.numel() + 1)),
        'weight_transposed': _with_weight(good, lambda t: t.reshape(-1)),
        'weight_int32': _with_weight(good, lambda t: t.to(torch.int32)),
        'weight_float64': _with_weight(good, lambda t: t.to(torch.float64)),
        'weight_float16': _with_weight(good, lambda t: t.to(torch.float16)),
        'weight_bool': _with_weight(good, lambda t: t > 0),
        'weight_complex': _with_weight(good, lambda t: t.to(torch.complex64)),
        'weight_nan': _with_weight(good, lambda t: t.clone().fill_(float('nan'))),
        'weight_inf': _with_weight(good, lambda t: torch.full_like(t, float('inf'))),
        'weight_one_nan': _with_weight(good, lambda t: _set_first(t, float('nan')), index=3),
        'weight_expanded_view': _with_weight(
            good, lambda t: torch.zeros(1).expand(*t.shape) if t.dim() else t + float('nan')),
        'weight_not_tensor': _with_weight(good, lambda t: t.tolist()),
        'weight_none': _with_weight(good, lambda t: None),
        'meta_not_mapping': dict(good, meta='m' * 50),
    }
    return cases


def _set_first(tensor, value):
    tensor = tensor.clone()
    tensor.view(-1)[0] = value
    return tensor


MODEL_BYTE_CASES = (
    'empty', 'random_bytes', 'text', 'json', 'png_renamed', 'truncated_0.1', 'truncated_0.5',
    'truncated_0.9', 'truncated_0.999', 'bitflip_tensor_0', 'bitflip_tensor_1',
    'bitflip_tensor_2', 'bitflip_tensor_3', 'bitflip_pickle_text', 'bitflip_pickle_opcode',
    'deflated_records', 'deflate_bomb_record', 'legacy_torch_format', 'pickle_global',
    'pickle_oversized', 'two_pickles')
"""Names of the cases of :func:`model_byte_cases`."""


def model_byte_cases(good_file, directory):
    """Byte-level damage to a valid (signed) model file: ``{id: path}``."""
    directory = Path(directory)
    data = Path(good_file).read_bytes()
    out = {}

    def put(name, content):
        path = directory / f'{name}.pt'
        path.write_bytes(content)
        out[name] = path

    put('empty', b'')
    put('random_bytes', np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
        .tobytes())
    put('text', b'not a model\n')
    put('json', json.dumps({'format': 'fga_ros.model/2'}).encode())
    put('png_renamed', png_header(16, 16))
    for share in (0.1, 0.5, 0.9, 0.999):
        put(f'truncated_{share}', data[:int(len(data) * share)])
    spans = record_offsets(good_file, '/data/')
    big = sorted(spans, key=lambda s: -s[1])
    for k, (start, size) in enumerate(big[:4]):
        path = flip_byte(good_file, start + size // 2, directory / f'bitflip_tensor_{k}.pt')
        out[f'bitflip_tensor_{k}'] = path
    (pkl_start, pkl_size), = record_offsets(good_file, 'data.pkl')
    pkl = data[pkl_start:pkl_start + pkl_size]
    at = pkl.find(b'fga_ros.')
    out['bitflip_pickle_text'] = flip_byte(good_file, pkl_start + at + 3,
                                           directory / 'bitflip_pickle_text.pt')
    out['bitflip_pickle_opcode'] = flip_byte(good_file, pkl_start + 2,
                                             directory / 'bitflip_pickle_opcode.pt')
    out['deflated_records'] = rewrite_zip(good_file, directory / 'deflated.pt',
                                          compression=zipfile.ZIP_DEFLATED)
    out['deflate_bomb_record'] = _zip_with_deflate_bomb(good_file, directory / 'bomb.pt',
                                                        200 << 20)
    buffer = io.BytesIO()
    torch.save({'format': 'x'}, buffer, _use_new_zipfile_serialization=False)
    put('legacy_torch_format', buffer.getvalue())
    evil = pickle.dumps({'format': 'fga_ros.model/2', 'x': _Evil()}, protocol=2)
    out['pickle_global'] = rewrite_zip(
        good_file, directory / 'pickle_global.pt',
        change=lambda name, b: evil if name.endswith('data.pkl') else b)
    huge_pickle = pickle.dumps(list(range(5_000_000)), protocol=2)
    out['pickle_oversized'] = rewrite_zip(
        good_file, directory / 'pickle_oversized.pt',
        change=lambda name, b: huge_pickle if name.endswith('data.pkl') else b)
    out['two_pickles'] = rewrite_zip(good_file, directory / 'two_pickles.pt',
                                     extra=[('other/data.pkl', pkl)])
    assert set(out) == set(MODEL_BYTE_CASES)
    return out


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ('echo pwned',))


def _zip_with_deflate_bomb(src, dst, size):
    """``src`` plus one deflated record ``archive/data/999`` expanding to ``size`` zero
    bytes (about size / 1000 bytes in the file)."""
    rewrite_zip(src, dst)
    with zipfile.ZipFile(dst, 'a') as archive:
        info = zipfile.ZipInfo('archive/data/999')
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, 'w', force_zip64=True) as stream:
            block = bytes(1 << 20)
            for _ in range(size >> 20):
                stream.write(block)
    return Path(dst)


# -- training checkpoints ------------------------------------------------------------------


CHECKPOINT_PAYLOAD_CASES = (
    'missing_optim', 'missing_rng', 'missing_counters', 'missing_prefilled', 'missing_step',
    'missing_model', 'missing_config', 'step_negative', 'step_absurd',
    'step_string', 'step_bool', 'step_float', 'train_seconds_nan', 'prefilled_string',
    'counters_negative', 'counters_inverted', 'counters_missing_key', 'optim_not_mapping',
    'optim_missing_actor', 'optim_wrong_shape', 'optim_nan_moment',
    'optim_negative_second_moment', 'optim_unknown_entry', 'optim_groups_missing',
    'rng_torch_wrong_shape', 'rng_generator_float', 'rng_numpy_garbage', 'rng_missing_numpy',
    'replay_name_traversal', 'replay_name_missing_file', 'replay_name_not_string',
    'replay_absent', 'weight_wrong_shape', 'weight_nan', 'config_other_divergence',
    'format_model_not_checkpoint')
"""Names of the cases of :func:`checkpoint_payload_cases`."""


def checkpoint_payload_cases(good):
    """Payload-level cases of a resumable checkpoint (re-signed): ``{id: payload}``."""
    def without(key):
        return {k: v for k, v in good.items() if k != key}

    def optim_change(part, change):
        optim = {k: dict(v) for k, v in good['optim'].items()}
        state = {k: dict(v) for k, v in optim[part]['state'].items()}
        first = sorted(state)[0]
        state[first] = change(state[first])
        optim[part]['state'] = state
        return dict(good, optim=optim)

    rng = good['rng']
    cases = {
        'missing_optim': without('optim'),
        'missing_rng': without('rng'),
        'missing_counters': without('counters'),
        'missing_prefilled': without('prefilled'),
        'missing_step': without('step'),
        'missing_model': without('model'),
        'missing_config': without('config'),
        'step_negative': dict(good, step=-5),
        'step_absurd': dict(good, step=10 ** 12),
        'step_string': dict(good, step='3'),
        'step_bool': dict(good, step=True),
        'step_float': dict(good, step=2.5),
        'train_seconds_nan': dict(good, train_seconds=float('nan')),
        'prefilled_string': dict(good, prefilled='yes'),
        'counters_negative': dict(good, counters={'successes': -1, 'interactions': 4}),
        'counters_inverted': dict(good, counters={'successes': 9, 'interactions': 4}),
        'counters_missing_key': dict(good, counters={'successes': 1}),
        'optim_not_mapping': dict(good, optim=[1]),
        'optim_missing_actor': dict(good, optim={'critic': good['optim']['critic']}),
        'optim_wrong_shape': optim_change(
            'actor', lambda s: dict(s, exp_avg=torch.zeros(s['exp_avg'].numel() + 3))),
        'optim_nan_moment': optim_change(
            'critic', lambda s: dict(s, exp_avg=torch.full_like(s['exp_avg'], float('nan')))),
        'optim_negative_second_moment': optim_change(
            'critic', lambda s: dict(s, exp_avg_sq=-torch.ones_like(s['exp_avg_sq']))),
        'optim_unknown_entry': optim_change('actor', lambda s: dict(s, momentum_buffer=1)),
        'optim_groups_missing': dict(good, optim=dict(good['optim'], actor={
            'state': good['optim']['actor']['state'], 'param_groups': []})),
        'rng_torch_wrong_shape': dict(good, rng=dict(rng, torch=torch.zeros(7,
                                                                          dtype=torch.uint8))),
        'rng_generator_float': dict(good, rng=dict(rng, generator=rng['generator'].float())),
        'rng_numpy_garbage': dict(good, rng=dict(rng, numpy={'bit_generator': 'nope'})),
        'rng_missing_numpy': dict(good, rng={k: v for k, v in rng.items() if k != 'numpy'}),
        'replay_name_traversal': dict(good, replay='../../../etc/passwd'),
        'replay_name_missing_file': dict(good, replay='checkpoint.pt.replay-000000999.npz'),
        'replay_name_not_string': dict(good, replay=5),
        'replay_absent': without('replay'),
        'weight_wrong_shape': _with_weight(good, lambda t: torch.zeros(t.numel() + 1)),
        'weight_nan': _with_weight(good, lambda t: torch.full_like(t, float('nan'))),
        'config_other_divergence': _with_config(good, divergence='fkl'),
        'format_model_not_checkpoint': dict(good, format='fga_ros.model/2'),
    }
    return cases


REPLAY_STATE_CASES = (
    'replay_nan_actions', 'replay_png_header_size', 'replay_png_data_corrupt',
    'replay_missing_array', 'replay_float_ids', 'replay_negative_ids',
    'replay_count_beyond_capacity', 'replay_actions_wrong_shape', 'replay_lengths_mismatch',
    'replay_image_size_other')
"""Names of the cases of :func:`replay_state_cases`."""


def replay_state_cases(good):
    """Crafted replay states (dict of arrays): ``{id: state}``."""
    def changed(**arrays):
        return dict(good, **arrays)

    actions = good['negative_actions'].copy()
    actions[0] = np.nan
    blob_header = good['png_blob'].copy()
    blob_header[17] ^= 0x01  # first PNG's width
    blob_data = good['png_blob'].copy()
    blob_data[int(good['png_lengths'][0]) - 20] ^= 0xFF
    return {
        'replay_nan_actions': changed(negative_actions=actions),
        'replay_png_header_size': changed(png_blob=blob_header),
        'replay_png_data_corrupt': changed(png_blob=blob_data),
        'replay_missing_array': {k: v for k, v in good.items() if k != 'png_lengths'},
        'replay_float_ids': changed(state_ids=good['state_ids'].astype(np.float64)),
        'replay_negative_ids': changed(state_ids=-1 - good['state_ids']),
        'replay_count_beyond_capacity': changed(positive_count=np.int64(10 ** 9)),
        'replay_actions_wrong_shape': changed(positive_actions=good['positive_actions'][:, :2]),
        'replay_lengths_mismatch': changed(png_lengths=good['png_lengths'] + 1),
        'replay_image_size_other': changed(image_size=np.int64(64)),
    }


NPZ_BYTE_CASES = (
    'npz_truncated', 'npz_not_zip', 'npz_compressed', 'npz_object_array',
    'npz_huge_shape_header', 'npz_bitflip')
"""Names of the cases of :func:`npz_byte_cases`."""


def npz_byte_cases(good_npz, directory):
    """Byte-level replay files: ``{id: bytes}`` (written under the checkpoint's replay name)."""
    data = Path(good_npz).read_bytes()
    buffer = io.BytesIO()
    with np.load(good_npz) as arrays:
        np.savez_compressed(buffer, **{k: arrays[k] for k in arrays.files})
    compressed = buffer.getvalue()
    buffer = io.BytesIO()
    np.savez(buffer, png_blob=np.array([object()], dtype=object))
    objects = buffer.getvalue()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    return {
        'npz_truncated': data[:len(data) // 2],
        'npz_not_zip': b'\x00' * 64,
        'npz_compressed': compressed,
        'npz_object_array': objects,
        'npz_huge_shape_header': _npz_shape_lie(good_npz, directory),
        'npz_bitflip': bytes(flipped),
    }


def _npz_shape_lie(good_npz, directory):
    """The npz with ``png_blob``'s .npy header claiming 10^12 elements (same header length)."""
    def change(name, data):
        if name != 'png_blob.npy':
            return data
        (length,) = struct.unpack('<H', data[8:10])
        header = data[10:10 + length]
        start = header.index(b"'shape': (") + len(b"'shape': ")
        end = header.index(b')', start) + 1
        lied = header[:start] + b'(1000000000000,)' + header[end:]
        lied = lied.rstrip(b'\n ').ljust(length - 1) + b'\n'
        assert len(lied) == length
        return data[:10] + lied + data[10 + length:]
    return rewrite_zip(good_npz, Path(directory) / 'lie.npz', change).read_bytes()


# -- YAML ----------------------------------------------------------------------------------


BILLION_LAUGHS = '\n'.join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f'{chr(98 + i)}: &{chr(98 + i)} [' + ','.join([f'*{chr(97 + i)}'] * 9) + ']'
       for i in range(8)]
    + ['divergence: *i']) + '\n'


def yaml_cases():
    """``{id: bytes}`` of crafted YAML files for a training preset."""
    return {
        'billion_laughs': BILLION_LAUGHS.encode(),
        'alias_simple': b'actor_hidden: &w [16, 16]\ncritic_hidden: *w\n',
        'merge_key': b'base: &b {steps: 3}\nother:\n  <<: *b\n',
        'deep_flow': b'steps: ' + b'[' * 20000 + b']' * 20000 + b'\n',
        'deep_block': ''.join(' ' * i + f'k{i}:\n' for i in range(200)).encode(),
        'flat_list_15mb': b'shapes: [' + b'H, ' * 5_000_000 + b'H]\n',
        'oversized_300kb': b'# ' + b'x' * 300_000 + b'\nsteps: 3\n',
        'many_nodes': b'shapes: [' + b'H, ' * 60_000 + b'H]\n',
        'big_integer': b'steps: ' + b'9' * 10_000 + b'\n',
        'not_utf8': b'steps: \xff\xfe\n',
        'tab_indent': b'steps:\n\t- 3\n',
        'unclosed_flow': b'shapes: [H, T\n',
        'top_level_list': b'- steps\n- 3\n',
        'top_level_scalar': b'hello\n',
        'two_documents': b'steps: 3\n---\nsteps: 4\n',
        'python_tag': b'steps: !!python/object/apply:os.system ["echo pwned"]\n',
        'unknown_key': b'hidden_layers: [60000]\n',
        'long_bad_value': b'steps: "' + b'q' * 100_000 + b'"\n',
        'long_unknown_key': b'k' * 100_000 + b': 1\n',
        'nan_lr': b'lr_actor: .nan\n',
        'huge_width': b'actor_hidden: [60000, 60000, 60000]\n',
        'huge_embed': b'embed_channels: 1000000000\n',
        'negative_steps': b'steps: -1\n',
        'unknown_shape': b'shapes: [Q]\n',
        'mapping_for_int': b'steps: {a: 1}\n',
        'unhashable_key': b'[a, b]: 1\n',
        'binary_png': png_header(8, 8),
        'null_key': b'~: 3\n',
        'huge_batch_work': b'image_size: 512\nembed_channels: 1024\n',
    }


def training_yaml_cases():
    """``{id: bytes}`` of presets that are valid configs but ask for networks too large to
    train (refused when training starts, before the networks are built)."""
    return {'huge_parameter_count': b'actor_hidden: [' + b', '.join([b'4096'] * 16) + b']\n'}


def override_cases():
    """``{id: --set item}`` crafted overrides."""
    return {
        'set_alias': 'shapes=[&a H, *a]',
        'set_laughs_flow': 'actor_hidden=' + BILLION_LAUGHS.replace('\n', ' '),
        'set_deep': 'steps=' + '[' * 5000 + ']' * 5000,
        'set_long_value': 'divergence=' + 'v' * 500_000,
        'set_no_equals': 'steps',
        'set_unknown': 'hidden=3',
        'set_malformed': 'shapes=[H, T',
        'set_huge_width': 'critic_hidden=[100000, 100000]',
        'set_big_int': 'steps=' + '7' * 6000,
    }


def sim_yaml_cases():
    """``{id: bytes}`` of crafted simulator data files (shapes / camera / gripper)."""
    return {
        'sim_laughs': BILLION_LAUGHS.encode(),
        'sim_deep': b'[' * 20000 + b']' * 20000,
        'sim_oversized': b'# ' + b'x' * 300_000,
        'sim_list': b'- 1\n- 2\n',
        'sim_garbage_values': b'image_size: "' + b'w' * 50_000 + b'"\naperture: [1]\n',
    }


# -- images --------------------------------------------------------------------------------


def image_cases():
    """``{id: bytes}`` of crafted image files."""
    import cv2
    ok, small = cv2.imencode('.png', np.zeros((4, 4, 3), np.uint8))
    valid = cv2.imencode('.png', np.zeros((128, 128, 3), np.uint8))[1].tobytes()
    jpeg = cv2.imencode('.jpg', np.zeros((128, 128, 3), np.uint8))[1].tobytes()
    sof = jpeg.find(b'\xff\xc0')
    jpeg_lie = bytearray(jpeg)
    jpeg_lie[sof + 5:sof + 9] = struct.pack('>HH', 65000, 65000)
    return {
        'png_bomb_header': png_header(30000, 20000, zlib.compress(bytes(1000))),
        'png_zero_size': png_header(0, 0),
        'png_truncated': valid[:len(valid) // 2],
        'png_corrupt_data': valid[:60] + bytes(200) + valid[260:],
        'jpeg_bomb_header': bytes(jpeg_lie),
        'jpeg_truncated': jpeg[:40],
        'random_bytes': np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8)
        .tobytes(),
        'empty': b'',
        'bmp': cv2.imencode('.bmp', np.zeros((8, 8, 3), np.uint8))[1].tobytes(),
        'tiny_png_wrong_size': small.tobytes() if ok else b'',
    }
