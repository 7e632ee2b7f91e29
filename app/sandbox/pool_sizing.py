"""How big the warm pool should be right now, how many refills may run at once, and whether a run
should wait for a container that is almost ready. Pure arithmetic over what the pool observed
(arrivals, how long its starts and cold starts took), with an injectable clock, so it is tested
without containers.

- Size: enough containers to cover the arrivals of one refill's time in nearly every case, not
  only on average: arrivals are bursty, so the count of them during a refill is taken as
  Poisson (mean: arrival rate x refill time, the rate the higher of the last 20 s and the last
  5 s) and the target is its 99th percentile; never below the configured size, never above the
  maximum or what the memory bound allows (each container counted at its memory limit, against
  the pool's budget and the host's available memory). With no arrivals the target falls back to
  the configured size and surplus containers are removed once idle.
- Refills yield to runs: while as many runs as there are cores are active (not counting runs
  that only wait for a start) and a container is ready, no refill starts, and with none ready
  one at a time; otherwise up to three at once. A start is not all CPU (engine round trips,
  runc), so one start per free core leaves cores idle while the pool runs dry.
- Waiting: a run that finds no container ready waits for the oldest start not yet promised to
  another waiting run, when that start should be ready sooner than a cold start would be. A run
  whose code imports a preloaded module (pandas) counts a cold start at a whole refill's time:
  its cold container would import that module too.
- Deferred imports: a new container imports the deferred modules (matplotlib) while it waits only
  when it should wait long enough to finish them (the containers ahead of it over the arrival
  rate, less its own start), and only while the machine's cores are mostly idle (under 40 % busy
  over the last 20 s and over the last 5 s, /proc/stat). One taken before then kills that
  import, so under load it would be CPU spent for nothing, taken from runs and refills; and a
  busy machine spends its CPU on what every run needs, not on what only plotting runs do.
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
SHORT_ARRIVAL_WINDOW = MIN_RATE_SPAN
MAX_PARALLEL_STARTS = 3
# The share of the arrivals during one refill the pool covers (their Poisson quantile).
COVERED_ARRIVALS = 0.99
# Surplus containers are removed only after idling this long, so a pause does not waste refills.
SHRINK_AFTER = 30.0
SMOOTHING = 0.3
FIRST_REFILL_GUESS = 1.5
FIRST_COLD_GUESS = 0.5
# The deferred imports' time in a waiting container (`bench --refill`: matplotlib and pyplot about
# 0.7 s on an idle 2-core machine), with some margin.
DEFER_SECONDS = 1.0
# Deferred imports only while the cores were less busy than this, over CPU_WINDOW seconds.
DEFER_MAX_BUSY = 0.4
CPU_WINDOW = ARRIVAL_WINDOW
SHORT_CPU_WINDOW = 5.0
# A busy fraction over less than this is not trusted (a moment's burst is not the machine's load).
MIN_CPU_SPAN = 0.5


def cpu_fields() -> list[float] | None:
    """CPU seconds of all cores since boot by kind, from /proc/stat: user, nice, system, idle,
    iowait, irq, softirq, steal (time a hypervisor gave to other guests); None off Linux."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return [v / tick for v in fields]


