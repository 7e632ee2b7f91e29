"""How big the warm pool should be right now, how many refills may run at once, and whether a run
should wait for a container that is almost ready. Pure arithmetic over what the pool observed
(arrivals, how long its starts and cold starts took), with an injectable clock, so it is tested
without containers.

- Size: enough containers to cover the arrivals expected while one refill is under way (Little's
  law: arrival rate x refill time), plus one for a burst; never below the configured size, never
  above the maximum or what the memory bound allows (each container counted at its memory
  limit, against the pool's budget and the host's available memory). With no arrivals the
  target falls back to the configured size and surplus containers are removed once idle.
- Refills yield to runs: while as many runs as there are cores are active and a container is
  ready, no refill starts; otherwise at most the cores the runs leave free (at least one).
- Waiting: a run that finds no container ready waits for the oldest start not yet promised to
  another waiting run, when that start should be ready sooner than a cold start would be.
- Deferred imports: a new container imports the deferred modules (matplotlib) while it waits only
  when it should wait long enough to finish them (the containers ahead of it over the arrival
  rate, less its own start). One taken before then kills that import, so under load it would be
  CPU spent for nothing, taken from runs and refills.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

ARRIVAL_WINDOW = 20.0
# A rate is not trusted over less than this (the first arrival would otherwise look like a burst).
MIN_RATE_SPAN = 5.0
MAX_PARALLEL_STARTS = 2
# Surplus containers are removed only after idling this long, so a pause does not waste refills.
SHRINK_AFTER = 30.0
SMOOTHING = 0.3
FIRST_REFILL_GUESS = 1.5
FIRST_COLD_GUESS = 0.5
# The deferred imports' time in a waiting container (`bench --refill`: matplotlib and pyplot about
# 0.7 s on an idle 2-core machine), with some margin.
DEFER_SECONDS = 1.0


def available_memory() -> int | None:
    """The host's MemAvailable in bytes, None when unknown (not Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class PoolBounds:
    size: int
    """Kept ready even when idle (SANDBOX_WARM_POOL_SIZE)."""
    max_size: int
    """The most the pool grows to with arrivals (SANDBOX_WARM_POOL_MAX, at least size)."""
    memory_budget: int = 0
    """Bytes the pool's containers may be given together, each at its limit (0: no bound)."""
    container_memory: int = 1024**3

    def memory_cap(self, host_available: int | None, held: int) -> int:
        """The most containers memory allows: the budget, and one more only while the host could
        give it its whole limit."""
        cap = self.max_size
        if self.memory_budget:
            cap = min(cap, self.memory_budget // max(1, self.container_memory))
        if host_available is not None and host_available < self.container_memory:
            cap = min(cap, held)
        return max(self.size, cap)


class PoolSizer:
    def __init__(
        self,
        bounds: PoolBounds,
        *,
        clock: Callable[[], float] = time.monotonic,
        cores: int | None = None,
        memory: Callable[[], int | None] = available_memory,
    ) -> None:
        self.bounds = bounds
        self.clock = clock
        self.cores = cores or os.cpu_count() or 1
        self.memory = memory
        self.refill_seconds = FIRST_REFILL_GUESS
        self.cold_seconds = FIRST_COLD_GUESS
        self._arrivals: deque[float] = deque()
        self._first = clock()

    def arrival(self) -> None:
        self._arrivals.append(self.clock())
        self._trim()

    def started(self, seconds: float) -> None:
        """A warm container took `seconds` from its start to ready."""
        self.refill_seconds += SMOOTHING * (seconds - self.refill_seconds)

    def cold_started(self, seconds: float) -> None:
        """A cold run's container took `seconds` to be ready."""
        self.cold_seconds += SMOOTHING * (seconds - self.cold_seconds)

    def rate(self) -> float:
        """Arrivals per second over the recent window."""
        self._trim()
        if not self._arrivals:
            return 0.0
        span = min(ARRIVAL_WINDOW, max(MIN_RATE_SPAN, self.clock() - self._first))
        return len(self._arrivals) / span

    def target(self, held: int) -> int:
        """How many containers to hold (ready or starting); `held`: how many are now."""
        bounds = self.bounds
        rate = self.rate()
        wanted = math.ceil(rate * self.refill_seconds) + 1 if rate else 0
        cap = bounds.memory_cap(self.memory(), held) if wanted > bounds.size else bounds.size
        return max(bounds.size, min(wanted, bounds.max_size, cap))

    def parallel_starts(self, runs_active: int, ready: int) -> int:
        """How many refills may be under way at once now."""
        if runs_active >= self.cores and ready > 0:
            return 0
        return max(1, min(MAX_PARALLEL_STARTS, self.cores - runs_active))

    def wait_for(self, start_age: float | None) -> float | None:
        """Seconds worth waiting for a start that began `start_age` seconds ago; None: go cold."""
        if start_age is None:
            return None
        remaining = max(0.0, self.refill_seconds - start_age)
        if remaining >= self.cold_seconds:
            return None
        # A start slower than expected is given up on when a cold one would have been ready.
        return self.cold_seconds

    def defers(self, ahead: int) -> bool:
        """Whether a container starting now should import the deferred modules while it waits;
        `ahead` containers (ready or starting, promised to no waiting run) are taken before it."""
        rate = self.rate()
        if not rate:
            return True
        idle_expected = (max(0, ahead) + 1) / rate - self.refill_seconds
        return idle_expected >= DEFER_SECONDS

    def _trim(self) -> None:
        horizon = self.clock() - ARRIVAL_WINDOW
        while self._arrivals and self._arrivals[0] < horizon:
            self._arrivals.popleft()
