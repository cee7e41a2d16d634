"""Balanced replay memory: balance, eviction, the shared PNG store, exact save/restore."""

import numpy as np
import pytest

from fga_ros.core.training.replay import CriticBatch, ReplayMemory
from fga_ros.sim import make_scene, render

SIZE = 16


def _image(value):
    """Flat image whose colour encodes ``value`` (0..255)."""
    return np.full((SIZE, SIZE, 3), value, dtype=np.uint8)


def _fill(memory, states, per_state=4):
    """State s gets per_state grasps with x = s, alternating labels (even index: success)."""
    for s in range(states):
        actions = np.array([[s, k, 0.5] for k in range(per_state)], dtype=np.float32)
        memory.add(_image(s), actions, np.arange(per_state) % 2 == 0)


def _assert_consistent(batch):
    """Each experience's image is the one its action was stored with."""
    for col in range(batch.actions.shape[1]):
        np.testing.assert_array_equal(batch.images[:, 0, 0, 0], batch.actions[:, col, 0])
        np.testing.assert_array_equal(batch.labels[:, col], batch.actions[:, col, 1] % 2 == 0)


def test_balanced_batches_pair_images_actions_labels():
    memory = ReplayMemory(100, 100, SIZE)
    _fill(memory, 10)
    assert len(memory) == 40
    assert memory.sizes() == {'positive': 20, 'negative': 20, 'states': 10}
    batch = memory.sample_balanced(9, np.random.default_rng(0))
    assert isinstance(batch, CriticBatch)
    assert batch.images.shape == (9, SIZE, SIZE, 3) and batch.images.dtype == np.uint8
    assert batch.actions.shape == (9, 1, 3) and batch.actions.dtype == np.float32
    assert batch.labels.shape == (9, 1) and batch.labels.sum() == 4
    _assert_consistent(batch)


def test_balance_holds_whatever_the_label_ratio():
    memory = ReplayMemory(1000, 1000, SIZE)
    rng = np.random.default_rng(1)
    memory.add(_image(1), rng.uniform(30, 90, size=(300, 3)), np.arange(300) < 3)
    batch = memory.sample_balanced(32, rng)
    assert batch.labels.sum() == 16
    positives = memory.state_dict()['positive_actions'][:3]
    assert set(batch.actions[batch.labels, 0]) <= set(positives[:, 0])


def test_grouped_batches_add_experiences_of_the_anchor_state():
    memory = ReplayMemory(100, 100, SIZE)
    _fill(memory, 10, per_state=6)
    rng = np.random.default_rng(4)
    batch = memory.sample_grouped(8, 5, rng)
    assert batch.images.shape == (8, SIZE, SIZE, 3)
    assert batch.actions.shape == (8, 5, 3) and batch.labels.shape == (8, 5)
    assert batch.labels[:, 0].sum() == 4  # the anchors stay balanced
    _assert_consistent(batch)
    # the extras are drawn over all of a state's experiences, both labels
    many = memory.sample_grouped(64, 9, rng)
    assert 0.3 < many.labels[:, 1:].mean() < 0.7
    assert len(set(many.actions[:, 1:, 1].ravel())) == 6


def test_grouped_batches_only_use_experiences_still_held():
    memory = ReplayMemory(6, 6, SIZE)
    _fill(memory, 5, per_state=4)  # 10 positives, 10 negatives: the last 6 of each remain
    memory.add(_image(5), np.array([[5, 0, 0.5], [5, 1, 0.5]]), [True, False])
    held = {tuple(a) for name in ('positive', 'negative')
            for a in memory.state_dict()[f'{name}_actions']}
    rng = np.random.default_rng(5)
    for _ in range(20):
        batch = memory.sample_grouped(4, 6, rng)
        _assert_consistent(batch)
        assert {tuple(a) for a in batch.actions.reshape(-1, 3)} <= held
    restored = ReplayMemory(6, 6, SIZE)
    restored.load_state_dict(memory.state_dict())
    for seed in range(3):
        one = memory.sample_grouped(4, 3, np.random.default_rng(seed))
        two = restored.sample_grouped(4, 3, np.random.default_rng(seed))
        np.testing.assert_array_equal(one.actions, two.actions)


