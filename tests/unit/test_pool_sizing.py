"""The warm pool's sizing rules: grow with arrivals, shrink when idle, bounded by the maximum and
by memory; refills yield to runs; a run waits for a start only when that beats a cold one."""

from app.sandbox.pool_sizing import PoolBounds, PoolSizer

GIB = 1024**3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sizer(size=2, max_size=6, budget=0, host=64 * GIB, cores=2):
    clock = Clock()
    bounds = PoolBounds(size=size, max_size=max_size, memory_budget=budget, container_memory=GIB)
    return PoolSizer(bounds, clock=clock, cores=cores, memory=lambda: host), clock


def arrive(s, clock, per_second: float, seconds: float) -> None:
    for _ in range(int(per_second * seconds)):
        clock.now += 1 / per_second
        s.arrival()


def test_without_arrivals_the_target_is_the_configured_size():
    s, _ = sizer()
    assert s.target(held=0) == 2


def test_the_target_grows_with_the_arrival_rate_and_the_refill_time():
    s, clock = sizer()
    s.refill_seconds = 1.5
    arrive(s, clock, 2.0, 20)  # 2 runs/s for 20 s
    assert s.rate() == 2.0
    assert s.target(held=2) == 4  # ceil(2 x 1.5) + 1
    s.refill_seconds = 4.0  # slower refills need more ahead
    assert s.target(held=2) == 6


def test_the_target_never_exceeds_the_maximum_or_the_memory_budget():
    s, clock = sizer(max_size=5)
    arrive(s, clock, 10.0, 20)
    assert s.target(held=2) == 5
    s, clock = sizer(max_size=6, budget=3 * GIB)
    arrive(s, clock, 10.0, 20)
    assert s.target(held=2) == 3


def test_no_growth_while_the_host_lacks_memory_for_one_more_container():
    s, clock = sizer(host=GIB // 2)
    arrive(s, clock, 10.0, 20)
    assert s.target(held=3) == 3  # keeps what it holds, grows no further
    assert s.target(held=1) == 2  # never below the configured size


def test_the_target_falls_back_once_arrivals_stop():
    s, clock = sizer()
    arrive(s, clock, 3.0, 20)
    assert s.target(held=2) > 2
    clock.now += 60
    assert s.rate() == 0.0 and s.target(held=5) == 2


def test_a_first_arrival_does_not_look_like_a_burst():
    s, clock = sizer()
    s.arrival()
    assert s.target(held=2) == 2


def test_refills_yield_to_runs():
    s, _ = sizer(cores=2)
    assert s.parallel_starts(runs_active=0, ready=0) == 2
    assert s.parallel_starts(runs_active=1, ready=1) == 1
    assert s.parallel_starts(runs_active=2, ready=1) == 0  # every core runs code, one is ready
    assert s.parallel_starts(runs_active=3, ready=0) == 1  # an empty pool still refills


def test_a_run_waits_for_a_start_only_when_that_beats_a_cold_start():
    s, _ = sizer()
    s.refill_seconds, s.cold_seconds = 1.2, 0.5
    assert s.wait_for(None) is None  # nothing under way
    assert s.wait_for(0.1) is None  # 1.1 s left: a cold start is sooner
    assert s.wait_for(1.0) == 0.5  # 0.2 s left: wait, at most as long as a cold start
    assert s.wait_for(3.0) == 0.5  # late already: still sooner than nothing, bounded


def test_estimates_follow_what_was_measured():
    s, _ = sizer()
    for _ in range(30):
        s.started(0.8)
        s.cold_started(0.3)
    assert abs(s.refill_seconds - 0.8) < 0.01 and abs(s.cold_seconds - 0.3) < 0.01


def test_deferred_imports_are_made_only_by_a_container_that_should_wait_for_them():
    s, clock = sizer()
    s.refill_seconds = 1.5
    assert s.defers(ahead=0)  # no arrivals: a new container idles, its imports finish
    arrive(s, clock, 0.1, 20)  # a run every 10 s: the next one is a long way off
    assert s.defers(ahead=0)
    s, clock = sizer()
    s.refill_seconds = 1.5
    arrive(s, clock, 2.0, 20)  # under load a new container is taken about as soon as it is ready
    assert not s.defers(ahead=0)
    assert not s.defers(ahead=2)  # 1.5 s until it is taken: ready with no time to spare
    assert s.defers(ahead=6)  # 3.5 s: 2 s of waiting, time enough
    clock.now += 60  # the arrivals are over
    assert s.defers(ahead=0)
