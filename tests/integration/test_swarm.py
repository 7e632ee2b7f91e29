"""sandboxd as a Docker Swarm global service (stack.yaml) on a one-node swarm, reached over TCP with
a token through the routing mesh, running real containers.

The routing mesh needs IPVS in the kernel; where the kernel has none (dockerd then logs "Native
loadbalancing will not work"), the stack is deployed with its port in host mode instead, and the
test says so in a warning: everything else (the global task, TCP with a token, the runs) is the
same.

The engine is shared: the swarm exists only for the seconds this test needs and is always left
again (`docker swarm leave --force`, then the gateway bridge it made is removed), also when the
test fails. The app image is built before the swarm starts. An engine that is already in a swarm
is not ours to leave: the test is then skipped with that reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import time
import uuid
import warnings
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.config import Settings
from app.ops.image import app_builder
from app.sandbox import InputFile, RunRequest, RunStatus, SandboxUnavailable
from app.sandbox.docker_engine import DockerEngine
from app.wiring import Components

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
STACK_LABEL = "com.docker.stack.namespace"


def docker(*args: str, env: dict | None = None, check: bool = True, timeout: float = 120):
    done = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return done


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_image(engine):
    """The app image (bot and sandboxd), built or reused before any swarm exists."""
    builder = app_builder(DockerEngine(timeout=900), "codeinterp-bot:test", lambda _line: None)
    try:
        ca = Path("/etc/ssl/certs/ca-certificates.crt")
        return builder.build(
            base_image=Settings(_env_file=None).sandbox_base_image,
            extra_ca=[ca] if ca.is_file() else [],
        )
    finally:
        builder.engine.close()


def publish_mode() -> str:
    """ingress (the routing mesh) when the kernel has IPVS, else host."""
    if Path("/proc/net/ip_vs").exists():
        return "ingress"
    warnings.warn(
        "this kernel has no IPVS, so Swarm's routing mesh cannot work here: the stack is "
        "tested with its port in host mode (SANDBOX_PUBLISH_MODE=host)",
        stacklevel=2,
    )
    return "host"


def _swarm_state() -> str:
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


async def test_a_global_sandboxd_serves_runs_over_tcp_with_a_token(
    app_image, settings, engine, tmp_path
):
    if _swarm_state() != "inactive":
        pytest.skip("the engine is already part of a swarm: this test would have to leave it")
    stack = f"ci-{uuid.uuid4().hex[:6]}"
    port = free_port()
    token = secrets.token_hex(16)
    instance = f"test-swarm-{uuid.uuid4().hex[:6]}"
    env = {
        "APP_IMAGE": app_image,
        "SANDBOX_IMAGE": settings.sandbox_image,
        "SANDBOX_SERVICE_TOKEN": token,
        "SANDBOX_SERVICE_PORT": str(port),
        "SANDBOX_PUBLISH_MODE": publish_mode(),
        "SANDBOX_INSTANCE": instance,
        "SANDBOX_WARM_POOL_SIZE": "1",
        "SANDBOX_MEMORY": "512m",
        "CODE_EXECUTION_TIMEOUT": "30",
    }
    client_settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "bot",
        sandbox_service_url=f"http://127.0.0.1:{port}",
        sandbox_service_token=token,
    )
    parts = Components(client_settings)
    folder = tmp_path / "bot" / "users" / "u1"
    folder.mkdir(parents=True)
    (folder / "f1.csv").write_text("a,b\n1,2\n3,4\n")
    request = RunRequest(
        code="df = load_file('f1')\nopen('sum.txt', 'w').write(str(df['b'].sum()))\nprint(len(df))",
        user_id="u1",
        output_dir=tmp_path / "out",
        input_dir=folder,
        files=(InputFile("f1", "data.csv", "f1.csv", 12, "csv", "tabular"),),
    )
    try:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        docker("stack", "deploy", "--resolve-image", "never", "-c", "stack.yaml", stack, env=env)
        health = await _wait_healthy(parts, stack, deadline=time.monotonic() + 180)
        assert health["instance"] == instance and health["image"] == settings.sandbox_image
        result = await parts.sandbox.run(request)
        assert result.status is RunStatus.OK, result.message + result.stderr
        assert result.stdout == "2\n"
        assert [(f.name, f.path.read_text()) for f in result.files] == [("sum.txt", "6")]
        intruder = Components(
            client_settings.model_copy(update={"sandbox_service_token": SecretStr("x" * 20)})
        )
        refused = await intruder.sandbox.run(request)
        await intruder.close()
        assert refused.status is RunStatus.SANDBOX_ERROR
        assert "SANDBOX_SERVICE_TOKEN" in refused.message
    finally:
        await parts.close()
        docker("stack", "rm", stack, check=False)
        _wait_gone(f"label={STACK_LABEL}={stack}")
        docker("swarm", "leave", "--force", check=False)
        docker("network", "rm", "docker_gwbridge", check=False)
        docker("volume", "rm", f"{stack}_sandbox-data", check=False)
        for container_id in engine.list_containers(
            {"label": [f"io.codeinterp.instance={instance}"]}
        ):
            engine.remove(container_id)
    assert _swarm_state() == "inactive"


async def _wait_healthy(parts: Components, stack: str, deadline: float) -> dict:
    client = parts.sandbox
    last = ""
    while time.monotonic() < deadline:
        try:
            health = await client.health()
            if (await client.status()).warm_ready >= 1:
                return health
        except SandboxUnavailable as exc:
            last = str(exc)
        failed = docker(
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=shutdown",
            f"{stack}_sandbox",
            check=False,
        ).stdout.split()
        if len(failed) >= 2:
            break  # it keeps failing: say why instead of waiting on
        await asyncio.sleep(1)
    logs = docker("service", "logs", "--tail", "20", f"{stack}_sandbox", check=False)
    raise AssertionError(f"the stack's sandboxd did not answer: {last}\n{logs.stdout}{logs.stderr}")


def _wait_gone(filter_: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not docker("ps", "-aq", "--filter", filter_, check=False).stdout.strip():
            return
        time.sleep(1)