def test_grouped_batch_of_one_is_the_balanced_batch():
    memory = ReplayMemory(100, 100, SIZE)
    _fill(memory, 10)
    one = memory.sample_grouped(6, 1, np.random.default_rng(7))
    two = memory.sample_balanced(6, np.random.default_rng(7))
    np.testing.assert_array_equal(one.actions, two.actions)
    with pytest.raises(ValueError, match='per_state must be a positive integer'):
        memory.sample_grouped(6, 0, np.random.default_rng(7))


def test_empty_memory_is_a_clear_error():
    memory = ReplayMemory(10, 10, SIZE)
    with pytest.raises(ValueError, match='replay memory is empty'):
        memory.sample_states(2, np.random.default_rng(0))
    memory.add(_image(3), np.zeros((2, 3)), [False, False])
    with pytest.raises(ValueError, match='positive replay memory is empty'):
        memory.sample_balanced(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match='positive replay memory is empty'):
        memory.sample_positive(4, np.random.default_rng(0))


def test_ring_buffers_evict_oldest_and_drop_unreferenced_states():
    memory = ReplayMemory(6, 6, SIZE)
    _fill(memory, 5)  # 10 positives, 10 negatives: only the last 6 of each remain
    assert memory.sizes() == {'positive': 6, 'negative': 6, 'states': 3}
    state = memory.state_dict()
    assert sorted(state['positive_actions'][:, 0]) == [2, 2, 3, 3, 4, 4]
    assert sorted(state['negative_actions'][:, 0]) == [2, 2, 3, 3, 4, 4]
    rng = np.random.default_rng(2)
    for _ in range(5):
        _assert_consistent(memory.sample_balanced(8, rng))
    states = memory.sample_states(50, rng)
    assert set(states[:, 0, 0, 0]) == {2, 3, 4}


def test_sample_states_is_uniform_over_states():
    memory = ReplayMemory(1000, 1000, SIZE)
    memory.add(_image(0), np.zeros((200, 3)), np.ones(200, bool))  # many experiences
    memory.add(_image(1), np.zeros((1, 3)), [True])  # one experience
    values = memory.sample_states(4000, np.random.default_rng(3))[:, 0, 0, 0]
    assert 0.45 < values.mean() < 0.55


def test_images_are_resized_to_network_resolution():
    memory = ReplayMemory(4, 4, 8)
    memory.add(np.full((128, 128, 3), 77, np.uint8), np.zeros((1, 3)), [True])
    memory.add(np.full((128, 128, 3), 9, np.uint8), np.zeros((1, 3)), [False])
    batch = memory.sample_balanced(2, np.random.default_rng(0))
    assert batch.images.shape == (2, 8, 8, 3)
    assert sorted(batch.images[:, 0, 0, 0]) == [9, 77]


def test_colour_channels_survive_storage():
    memory = ReplayMemory(4, 4, SIZE)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[..., 0] = 200
    image[4:, :, 2] = 50
    memory.add(image, np.zeros((1, 3)), [True])
    np.testing.assert_array_equal(memory.sample_states(1, np.random.default_rng(0))[0], image)


@pytest.mark.parametrize('args, message', [
    ((np.zeros((SIZE, SIZE)), np.zeros((1, 3)), [True]), 'image must be uint8'),
    ((_image(0), np.zeros((1, 2)), [True]), r'actions must have shape \(n, 3\)'),
    ((_image(0), np.zeros((2, 3)), [True]), r'labels must have shape \(2,\)'),
    ((_image(0), np.full((1, 3), np.nan), [True]), 'actions must be finite'),
    ((_image(0), np.zeros((1, 3)), [7]), 'labels must be booleans'),
])
def test_bad_input_is_named(args, message):
    with pytest.raises(ValueError, match=message):
        ReplayMemory(4, 4, SIZE).add(*args)


