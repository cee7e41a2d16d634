"""The hand-over between the proposal node's service callbacks and its display thread."""

import threading

from fga_ros.nodes.mailbox import Latest


def test_keeps_only_the_newest_item():
    slot = Latest()
    for item in range(5):
        slot.put(item)
    assert slot.take(timeout=0) == 4 and slot.replaced == 4
    assert slot.take(timeout=0) is None  # taken: empty again


def test_take_waits_for_a_put_from_another_thread():
    slot = Latest()
    taken = []
    reader = threading.Thread(target=lambda: taken.append(slot.take(timeout=30)))
    reader.start()
    slot.put('proposal')
    reader.join(timeout=30)
    assert taken == ['proposal']


def test_close_wakes_readers_and_drops_later_items():
    slot = Latest()
    slot.put('pending')
    slot.close()
    assert slot.take() == 'pending'  # an item put before close is still handed out
    assert slot.take() is None  # then take returns at once
    slot.put('late')
    assert slot.take(timeout=0) is None
    assert slot.closed and slot.wait_closed(30.0)


def test_wait_closed_times_out_while_open():
    slot = Latest()
    assert not slot.wait_closed(0.01)
