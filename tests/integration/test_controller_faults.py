"""Each sandbox keeps its own deadline: a controller that dies or stalls mid-run leaves no code
running. Real processes (`python -m app run`, `python -m app sandboxd`), real containers, and
no reaper between the fault and the check: the sandbox ends by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from app.config import Settings
from app.sandbox import RunRequest
from app.sandbox.names import USER_LABEL
from app.sandboxd import wire
from app.wiring import build_runner, sandbox_policy
from tests.integration.test_sandboxd import ServiceProcess, _eventually

pytestmark = pytest.mark.docker

# Busy, deaf to SIGTERM and SIGHUP, and silent: nothing but a kill ends it.
SPIN = (
    "import signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "open('started.txt', 'w').write('x')\n"
    "while True:\n"
    "    pass\n"
)
# Far more than any check below waits: a container that ends was ended, not timed out.
LONG_TIMEOUT = 300


def _containers(engine, instance: str, user: str) -> list[str]:
    found = sandbox_policy(Settings(_env_file=None, sandbox_instance=instance)).ownership_filter()
    found["label"].append(f"{USER_LABEL}={user}")
    return engine.list_containers(found)


def _running(engine, container_id: str) -> bool:
    return engine.is_running(container_id)[0]


def _run_command(settings, tmp_path, user: str, timeout: float, **env) -> subprocess.Popen:
    (tmp_path / "spin.py").write_text(SPIN)
    return subprocess.Popen(
        [sys.executable, "-m", "app", "run", "spin.py", "--json", "--user", user]
        + ["--timeout", str(timeout)],
        env={
            **os.environ,
            "DATA_DIR": str(settings.data_dir),
            "SANDBOX_INSTANCE": settings.sandbox_instance,
            "CODE_EXECUTION_TIMEOUT": str(LONG_TIMEOUT),
            "SANDBOX_WARM_POOL_SIZE": "0",
            **env,
        },
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _started_container(engine, settings, user: str, process: subprocess.Popen) -> str:
    assert await _eventually(lambda: _containers(engine, settings.sandbox_instance, user), 60), (
        process.poll(),
        process.stderr.read() if process.poll() is not None else "",
    )
    (container_id,) = _containers(engine, settings.sandbox_instance, user)
    assert await _eventually(lambda: _running(engine, container_id), 30)
    await asyncio.sleep(2)  # the code is handed over and spinning
    return container_id


async def test_a_killed_run_command_leaves_no_code_running(settings, engine, tmp_path):
    user = f"kill-{uuid.uuid4().hex[:6]}"
    process = _run_command(settings, tmp_path, user, LONG_TIMEOUT)
    container_id = await _started_container(engine, settings, user, process)
    killed_at = time.monotonic()
    process.send_signal(signal.SIGKILL)  # as a crashed or OOM-killed bot would be
    process.wait(30)
    ended = await _eventually(lambda: not _running(engine, container_id), 60)
    assert ended, "the sandbox went on running after its controller died"
    assert time.monotonic() - killed_at < LONG_TIMEOUT  # ended, not timed out
    # Still there (stopped) until a reaper removes it: the reaper's part is removal only.
    assert engine.state(container_id).get("Status") == "exited"
    runner = build_runner(settings, engine)
    assert await runner.reap_leftovers() >= 1
    assert container_id not in _containers(engine, settings.sandbox_instance, user)


async def test_a_stalled_controller_still_gets_its_timeout(settings, engine, tmp_path):
    """The host process frozen mid-run (its attach stays open, it cannot act): the sandbox's
    own deadline ends the code shortly after the timeout; resumed, the run says timeout."""
    user = f"stall-{uuid.uuid4().hex[:6]}"
    process = _run_command(settings, tmp_path, user, 3)
    container_id = await _started_container(engine, settings, user, process)
    process.send_signal(signal.SIGSTOP)
    try:
        ended = await _eventually(lambda: not _running(engine, container_id), 60)
        state = engine.state(container_id)
    finally:
        process.send_signal(signal.SIGCONT)
    assert ended, "the code outlived its timeout while its controller was stopped"
    assert state.get("ExitCode") == 124  # the warden's deadline, not the host's kill
    out, err = process.communicate(timeout=120)
    result = json.loads(out)
    assert result["status"] == "timeout", (result, err)
    assert "longer than the 3 s limit" in result["message"]
    assert _containers(engine, settings.sandbox_instance, user) == []  # the run removed it


async def test_a_killed_sandbox_service_leaves_no_code_and_no_warm_container_running(
    tmp_path, engine
):
    service = ServiceProcess(tmp_path / "svc", warm=2).start()
    client = service.client()
    user = f"svc-{uuid.uuid4().hex[:6]}"
    try:
        run = RunRequest(code=SPIN, user_id=user, output_dir=tmp_path / "out", timeout=30)
        task = asyncio.ensure_future(client.run(run))
        # A warm container takes the run (its labels are the pool's), another waits idle.
        assert await _eventually(lambda: (service.get(wire.STATS) or {}).get("running") == 1, 60)
        await asyncio.sleep(2)
        every = service.containers(engine)
        assert len(every) >= 2, "a running container and a warm one were expected"
        service.kill()
        result = await asyncio.wait_for(task, 60)
        assert result.status.value == "sandbox_error"
        for container_id in every:
            assert await _eventually(lambda c=container_id: not _running(engine, c), 60), (
                container_id
            )
        assert all(engine.state(c).get("Status") == "exited" for c in every)
    finally:
        await client.close()
        service.stop()
        for container_id in service.containers(engine):
            engine.remove(container_id)
