"""A small per-process cache of finished permalink pages, kept per member.

A completed answer's page is the same on every view except for what belongs to the
member (their name, their CSRF token) and what changes the row (a new title, a share
link, a re-render), all of which are in the key. Entries also expire after a minute so
relative times and link expiries never go stale for long. Bounded by total size.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable


class PageCache:
    def __init__(self, max_bytes: int, ttl_seconds: float) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, body = entry
            if time.monotonic() - stored_at > self._ttl:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self._max_bytes // 4:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (time.monotonic(), body)
            self._bytes += len(body)
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        _, body = self._entries.pop(key)
        self._bytes -= len(body)
