"""A bounded queue of size 1 that keeps only the newest item (no ROS imports).

The proposal node hands every answered proposal to its display thread through one: the
service callback never waits for the display, and a display that falls behind skips to the
newest proposal instead of queueing old ones.
"""

import threading


class Latest:
    """Thread-safe slot holding the newest item put and not yet taken."""

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._full = False
        self._closed = False
        self.replaced = 0
        """Items overwritten before anyone took them."""

    def put(self, item) -> None:
        """Store ``item``, replacing one not taken yet; ignored once closed."""
        with self._condition:
            if self._closed:
                return
            self.replaced += self._full
            self._item, self._full = item, True
            self._condition.notify()

    def take(self, timeout=None):
        """The newest item, waiting up to ``timeout`` s (None: forever) for one.

        Returns None after a time-out or once the slot is closed (an item put before
        ``close`` is still returned first).
        """
        with self._condition:
            self._condition.wait_for(lambda: self._full or self._closed, timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake every waiting ``take``; later ``put`` calls are ignored."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_closed(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s, returning early (True) when the slot is closed."""
        with self._condition:
            return self._condition.wait_for(lambda: self._closed, timeout)
