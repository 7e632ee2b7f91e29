"""The Docker engine going away mid-run: a clear sandbox_error, never a traceback, nothing left.

Most cases put the real engine behind EngineProxy (tests/fakes/engine_proxy.py) and cut it: to
the process on the other side that is an engine restart (every connection drops, nothing
answers), while the engine itself is never touched.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import docker
import pytest

from app.sandbox import RunRequest, RunStatus
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.status import ENGINE_RESTARTED
from app.wiring import build_runner
from tests.fakes.engine_proxy import EngineProxy, proxied_environment
from tests.fakes.openai_server import last_tool_result, reply, tool_call
from tests.integration.test_controller_faults import SPIN, _containers, _running
from tests.integration.test_sandboxd import _eventually

pytestmark = pytest.mark.docker


@pytest.fixture
def proxy(tmp_path):
    made = EngineProxy(tmp_path / "engine.sock").start()
    yield made
    made.close()


def proxied_engine(proxy: EngineProxy) -> DockerEngine:
    return DockerEngine(lambda: docker.DockerClient(base_url=proxy.url, timeout=30))


async def test_run_json_prints_a_sandbox_error_when_the_engine_goes_mid_run(
    settings, engine, proxy, tmp_path
):
    user = f"engine-{uuid.uuid4().hex[:6]}"
    (tmp_path / "spin.py").write_text(SPIN)
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "spin.py", "--json", "--user", user],
        env={
            **proxied_environment(proxy),
            "DATA_DIR": str(settings.data_dir),
            "SANDBOX_INSTANCE": settings.sandbox_instance,
            "CODE_EXECUTION_TIMEOUT": "120",
            "SANDBOX_WARM_POOL_SIZE": "0",
            "LOG_FORMAT": "json",
        },
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert await _eventually(lambda: _containers(engine, settings.sandbox_instance, user), 60)
    (container_id,) = _containers(engine, settings.sandbox_instance, user)
    assert await _eventually(lambda: _running(engine, container_id), 30)
    await asyncio.sleep(2)
    proxy.cut()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    result = json.loads(out)
    assert result["status"] == "sandbox_error"
    assert result["message"] == ENGINE_RESTARTED
    assert "Traceback" not in err
    assert err.count("sandbox removal failed; reaped later") == 1
    # Its controller's attach dropped with the engine: the sandbox ended by itself.
    assert await _eventually(lambda: not _running(engine, container_id), 60)
    runner = build_runner(settings, engine)
    assert await runner.reap_leftovers() >= 1
    assert _containers(engine, settings.sandbox_instance, user) == []


async def test_the_warm_pool_sees_the_engine_come_back_and_refills(settings, engine, proxy):
    through = proxied_engine(proxy)
    runner = build_runner(settings.model_copy(update={"sandbox_warm_pool_size": 1}), through)
    await runner.start()
    try:
        assert await runner.pool.wait_ready(), "the warm pool did not fill"
        (warm,) = runner.pool.idle_ids()
        proxy.cut()
        down = await runner.status()
        assert "cannot reach the Docker engine" in down.engine_problem
        result = await runner.run(_request(settings, "print(1)"))
        assert result.status is RunStatus.SANDBOX_ERROR
        assert result.message.startswith("sandbox unavailable")
        assert await _eventually(lambda: not _running(engine, warm), 60)  # ended by itself
        proxy.restore()
        assert await runner.pool.wait_ready(timeout=90), "the pool did not refill"
        assert runner.pool.idle_ids() != {warm}
        assert (await runner.status()).engine_problem == ""
        again = await runner.run(_request(settings, "print('back')"))
        assert again.status is RunStatus.OK and again.stdout == "back\n"
        # What the outage left stopped was reaped once the engine answered again.
        mine = runner.policy.ownership_filter()
        assert await _eventually(lambda: warm not in engine.list_containers(mine), 30)
    finally:
        await runner.close()
        through.close()


def _request(settings, code: str) -> RunRequest:
    return RunRequest(
        code=code,
        user_id=uuid.uuid4().hex[:6],
        output_dir=settings.data_dir / "runs" / uuid.uuid4().hex[:8],
    )


async def test_the_chat_goes_on_while_the_engine_is_down(
    settings, proxy, fake_openai, make_chat, data_dir
):
    through = proxied_engine(proxy)
    runner = build_runner(settings, through)
    await runner.start()
    service = make_chat(runner, data_dir)
    try:
        proxy.cut()

        def explain(body):
            result = last_tool_result(body)
            return reply(f"{result['status']}: {result['message']}")

        fake_openai.add(tool_call("print(1)"), explain, reply("Hello!"))
        answer = await service.turn("engine-down", "c1", "run something")
        assert answer.error == ""
        assert answer.text == "sandbox_error: the sandbox is unavailable right now; try again later"
        plain = await service.turn("engine-down", "c1", "just talk")
        assert plain.text == "Hello!"
    finally:
        await runner.close()
        through.close()
