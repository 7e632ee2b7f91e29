"""The real client against `python -m app sandboxd` over a real Unix socket, real containers.

Each service here is its own process, as in compose: the test process talks to it only through
the socket (and looks at the engine only to see which containers exist).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from app.chat import Upload
from app.config import Settings
from app.sandbox import InputFile, RunRequest, RunStatus
from app.sandbox.names import POOL_LABEL
from app.sandbox.policy import USER_LABEL
from app.sandboxd import SandboxClient, ServiceAddress, wire
from app.sandboxd.client import UNAVAILABLE
from app.wiring import Components, sandbox_policy
from tests.fakes.openai_server import last_tool_result, reply, tool_call

pytestmark = pytest.mark.docker

PLOT = (
    "import matplotlib.pyplot as plt\n"
    "df = load_file('f1')\n"
    "plt.plot(df['b']); plt.savefig('plot.png')\n"
    "open('summary.txt', 'w').write(str(df['b'].sum()))\n"
    "print('rows', len(df))\n"
)


class ServiceProcess:
    """`python -m app sandboxd` in its own process, on its own socket, instance and DATA_DIR."""

    def __init__(self, root: Path, *, warm: int, instance: str | None = None) -> None:
        self.root = root
        self.socket = root / "sandboxd.sock"
        self.instance = instance or f"test-sd-{uuid.uuid4().hex[:8]}"
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("SANDBOX_SERVICE", "SANDBOXD"))
            },
            "DATA_DIR": str(root / "data"),
            "SANDBOX_INSTANCE": self.instance,
            "SANDBOX_WARM_POOL_SIZE": str(warm),
            "SANDBOX_MEMORY": "512m",
            "CODE_EXECUTION_TIMEOUT": "30",
            "SANDBOXD_LISTEN": f"unix://{self.socket}",
            "LOG_FORMAT": "json",
        }
        self.warm = warm
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "sandboxd.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "sandboxd"],
            env=self.env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_tail()
            stats = self.get(wire.STATS)
            if stats is not None and stats["warm_ready"] >= self.warm:
                return self
            time.sleep(0.2)
        raise AssertionError(f"sandboxd did not become ready:\n{self.log_tail()}")

    def get(self, path: str) -> dict | None:
        """A plain synchronous GET over the socket (for readiness), None while nothing answers."""
        connection = _UnixHTTP(str(self.socket))
        try:
            connection.request("GET", path)
            return json.loads(connection.getresponse().read())
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            connection.close()

    def client(self) -> SandboxClient:
        settings = Settings(_env_file=None, **{"data_dir": self.root / "client"})
        return Components(settings).sandbox_client(ServiceAddress.parse(f"unix://{self.socket}"))

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_tail(self) -> str:
        path = self.root / "sandboxd.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def containers(self, engine, **labels) -> list[str]:
        policy = sandbox_policy(Settings(_env_file=None, sandbox_instance=self.instance))
        found = policy.ownership_filter()
        found["label"] += [f"{k}={v}" for k, v in labels.items()]
        return engine.list_containers(found)


def _pool_containers(service, engine) -> list[str]:
    policy = sandbox_policy(Settings(_env_file=None, sandbox_instance=service.instance))
    found = policy.ownership_filter()
    found["label"].append(POOL_LABEL)
    return engine.list_containers(found)


def _settled(service, engine) -> bool:
    """The pool full and nothing being started: every container of the service is idle."""
    stats = service.get(wire.STATS) or {}
    return (
        stats.get("warm_ready") == service.warm and len(service.containers(engine)) == service.warm
    )


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("sandboxd", timeout=5)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(self.socket_path)


@pytest.fixture(scope="module", params=["cold", "warm"])
def service(request, tmp_path_factory, engine):
    made = ServiceProcess(
        tmp_path_factory.mktemp(f"sd-{request.param}"), warm=int(request.param == "warm")
    )
    made.start()
    yield made
    made.stop()
    assert made.process.returncode == 0, made.log_tail()
    assert made.containers(engine) == [], "the service left containers behind"


@pytest.fixture
async def client(service):
    made = service.client()
    await made.start()
    yield made
    await made.close()


def user_files(tmp_path, user: str, rows: str = "a,b\n1,4\n2,9\n3,1\n") -> tuple[Path, tuple]:
    """A user's folder as the bot's file store has it: <file id><extension>."""
    folder = tmp_path / "users" / user
    folder.mkdir(parents=True)
    (folder / "f1.csv").write_text(rows)
    return folder, (InputFile("f1", "data.csv", "f1.csv", len(rows), "csv", "tabular"),)


async def test_a_run_with_files_and_outputs_goes_through_the_service(client, tmp_path):
    folder, files = user_files(tmp_path, "u1")
    result = await client.run(
        RunRequest(
            code=PLOT,
            user_id="u1",
            output_dir=tmp_path / "out",
            input_dir=folder,
            files=files,
            session_id="channel-42",
        )
    )
    assert result.status is RunStatus.OK, result.message + result.stderr
    assert result.stdout == "rows 3\n"
    outputs = {f.name: f.path for f in result.files}
    assert set(outputs) == {"plot.png", "summary.txt"}
    assert outputs["plot.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outputs["summary.txt"].read_text() == "14"
    assert all(path.parent == tmp_path / "out" for path in outputs.values())


async def test_a_run_sees_only_the_files_its_own_request_carried(client, tmp_path):
    folder, files = user_files(tmp_path, "owner")
    await client.run(
        RunRequest(
            code="print(1)",
            user_id="owner",
            output_dir=tmp_path / "o",
            input_dir=folder,
            files=files,
        )
    )
    snoop = await client.run(
        RunRequest(
            code=(
                "import os, subprocess\n"
                "folder = os.environ['INPUT_DIR']\n"
                "print(sorted(os.listdir(folder)) if os.path.isdir(folder) else [])\n"
                "print(subprocess.run(['find', '/', '-name', 'f1.csv'], capture_output=True, "
                "text=True).stdout.strip() or 'none')\n"
            ),
            user_id="other",
            output_dir=tmp_path / "s",
        )
    )
    assert snoop.status is RunStatus.OK, snoop.stderr
    assert snoop.stdout.splitlines() == ["[]", "none"]  # no trace of the other user's file


async def test_a_timeout_keeps_the_output_so_far(client, tmp_path):
    result = await client.run(
        RunRequest(
            code="print('started', flush=True)\nwhile True: pass\n",
            user_id="t1",
            output_dir=tmp_path / "out",
            timeout=1.5,
        )
    )
    assert result.status is RunStatus.TIMEOUT and result.stdout == "started\n"
    assert "1.5 s limit" in result.message


@pytest.mark.parametrize(
    ("fields", "extra", "status", "message"),
    [
        ({"code": 7}, b"", 400, "code must be a string"),
        ({"code": "#" * (1024**2 + 1)}, b"", 413, "over the limit"),
        ({"user_id": "../u1"}, b"", 400, "user_id must be"),
        ({"timeout": 31}, b"", 400, "over this service's limit of 30 s"),
        # Another user's file cannot be named: a file is only what the request itself carries.
        (
            {
                "user_id": "intruder",
                "files": [
                    {
                        "file_id": "f1",
                        "name": "data.csv",
                        "filename": "f1.csv",
                        "size": 17,
                        "type": "csv",
                        "category": "tabular",
                    }
                ],
            },
            b"",
            400,
            "the body ended before the 17 bytes of f1",
        ),
        (
            {
                "files": [
                    {
                        "file_id": "f1",
                        "name": "x",
                        "filename": "../../../etc/passwd",
                        "size": 1,
                        "type": "",
                        "category": "",
                    }
                ]
            },
            b"x",
            400,
            "must be the file id and its extension",
        ),
        ({"image": "alpine", "privileged": True}, b"", 400, "container settings"),
    ],
)
async def test_bad_requests_are_refused_clearly_and_start_nothing(
    service, engine, fields, extra, status, message
):
    # An earlier run may have taken the warm container: wait out its refill, so that any
    # container appearing below is one this request started.
    assert await _eventually(lambda: _settled(service, engine), 120)
    before = set(service.containers(engine))
    body = json.dumps({"code": "print(1)", "user_id": "u1", **fields}).encode() + b"\n" + extra
    connector = aiohttp.UnixConnector(path=str(service.socket))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            "http://sandboxd" + wire.RUNS,
            data=body,
            headers={"Content-Type": wire.RUN_CONTENT_TYPE},
        ) as response,
    ):
        answer = await response.json()
    assert response.status == status and message in answer["error"]
    assert set(service.containers(engine)) <= before  # nothing new started


async def test_a_client_that_disconnects_mid_run_gets_its_container_removed(
    service, client, engine, tmp_path
):
    assert await _eventually(lambda: _settled(service, engine), 120)
    idle = set(service.containers(engine))
    task = asyncio.ensure_future(
        client.run(
            RunRequest(code="import time; time.sleep(60)", user_id="gone", output_dir=tmp_path)
        )
    )
    try:
        assert await _eventually(lambda: (service.get(wire.STATS) or {}).get("running") == 1)
        await asyncio.sleep(1.5)  # the code is running by now
        # A cold run's own container (the pool may be refilling meanwhile: its are not that).
        started = set(service.containers(engine)) - idle - set(_pool_containers(service, engine))
        assert started or service.warm, "a cold run should have a container of its own"
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if started:
        assert await _eventually(lambda: not started & set(service.containers(engine)), 30)
    else:  # the warm container the run took from the pool is removed
        assert await _eventually(lambda: idle - set(service.containers(engine)), 30)
    assert await _eventually(lambda: (service.get(wire.STATS) or {}).get("running") == 0)


async def test_the_chat_stores_what_a_run_through_the_service_made(
    fake_openai, make_chat, client, tmp_path
):
    def answer(body):
        result = last_tool_result(body)
        return reply(f"{result['status']}: {result['stdout'].strip()}")

    chat = make_chat(client, tmp_path)
    fake_openai.add(tool_call(PLOT.replace("'f1'", "'data.csv'")), answer)
    answer_ = await chat.turn("chat-u", "c1", "plot b", [Upload("data.csv", b"a,b\n1,4\n2,9\n")])
    assert answer_.text == "ok: rows 2"
    assert sorted(f.name for f in answer_.files) == ["plot.png", "summary.txt"]
    stored = {f.name for f in await chat.store.list("chat-u")}
    assert stored == {"data.csv", "plot.png", "summary.txt"}


async def test_a_restart_mid_run_is_a_sandbox_error_and_the_new_service_reaps(tmp_path, engine):
    first = ServiceProcess(tmp_path / "restart", warm=0).start()
    second = None
    client = first.client()
    user = f"restart-{uuid.uuid4().hex[:6]}"
    try:
        task = asyncio.ensure_future(
            client.run(
                RunRequest(
                    code="import time; time.sleep(120)", user_id=user, output_dir=tmp_path / "out"
                )
            )
        )
        assert await _eventually(lambda: first.containers(engine, **{USER_LABEL: user}))
        await asyncio.sleep(1)
        first.kill()  # no chance to remove anything
        result = await asyncio.wait_for(task, 60)
        assert result.status is RunStatus.SANDBOX_ERROR
        assert result.message.startswith(UNAVAILABLE)
        orphaned = first.containers(engine, **{USER_LABEL: user})
        assert orphaned, "the killed service's container should still be there"
        second = ServiceProcess(first.root, warm=0, instance=first.instance).start()
        assert not set(orphaned) & set(second.containers(engine))  # reaped at start
        again = await client.run(
            RunRequest(code="print('back')", user_id=user, output_dir=tmp_path)
        )
        assert again.status is RunStatus.OK and again.stdout == "back\n"
    finally:
        await client.close()
        for made in (first, second):
            if made is not None:
                made.stop()
        for container_id in first.containers(engine):
            engine.remove(container_id)


async def test_audit_through_the_service_reports_the_same_policy(service, tmp_path):
    def audit(**env) -> dict:
        return json.loads(_cli(service, tmp_path, "audit", "--json", **env).stdout)

    report = audit()
    assert report["ok"], report
    assert report["service"]["policy"]["network"] == "none"
    assert report["service"]["policy"]["memory"] == f"{512 * 1024**2} bytes, no swap"
    (check,) = [c for c in report["checks"] if "sandbox service" in c["name"]]
    assert check["ok"]
    differing = audit(SANDBOX_MEMORY="1g")
    (check,) = [c for c in differing["checks"] if "sandbox service" in c["name"]]
    assert not differing["ok"] and not check["ok"] and "memory" in check["detail"]


async def _eventually(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.2)
    return bool(condition())


def _cli(service, tmp_path, *args, **env):
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env={
            **service.env,
            "DATA_DIR": str(tmp_path / "cli-data"),
            "SANDBOX_SERVICE_URL": f"unix://{service.socket}",
            "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",  # as the bot in compose
            **env,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_run_and_doctor_work_through_the_service_without_docker(service, tmp_path):
    data = tmp_path / "sales.csv"
    data.write_text("region,amount\nnorth,3\nsouth,4\n")
    code = tmp_path / "code.py"
    code.write_text(
        "df = load_file('sales.csv')\ndf.to_csv('copy.csv')\nprint(df['amount'].sum())\n"
    )
    done = _cli(
        service, tmp_path, "run", str(code), "--attach", str(data), "--out", "outs", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "ok" and result["stdout"] == "7\n"
    assert (tmp_path / "outs" / "copy.csv").read_text().startswith(",region,amount")
    doctor = _cli(service, tmp_path, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "ok    sandbox service: sandboxd at unix://" in doctor.stdout
    assert "ok    test run" in doctor.stdout and "Docker engine" not in doctor.stdout
    down = _cli(
        service, tmp_path, "run", str(code), SANDBOX_SERVICE_URL=f"unix://{tmp_path}/x.sock"
    )
    assert down.returncode == 1
    assert "the sandbox is unavailable right now: cannot connect" in down.stderr


async def test_session_state_lives_at_the_service_and_reset_goes_through_it(
    client, service, tmp_path
):
    def request(code: str, user: str = "u-state") -> RunRequest:
        out = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
        return RunRequest(code=code, user_id=user, output_dir=out, session_id="chat-9")

    first = await client.run(
        request("import sqlite3\nrows = [1, 2]\ncon = sqlite3.connect(':memory:')")
    )
    assert first.status is RunStatus.OK, first.message + first.stderr
    assert first.state_notes == ("not kept: con (sqlite3.Connection)",)
    second = await client.run(request("print(rows)"))
    assert second.stdout == "[1, 2]\n"
    # the snapshot is the service's: in its DATA_DIR, never among the client's files
    assert list((service.root / "data" / "sessions").glob("*/state"))
    assert not list(tmp_path.rglob("state"))
    other = await client.run(request("print(globals().get('rows'))", user="u-other"))
    assert other.stdout == "None\n"

    assert await client.reset_session("u-state", "chat-9") is True
    after = await client.run(request("print(globals().get('rows'))"))
    assert after.stdout == "None\n"

    environment = await client.describe_environment()
    assert environment.keeps_state and any(
        p.startswith("pandas==") for p in environment.preinstalled
    )
