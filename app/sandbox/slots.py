"""RunSlots: at most N runs at once, granted in arrival order, and one run per user at a time."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class RunSlots:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._free = capacity
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._user_locks: dict[str, asyncio.Lock] = {}
        self._user_refs: dict[str, int] = {}
        self.running = 0

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    @asynccontextmanager
    async def acquire(
        self, user_id: str, on_queued: Callable[[int], None] | None = None
    ) -> AsyncIterator[None]:
        """Hold a slot for one run. `on_queued(position)` is called if the run has to wait, and
        with 0 once it has its slot."""
        lock = self._user_locks.setdefault(user_id, asyncio.Lock())
        self._user_refs[user_id] = self._user_refs.get(user_id, 0) + 1
        try:
            async with lock:
                await self._enter(on_queued)
                self.running += 1
                try:
                    yield
                finally:
                    self.running -= 1
                    self._leave()
        finally:
            self._user_refs[user_id] -= 1
            if self._user_refs[user_id] == 0:
                del self._user_refs[user_id]
                del self._user_locks[user_id]

    async def _enter(self, on_queued: Callable[[int], None] | None) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if on_queued is not None:
            on_queued(self.waiting)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._leave()  # we were granted the slot as we were cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise
        if on_queued is not None:
            on_queued(0)

    def _leave(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
