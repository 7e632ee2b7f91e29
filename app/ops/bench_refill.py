"""The bench's refill breakdown (`bench --refill`): where one warm container's time and CPU go.

A refill is: claim a code uid (one list of the engine's containers), create the container, attach
to its warden, start it, exec the runner as the code's uid, then wait until the runner has started
its interpreter, imported its preloads and forked the code's child, and the warden is ready. Each
round trip is timed on its own, and the preloads are measured by difference: the same refill with
no preload, with numpy, with numpy and pandas, and with the policy's whole list, interleaved, so a
busy neighbour weighs on every variant alike. The CPU figure is the container's cgroup usage
(the engine's stats) once it is ready: everything the refill cost inside the container. With a
local engine, `engine_cpu` is what the machine spent meanwhile outside that container and this
process (dockerd, containerd, the shim, runc and the kernel's work for them), from /proc/stat:
every other process's work is in it too, so it is measured on an otherwise idle machine.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from app.ops.bench_figures import local_engine, machine_busy_seconds, percentile
from app.sandbox.starter import ContainerStarter, await_ready
from app.sandbox.warden import Warden
from app.wiring import sandbox_policy

if TYPE_CHECKING:
    from app.ops.bench import Benchmark
    from app.sandbox.engine import ExecStream

PHASES = ("claim", "create", "attach", "start", "runner_exec", "ready", "remove")


def variants(preload: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Each preload list measured: none, then growing prefixes up to the policy's own."""
    found: dict[str, tuple[str, ...]] = {"none": ()}
    for n in range(1, len(preload) + 1):
        found["+".join(preload[:n])] = preload[:n]
    return found


def refill_breakdown(bench: Benchmark, runtime: str, repetitions: int) -> dict:
    """Blocking (on an engine thread): the phases of `repetitions` refills of each variant."""
    policy = sandbox_policy(bench.settings.model_copy(update={"sandbox_runtime": runtime}))
    starter = ContainerStarter(policy, bench.engine)
    measured = variants(policy.warm_preload + policy.warm_defer)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in measured}
    pool_dir = bench.work / "refill-input"
    pool_dir.mkdir(exist_ok=True)
    pool_dir.chmod(0o755)
    for rep in range(repetitions + 1):  # the first round warms the engine's caches
        for name, preload in measured.items():
            took = _one_refill(bench, starter, pool_dir, preload)
            if rep:
                for phase, seconds in took.items():
                    samples[name].setdefault(phase, []).append(seconds * 1000)
    rows = []
    for name, phases in samples.items():
        row: dict[str, object] = {"preload": name}
        for phase, values in phases.items():
            row[f"{phase}_ms"] = round(percentile(values, 50) or 0.0, 1)
        rows.append(row)
    return {"runtime": runtime, "repetitions": repetitions, "variants": rows}


def _one_refill(
    bench: Benchmark, starter: ContainerStarter, input_dir, preload: tuple[str, ...]
) -> dict[str, float]:
    engine = bench.engine
    policy = starter.policy
    took: dict[str, float] = {}
    streams: dict[str, ExecStream] = {}

    def create(uid: int) -> str:
        args = policy.container_args(
            run_id="bench-refill", user_id="", code_uid=uid, input_dir=input_dir
        )
        container_id, stream, phases = engine.timed_create_attach_start(args)
        streams[container_id] = stream
        took.update(phases)
        return container_id

    def discard(container_id: str) -> None:
        streams.pop(container_id).close()
        engine.remove(container_id)

    busy_before = machine_busy_seconds() if local_engine() else None
    own_before = sum(os.times()[:2])
    started = time.perf_counter()
    container_id, uid = starter.uids.claim(create, discard)
    took["claim"] = time.perf_counter() - started - sum(took.values())
    warden = Warden(streams[container_id])
    stream = None
    try:
        started = time.perf_counter()
        stream = engine.exec_attach(container_id, **policy.runner_exec(uid, preload))
        took["runner_exec"] = time.perf_counter() - started
        started = time.perf_counter()
        await_ready(stream)
        warden.await_ready(time.monotonic() + 60)
        took["ready"] = time.perf_counter() - started
        cpu = engine.cpu_seconds(container_id)
        busy_after = machine_busy_seconds() if busy_before is not None else None
        if cpu is not None:
            took["cpu"] = cpu
            if busy_before is not None and busy_after is not None:
                own = sum(os.times()[:2]) - own_before
                took["engine_cpu"] = max(0.0, busy_after[0] - busy_before[0] - cpu - own)
    finally:
        if stream is not None:
            stream.close()
        warden.close()
        started = time.perf_counter()
        engine.remove(container_id)
        took["remove"] = time.perf_counter() - started
    return took
