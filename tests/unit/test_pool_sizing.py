"""The warm pool's sizing rules: grow with arrivals, shrink when idle, bounded by the maximum and
by memory; refills yield to runs; a run waits for a start only when that beats a cold one;
deferred imports only on a machine with CPU to spare."""

from app.sandbox.pool_sizing import CpuMeter, PoolBounds, PoolSizer, poisson_quantile

GIB = 1024**3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sizer(size=2, max_size=6, budget=0, host=64 * GIB, cores=2, busy=0.1):
    clock = Clock()
    bounds = PoolBounds(size=size, max_size=max_size, memory_budget=budget, container_memory=GIB)
    sizer = PoolSizer(bounds, clock=clock, cores=cores, memory=lambda: host, cpu_busy=lambda: busy)
    return sizer, clock


def arrive(s, clock, per_second: float, seconds: float) -> None:
    for _ in range(int(per_second * seconds)):
        clock.now += 1 / per_second
        s.arrival()


def test_without_arrivals_the_target_is_the_configured_size():
    s, _ = sizer()
    assert s.target(held=0) == 2


def test_the_target_grows_with_the_arrival_rate_and_the_refill_time():
    s, clock = sizer(max_size=20)
    s.refill_seconds = 1.0
    arrive(s, clock, 1.0, 20)  # 1 run/s for 20 s
    assert s.rate() == 1.0
    # 1 arrival per refill on average, but 3 or fewer only 98.1 % of the time, 4 or fewer 99.6 %
    assert s.target(held=2) == 4
    s.refill_seconds = 3.0  # slower refills need more ahead
    assert s.target(held=2) == 8  # Poisson(3): 7 or fewer 98.8 % of the time, 8 or fewer 99.6 %


def test_the_burst_cover_is_the_poisson_quantile():
    assert poisson_quantile(0.0, 0.975) == 0
    assert poisson_quantile(1.0, 0.975) == 3  # P(X <= 2) = 0.920, P(X <= 3) = 0.981
    assert poisson_quantile(3.0, 0.975) == 7  # P(X <= 6) = 0.966, P(X <= 7) = 0.988
    assert poisson_quantile(1.0, 0.5) == 1  # the median, for comparison
    assert poisson_quantile(1.0, 0.99) == 4  # P(X <= 4) = 0.996
    assert poisson_quantile(2000.0, 0.975) > 2000  # no underflow to zero for huge means


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


def test_a_server_that_gets_busy_after_a_quiet_spell_is_met_at_once():
    s, clock = sizer(max_size=20)
    s.refill_seconds = 1.0
    clock.now += 3600  # a long-running bot, quiet for an hour
    arrive(s, clock, 1.5, 4)  # then six runs in four seconds
    # Over the 20 s window that is 0.3 runs/s; over the last 5 s, 1.2.
    assert s.rate() == 6 / 5
    assert s.target(held=2) == poisson_quantile(1.2, 0.99) == 4


def test_a_first_arrival_does_not_look_like_a_burst():
    s, clock = sizer()
    s.arrival()
    assert s.target(held=2) == 2


def test_refills_yield_to_runs():
    s, _ = sizer(cores=2)
    assert s.parallel_starts(runs_active=0, ready=0) == 3  # a start is not all CPU
    assert s.parallel_starts(runs_active=1, ready=1) == 3
    assert s.parallel_starts(runs_active=2, ready=1) == 0  # every core runs code, one is ready
    assert s.parallel_starts(runs_active=3, ready=0) == 1  # an empty pool still refills


def test_a_run_waits_for_a_start_only_when_that_beats_a_cold_start():
    s, _ = sizer()
    s.refill_seconds, s.cold_seconds = 1.2, 0.5
    assert s.wait_for(None) is None  # nothing under way
    assert s.wait_for(0.1) is None  # 1.1 s left: a cold start is sooner
    assert s.wait_for(1.0) == 0.5  # 0.2 s left: wait, at most as long as a cold start
    assert s.wait_for(3.0) == 0.5  # late already: still sooner than nothing, bounded


def test_code_that_needs_the_preload_waits_up_to_a_whole_refill():
    s, _ = sizer()
    s.refill_seconds, s.cold_seconds = 1.2, 0.5
    # A cold container would import pandas too: going cold costs about a refill, not 0.5 s.
    assert s.wait_for(0.1, uses_preload=True) == 1.2  # 1.1 s left beats a cold start
    assert s.wait_for(0.0, uses_preload=True) is None  # just begun: no sooner than cold
    assert s.wait_for(None, uses_preload=True) is None
    s.refill_seconds, s.cold_seconds = 0.3, 0.8  # cold slower than a refill: its own bound
    assert s.wait_for(0.0, uses_preload=True) == 0.8


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


def test_a_busy_machine_makes_no_deferred_imports():
    s, _ = sizer(busy=0.8)
    assert not s.defers(ahead=6)  # no arrivals, time enough: but the cores are busy
    s, _ = sizer(busy=None)
    assert s.defers(ahead=0)  # load unknown (not Linux): as on an idle machine


def test_the_cpu_meter_reads_the_busy_share_of_the_last_seconds():
    clock = Clock()
    readings = iter([(100.0, 200.0), (100.2, 202.0), (101.0, 204.0), (104.0, 208.0)])
    meter = CpuMeter(times=lambda: next(readings), clock=clock)
    assert meter() is None  # one reading: nothing to compare yet
    clock.now += 1.0
    assert abs(meter() - 0.1) < 1e-9  # 0.2 of 2 core-seconds busy
    clock.now += 1.0
    assert abs(meter() - 0.25) < 1e-9  # 1 of 4 since the first reading
    clock.now += 30.0  # the first readings fell out of the window; the newest old one is the base
    assert abs(meter() - 0.75) < 1e-9  # 3 of 4 since (101, 204)
    assert CpuMeter(times=lambda: None)() is None  # not Linux


def test_a_load_that_just_began_counts_at_once():
    clock = Clock()
    busy, total = [100.0], [200.0]

    def times():
        return busy[0], total[0]

    meter = CpuMeter(times=times, clock=clock)
    for _ in range(20):  # 20 idle seconds, read once a second
        meter()
        clock.now += 1.0
        total[0] += 2.0
    assert meter() == 0.0
    for _ in range(3):  # then both cores busy for 3 s
        clock.now += 1.0
        busy[0] += 2.0
        total[0] += 2.0
        meter()
    # 6 of 40 core-seconds over 20 s, but 6 of 10 over the last 5 s: the busier one counts
    assert abs(meter() - 0.6) < 1e-9
