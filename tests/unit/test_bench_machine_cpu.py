"""What `bench --load` says the machine's cores did: stolen time is not a run's cost."""

import os

from app.ops.bench_figures import machine_busy_seconds
from app.ops.bench_scenario import machine_cpu
from app.sandbox.pool_sizing import cpu_fields, cpu_times


def test_time_a_hypervisor_gave_to_other_guests_is_not_counted_as_the_runs_cost():
    cores = os.cpu_count() or 1
    seconds = 10.0
    # 100 runs; the cores did 8 s of work per core and lost 1 s per core to other guests.
    figures = machine_cpu((50.0, 5.0), (50.0 + 8 * cores, 5.0 + cores), 2.0, seconds, 100)
    assert figures is not None
    assert figures["busy_fraction"] == 0.8
    assert figures["steal_fraction"] == 0.1
    assert figures["per_run_ms"] == round(8 * cores / 100 * 1000, 1)  # the work alone
    assert figures["bench_per_run_ms"] == 20.0


def test_no_figures_without_a_reading_of_the_machine():
    assert machine_cpu(None, (1.0, 0.0), 1.0, 10.0, 5) is None
    assert machine_cpu((1.0, 0.0), (2.0, 0.0), 1.0, 0.0, 5) is None
    figures = machine_cpu((1.0, 0.0), (2.0, 0.0), 1.0, 10.0, 0)
    assert figures is not None and figures["per_run_ms"] is None


def test_the_machine_reading_splits_proc_stat_into_work_and_steal():
    fields = cpu_fields()
    busy = machine_busy_seconds()
    times = cpu_times()
    assert fields is not None and busy is not None and times is not None  # Linux
    idle = fields[3]
    work, stolen = busy
    assert stolen >= 0 and work > 0
    # The pool counts stolen time as busy (no core to start on); the bench keeps it apart.
    assert abs(times[0] - (work + stolen)) < 1.0  # read a moment apart
    assert times[1] >= times[0] + idle - 1.0