def test_state_dict_round_trip_is_exact(tmp_path):
    memory = ReplayMemory(7, 5, SIZE)
    _fill(memory, 6, per_state=3)
    path = tmp_path / 'replay.npz'
    np.savez(path, **memory.state_dict())
    with np.load(path, allow_pickle=False) as data:
        restored = ReplayMemory(7, 5, SIZE)
        restored.load_state_dict({k: data[k] for k in data.files})
    assert restored.sizes() == memory.sizes()
    for a, b in ((memory, 11), (restored, 11)):
        a.add(_image(b), np.array([[b, 0, 0], [b, 1, 0]]), [True, False])
    for seed in range(3):
        one = memory.sample_balanced(6, np.random.default_rng(seed))
        two = restored.sample_balanced(6, np.random.default_rng(seed))
        for x, y in zip(one, two):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(memory.sample_states(5, np.random.default_rng(seed)),
                                      restored.sample_states(5, np.random.default_rng(seed)))


def test_load_state_dict_rejects_mismatches():
    memory = ReplayMemory(4, 4, SIZE)
    _fill(memory, 2)
    state = memory.state_dict()
    with pytest.raises(ValueError, match='positive capacity 4, this memory 5'):
        ReplayMemory(5, 4, SIZE).load_state_dict(state)
    with pytest.raises(ValueError, match='holds 16-pixel observations, this model takes 8-pixel'):
        ReplayMemory(4, 4, 8).load_state_dict(state)
    with pytest.raises(ValueError, match='lacks the array.s. png_blob'):
        ReplayMemory(4, 4, SIZE).load_state_dict({k: v for k, v in state.items()
                                                  if k != 'png_blob'})
    broken = dict(state, png_lengths=state['png_lengths'] + 1)
    with pytest.raises(ValueError, match='PNG lengths'):
        ReplayMemory(4, 4, SIZE).load_state_dict(broken)


def test_empty_memory_round_trip():
    memory = ReplayMemory(3, 3, SIZE)
    restored = ReplayMemory(3, 3, SIZE)
    restored.load_state_dict(memory.state_dict())
    assert len(restored) == 0 and restored.sizes()['states'] == 0
    _fill(restored, 1)
    assert len(restored) == 4


@pytest.mark.parametrize('image_size', [64, 128])
def test_memory_per_experience_on_simulator_images(image_size):
    """Full rings, one observation per experience (the steady state of training): the
    bytes per experience projected to the paper's 320k experiences fit in 2 GiB."""
    memory = ReplayMemory(20, 20, image_size)
    rng = np.random.default_rng(0)
    shapes = ('H', '8', 'Spoon', 'T')
    for i in range(40):
        scene = make_scene(shapes[i % 4], int(rng.integers(2**31)))
        memory.add(render(scene), rng.uniform(30, 90, size=(1, 3)), [bool(i % 2)])
    assert memory.sizes() == {'positive': 20, 'negative': 20, 'states': 40}
    per_experience = memory.nbytes() / len(memory)
    assert per_experience * 320_000 < 2 * 2**30


def test_load_state_dict_names_damaged_contents():
    memory = ReplayMemory(4, 4, SIZE)
    _fill(memory, 2)
    state = memory.state_dict()
    actions = state['negative_actions'].copy()
    actions[0, 1] = np.nan
    with pytest.raises(ValueError, match='negative action 0 is NaN or infinite'):
        ReplayMemory(4, 4, SIZE).load_state_dict(dict(state, negative_actions=actions))
    blob = state['png_blob'].copy()
    blob[20] ^= 0xFF  # inside the first PNG's IHDR: its width
    with pytest.raises(ValueError, match='observation 0 is not an 8-bit RGB PNG of 16 x 16'):
        ReplayMemory(4, 4, SIZE).load_state_dict(dict(state, png_blob=blob))
    blob = state['png_blob'].copy()
    blob[int(state['png_lengths'][0]) - 20] ^= 0xFF  # inside the first PNG's pixel data
    with pytest.raises(ValueError, match='observation 0 cannot be decoded'):
        ReplayMemory(4, 4, SIZE).load_state_dict(dict(state, png_blob=blob))
    with pytest.raises(ValueError, match='positive_count must be an integer scalar'):
        ReplayMemory(4, 4, SIZE).load_state_dict(dict(state, positive_count=np.float64(1.5)))
    with pytest.raises(ValueError, match='inconsistent positive ring arrays'):
        ReplayMemory(4, 4, SIZE).load_state_dict(dict(state, positive_count=np.int64(2)))
