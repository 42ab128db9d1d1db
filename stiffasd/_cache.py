"""`BuildCache`: a bounded, thread-safe LRU of values built once per key (prepared Jacobians of
stage residuals, multifrontal plans)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BuildCache:
    """``get(key, build)`` returns the cached value of ``key`` or stores ``build()``; the least
    recently used entry goes when more than ``maxsize`` are held. ``build`` runs outside the lock
    (two threads may build the same key once each; the later one is kept)."""

    def __init__(self, maxsize: int = 32):
        self._lock = threading.Lock()
        self._store: OrderedDict[Hashable, Any] = OrderedDict()
        self.maxsize = maxsize
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._store:
                self._store.move_to_end(key)
                return self._store[key]
        value = build()
        with self._lock:
            self.misses += 1
            self._store[key] = value
            while len(self._store) > self.maxsize:
                self._store.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._store.clear()