def cpu_times() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of all cores since boot, None off Linux. Stolen time counts as
    busy: a core the hypervisor gave to another guest was no core for a start."""
    fields = cpu_fields()
    if fields is None:
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """How busy the machine's cores have been: the busier of the last CPU_WINDOW seconds and the
    last SHORT_CPU_WINDOW (a load that just began counts at once, a lull in one does not). Each
    call is a reading; the pool reads when it decides a start's deferred imports."""

    def __init__(
        self,
        times: Callable[[], tuple[float, float] | None] = cpu_times,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.times = times
        self.clock = clock
        self._samples: deque[tuple[float, float, float]] = deque()
        self._last: float | None = None

    def __call__(self) -> float | None:
        """The busy fraction (0 to 1); None while unknown."""
        reading = self.times()
        if reading is None:
            return None
        now = self.clock()
        sample = (now, *reading)
        self._samples.append(sample)
        while len(self._samples) > 2 and self._samples[1][0] <= now - CPU_WINDOW:
            self._samples.popleft()  # one sample older than the window stays: the baseline
        recent = next(
            (old for old in reversed(self._samples) if old[0] <= now - SHORT_CPU_WINDOW),
            self._samples[0],
        )
        shares = [self._share(base, sample) for base in (self._samples[0], recent)]
        known = [share for share in shares if share is not None]
        if known:
            self._last = max(known)
        return self._last

    @staticmethod
    def _share(base: tuple[float, float, float], now: tuple[float, float, float]) -> float | None:
        if now[0] - base[0] < MIN_CPU_SPAN or now[2] <= base[2]:
            return None
        return min(1.0, max(0.0, (now[1] - base[1]) / (now[2] - base[2])))


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
        cpu_busy: Callable[[], float | None] | None = None,
    ) -> None:
        self.bounds = bounds
        self.clock = clock
        self.cores = cores or os.cpu_count() or 1
        self.memory = memory
        self.cpu_busy = cpu_busy if cpu_busy is not None else CpuMeter(clock=clock)
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
        """Arrivals per second: the higher of the last ARRIVAL_WINDOW seconds and the last
        SHORT_ARRIVAL_WINDOW, so a server that just got busy after a quiet spell is met at once
        (over 20 s, its first few runs would look like a trickle)."""
        self._trim()
        if not self._arrivals:
            return 0.0
        now = self.clock()
        span = min(ARRIVAL_WINDOW, max(MIN_RATE_SPAN, now - self._first))
        recent = 0
        for at in reversed(self._arrivals):
            if at <= now - SHORT_ARRIVAL_WINDOW:
                break
            recent += 1
        return max(len(self._arrivals) / span, recent / SHORT_ARRIVAL_WINDOW)

    def target(self, held: int) -> int:
        """How many containers to hold (ready or starting); `held`: how many are now."""
        bounds = self.bounds
        rate = self.rate()
        wanted = poisson_quantile(rate * self.refill_seconds, COVERED_ARRIVALS) if rate else 0
        cap = bounds.memory_cap(self.memory(), held) if wanted > bounds.size else bounds.size
        return max(bounds.size, min(wanted, bounds.max_size, cap))

    def parallel_starts(self, runs_active: int, ready: int) -> int:
        """How many refills may be under way at once now."""
        if runs_active >= self.cores:
            return 0 if ready > 0 else 1
        return MAX_PARALLEL_STARTS

    def wait_for(self, start_age: float | None, uses_preload: bool = False) -> float | None:
        """Seconds worth waiting for a start that began `start_age` seconds ago; None: go cold.

        `uses_preload`: the run's code needs what a warm container preloads (pandas). A cold run
        then imports it too, after its own container start: about a whole refill's work, so the
        cold alternative costs a refill's time, not only a cold container's."""
        if start_age is None:
            return None
        cold = max(self.cold_seconds, self.refill_seconds) if uses_preload else self.cold_seconds
        remaining = max(0.0, self.refill_seconds - start_age)
        if remaining >= cold:
            return None
        # A start slower than expected is given up on when a cold one would have been ready.
        return cold

    def defers(self, ahead: int) -> bool:
        """Whether a container starting now should import the deferred modules while it waits;
        `ahead` containers (ready or starting, promised to no waiting run) are taken before it."""
        busy = self.cpu_busy()
        if busy is not None and busy >= DEFER_MAX_BUSY:
            return False
        rate = self.rate()
        if not rate:
            return True
        idle_expected = (max(0, ahead) + 1) / rate - self.refill_seconds
        return idle_expected >= DEFER_SECONDS

    def _trim(self) -> None:
        horizon = self.clock() - ARRIVAL_WINDOW
        while self._arrivals and self._arrivals[0] < horizon:
            self._arrivals.popleft()


def poisson_quantile(mean: float, share: float) -> int:
    """The least k with P(X <= k) >= share for X Poisson of `mean` (k >= 0)."""
    if mean <= 0:
        return 0
    term = total = math.exp(-mean)
    if term == 0.0:  # beyond any pool's size: the normal approximation is close enough
        return math.ceil(mean + 3 * math.sqrt(mean))
    k = 0
    while total < share and term > 0:
        k += 1
        term *= mean / k
        total += term
    return k
