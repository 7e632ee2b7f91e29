"""The sandbox service's API: the real server over a real Unix socket, the fake engine behind it.

What is checked here is the boundary: every field a client sends is validated with a clear 4xx
before anything is written or started, the token is required where it is set, and the client
turns every way the service can fail into a RunResult. Runs in real containers through the same
server and client are tests/integration/test_sandboxd.py.
"""

from __future__ import annotations

import asyncio
import json
import math

import aiohttp
import pytest

from app.sandbox import InputFile, RunRequest, RunStatus, SandboxPolicy, SandboxRunner, execution
from app.sandbox.summary import policy_summary
from app.sandboxd import RunLimits, SandboxClient, SandboxServer, ServiceAddress, wire
from app.sandboxd.client import UNAVAILABLE
from tests.fakes.engine import FakeEngine, Script

LIMITS = RunLimits(max_code_bytes=4096, max_timeout=5, max_files=3, max_file_bytes=1000)
TOKEN = "t0ken-for-the-unit-tests"


@pytest.fixture(autouse=True)
def quick_liveness(monkeypatch):
    monkeypatch.setattr(execution, "LIVENESS_INTERVAL", 0.02)


class Service:
    """A started SandboxServer on a fake engine, and ways to talk to it."""

    def __init__(self, tmp_path, script: Script | None = None, token: str | None = None, **kw):
        self.engine = FakeEngine(script or Script(stdout=b"hi\n"))
        self.policy = SandboxPolicy(image="img:test", data_dir=tmp_path, max_code_bytes=4096)
        self.runner = SandboxRunner(self.policy, self.engine, max_timeout=5, **kw)
        self.address = ServiceAddress.parse(f"unix://{tmp_path}/sandboxd.sock")
        self.token = token
        self.server = SandboxServer(
            self.runner,
            LIMITS,
            address=self.address,
            staging=tmp_path / "staging",
            token=token,
            heartbeat=0.2,
        )
        self.tmp_path = tmp_path
        self.clients: list[SandboxClient] = []

    def client(self, **overrides) -> SandboxClient:
        options = dict(
            token=self.token,
            max_timeout=5,
            run_deadline=30,
            max_output_files=20,
            max_output_bytes=10**6,
        )
        options.update(overrides)
        client = SandboxClient(self.address, **options)
        self.clients.append(client)
        return client

    def staged(self) -> list:
        folder = self.tmp_path / "staging"
        return list(folder.iterdir()) if folder.is_dir() else []

    async def post(self, body: bytes, content_type=wire.RUN_CONTENT_TYPE, token=None, path=None):
        """A raw request: (status, JSON body or the frames' bytes)."""
        headers = {"Content-Type": content_type}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        connector = aiohttp.UnixConnector(path=str(self.address.socket_path))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(
                self.address.base_url + (path or wire.RUNS), data=body, headers=headers
            ) as response,
        ):
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()


def unix_client(socket_path, **options) -> SandboxClient:
    """A client of whatever answers (or not) on `socket_path`."""
    defaults = dict(
        token=None, max_timeout=5, run_deadline=30, max_output_files=5, max_output_bytes=100
    )
    return SandboxClient(ServiceAddress.parse(f"unix://{socket_path}"), **{**defaults, **options})


async def eventually(condition, seconds: float = 5.0) -> bool:
    """For what the service does after the client has its answer."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return True
        await asyncio.sleep(0.02)
    return condition()


@pytest.fixture
async def service(tmp_path):
    made = Service(tmp_path)
    await made.server.start()
    yield made
    for client in made.clients:
        await client.close()
    await made.server.close()


def run_line(**fields) -> bytes:
    body = {"code": "print(1)", "user_id": "u1", **fields}
    return json.dumps(body).encode() + b"\n"


def entry(file_id="f1", **fields) -> dict:
    item = {
        "file_id": file_id,
        "name": "a.csv",
        "filename": f"{file_id}.csv",
        "size": 4,
        "type": "csv",
        "category": "tabular",
    }
    item.update(fields)
    return item


BAD_FIELDS = [
    ({"code": 5}, 400, "code", "code must be a string"),
    ({"code": "  \n"}, 400, "code", "there is no code to run"),
    ({"code": "#" * 5000}, 413, "code", "over the limit of 4096"),
    ({"user_id": 123}, 400, "user_id", "user_id must be"),
    ({"user_id": "../other"}, 400, "user_id", "user_id must be"),
    ({"user_id": ""}, 400, "user_id", "user_id must be"),
    ({"user_id": "u" * 65}, 400, "user_id", "user_id must be"),
    ({"session_id": ["x"]}, 400, "session_id", "session_id must be"),
    ({"timeout": "10"}, 400, "timeout", "number of seconds"),
    ({"timeout": True}, 400, "timeout", "number of seconds"),
    ({"timeout": math.nan}, 400, "timeout", "number of seconds"),
    ({"timeout": -1}, 400, "timeout", "positive"),
    ({"timeout": 6}, 400, "timeout", "over this service's limit of 5 s"),
    ({"files": "f1"}, 400, "files", "files must be a list"),
    ({"files": [entry(), entry("f2"), entry("f3"), entry("f4")]}, 413, "files", "over the limit"),
    ({"files": [entry(), entry()]}, 400, "files", "listed twice"),
    ({"files": [{**entry(), "path": "/etc"}]}, 400, "files[0]", "must be an object with"),
    ({"files": [entry(file_id="../../etc")]}, 400, "files[0].file_id", "file_id must be"),
    ({"files": [entry(filename="../../etc/passwd")]}, 400, "files[0].filename", "file id and"),
    ({"files": [entry(filename="/etc/passwd")]}, 400, "files[0].filename", "file id and"),
    ({"files": [entry(filename="f1.csv/../../x")]}, 400, "files[0].filename", "file id and"),
    ({"files": [entry(filename="other.csv")]}, 400, "files[0].filename", "file id and"),
    ({"files": [entry(name="../a.csv")]}, 400, "files[0].name", "without '/'"),
    ({"files": [entry(name="a\x00.csv")]}, 400, "files[0].name", "printable"),
    ({"files": [entry(size=-1)]}, 400, "files[0].size", "whole number"),
    ({"files": [entry(size="4")]}, 400, "files[0].size", "whole number"),
    ({"files": [entry(size=1001)]}, 413, "files[0].size", "over the limit of 1000"),
    ({"files": [entry(type="../x")]}, 400, "files[0].type", "type name"),
    ({"image": "alpine"}, 400, "image", "container settings are the service's own"),
    ({"privileged": True}, 400, "privileged", "container settings are the service's own"),
    ({"mounts": ["/:/host"]}, 400, "mounts", "container settings are the service's own"),
]


@pytest.mark.parametrize(("fields", "status", "field", "message"), BAD_FIELDS)
async def test_every_bad_field_is_refused_with_a_clear_4xx_before_any_container(
    service, fields, status, field, message
):
    got, body = await service.post(run_line(**fields))
    assert (got, body.get("field")) == (status, field)
    assert message in body["error"]
    assert service.engine.containers_made == {}
    assert service.staged() == []  # nothing was written


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not json\n", 400, "not a JSON object"),
        (b"[1, 2]\n", 400, "must be a JSON object"),
        (b'{"code": "' + b"#" * 100_000 + b'"}\n', 413, "too large"),
        (run_line(files=[entry()]), 400, "body ended before the 4 bytes of f1"),
        (run_line(files=[entry()]) + b"a,b\n" + b"more", 400, "goes on after"),
        (run_line() + b"unlisted bytes", 400, "goes on after"),
    ],
)
async def test_a_malformed_body_is_refused(service, body, status, message):
    got, answer = await service.post(body)
    assert got == status and message in answer["error"]
    assert service.engine.containers_made == {}
    assert await eventually(lambda: service.staged() == [])  # a partial file goes with its folder


async def test_only_runs_are_posted_and_only_in_the_run_format(service):
    assert (await service.post(run_line(), content_type="application/json"))[0] == 415
    status, body = await service.post(run_line(), path="/v1/nothing")
    assert status == 404 and "error" in body
    status, body = await service.post(b"", path=wire.HEALTH)
    assert status == 405 and "error" in body


async def test_files_arrive_as_bytes_under_names_the_service_checked(service):
    got, frames = await service.post(run_line(files=[entry()], session_id="channel-1") + b"a,b\n")
    assert got == 200
    events = [json.loads(line) for line in frames.splitlines()]
    assert events[-2]["event"] == "result" and events[-1] == {"event": "end"}
    assert events[-2]["result"]["status"] == "ok" and events[-2]["result"]["stdout"] == "hi\n"
    (container,) = service.engine.containers_made.values()
    (mount,) = container.args["mounts"]
    assert mount["ReadOnly"] is True and mount["Source"].startswith(str(service.tmp_path))
    assert await eventually(lambda: service.staged() == [])  # removed once the run is sent


async def test_a_token_is_required_when_set_and_compared_whole(tmp_path):
    made = Service(tmp_path, token=TOKEN)
    await made.server.start()
    try:
        connector = aiohttp.UnixConnector(path=str(made.address.socket_path))
        async with aiohttp.ClientSession(connector=connector) as session:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                async with session.get(made.address.base_url + wire.HEALTH, headers=headers) as r:
                    assert r.status == 401
                    assert "SANDBOX_SERVICE_TOKEN" in (await r.json())["error"]
        assert (await made.client().health())["ok"] is True
        refused = await made.client(token="another-token-of-16").run(
            RunRequest(code="print(1)", user_id="u1", output_dir=tmp_path / "out")
        )
        assert refused.status is RunStatus.SANDBOX_ERROR
        assert "SANDBOX_SERVICE_TOKEN" in refused.message
    finally:
        for client in made.clients:
            await client.close()
        await made.server.close()
    assert made.engine.containers_made == {}


async def test_a_tcp_service_without_a_token_does_not_start(tmp_path):
    from app.sandboxd import ServeError

    with pytest.raises(ServeError, match="SANDBOX_SERVICE_TOKEN"):
        SandboxServer(
            SandboxRunner(SandboxPolicy(image="i"), FakeEngine(), max_timeout=5),
            LIMITS,
            address=ServiceAddress.parse("http://127.0.0.1:9"),
            staging=tmp_path,
        )


async def test_the_socket_is_group_only_and_a_second_service_refuses_it(service, tmp_path):
    from app.sandboxd import ServeError

    assert service.address.socket_path.stat().st_mode & 0o777 == 0o660
    second = Service(tmp_path)
    with pytest.raises(ServeError, match="another sandbox service is listening"):
        await second.server.start()
    await second.server.close()


async def test_the_client_gets_the_result_and_the_output_files(tmp_path):
    made = Service(
        tmp_path, Script(stdout=b"done\n", files={"plot.png": b"\x89PNG", "t.txt": b"x"})
    )
    await made.server.start()
    try:
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "f1.csv").write_text("a,b\n")
        files = (InputFile("f1", "a.csv", "f1.csv", 4, "csv", "tabular"),)
        result = await made.client().run(
            RunRequest(
                code="print(1)",
                user_id="u1",
                output_dir=tmp_path / "out",
                input_dir=tmp_path / "in",
                files=files,
            )
        )
    finally:
        for client in made.clients:
            await client.close()
        await made.server.close()
    assert result.status is RunStatus.OK and result.stdout == "done\n"
    assert {f.name: f.path.read_bytes() for f in result.files} == {
        "plot.png": b"\x89PNG",
        "t.txt": b"x",
    }
    assert all(f.path.parent == tmp_path / "out" for f in result.files)


async def test_a_refused_run_is_an_error_result_the_model_can_read(service, tmp_path):
    client = service.client(max_timeout=100)  # thinks it may ask for more than the service allows
    result = await client.run(
        RunRequest(code="print(1)", user_id="u1", output_dir=tmp_path / "out", timeout=50)
    )
    assert result.status is RunStatus.ERROR
    assert result.message == (
        "the sandbox service refused the run: timeout 50 s is over this service's limit of 5 s"
    )
    await client.start()  # learns the service's limit, and clamps from then on
    assert client.max_timeout == 5
    again = await client.run(
        RunRequest(code="print(1)", user_id="u1", output_dir=tmp_path / "out", timeout=50)
    )
    assert again.status is RunStatus.OK and again.timeout_seconds == 5


async def test_a_service_that_is_not_there_is_a_sandbox_error_saying_so(tmp_path):
    client = unix_client(tmp_path / "nobody.sock")
    result = await client.run(RunRequest(code="print(1)", user_id="u1", output_dir=tmp_path))
    await client.start()  # never raises: the bot starts and chats anyway
    await client.close()
    assert result.status is RunStatus.SANDBOX_ERROR
    assert result.message.startswith(f"{UNAVAILABLE}: cannot connect to the sandbox service")


async def test_a_silent_service_times_out_and_a_cut_stream_leaves_no_partial_file(tmp_path):
    """Two broken services played by a raw socket server: one never answers, one stops in the
    middle of an output file."""
    socket_path = tmp_path / "broken.sock"
    result_frame = wire.frame(
        "result", result={"run_id": "r1", "status": "ok", "files": [{"name": "a.bin", "size": 10}]}
    )
    behaviour = {"mode": "silent"}

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if behaviour["mode"] == "silent":
            await asyncio.sleep(30)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: "
            + wire.FRAMES_CONTENT_TYPE.encode()
            + b"\r\nContent-Length: 1000\r\n\r\n"
            + result_frame
            + b"12345"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, path=str(socket_path))
    client = unix_client(socket_path, idle_timeout=0.5)
    request = RunRequest(code="print(1)", user_id="u1", output_dir=tmp_path / "out")
    try:
        silent = await client.run(request)
        behaviour["mode"] = "cut"
        cut = await client.run(request)
    finally:
        await client.close()
        server.close()
    assert silent.status is RunStatus.SANDBOX_ERROR
    assert silent.message == f"{UNAVAILABLE}: the sandbox service stopped answering"
    assert cut.status is RunStatus.SANDBOX_ERROR and cut.message.startswith(UNAVAILABLE)
    assert list((tmp_path / "out").iterdir()) == []


async def test_a_client_that_goes_away_mid_run_gets_its_container_removed(tmp_path):
    made = Service(tmp_path, Script(runner="hang"))
    await made.server.start()
    try:
        client = made.client()
        task = asyncio.ensure_future(
            client.run(RunRequest(code="x", user_id="u1", output_dir=tmp_path / "out"))
        )
        assert await eventually(lambda: made.engine.execs), "the run should be running"
        assert made.engine.live()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await eventually(lambda: made.engine.live() == [])
    finally:
        for client in made.clients:
            await client.close()
        await made.server.close()


async def test_queue_positions_reach_the_client_while_a_run_waits(tmp_path):
    from app.sandbox import RunSlots

    made = Service(tmp_path, Script(runner="hang"), slots=RunSlots(1))
    await made.server.start()
    try:
        client = made.client()
        first = asyncio.ensure_future(
            client.run(RunRequest(code="x", user_id="a", output_dir=tmp_path / "a", timeout=1))
        )
        assert await eventually(lambda: made.engine.execs)
        positions: list[int] = []
        seen_waiting: list[int] = []

        def queued(position: int) -> None:
            positions.append(position)
            seen_waiting.append(client.waiting)

        second = await client.run(
            RunRequest(code="x", user_id="b", output_dir=tmp_path / "b", timeout=1), queued
        )
        await first
    finally:
        for client in made.clients:
            await client.close()
        await made.server.close()
    assert positions[0] == 1 and positions[-1] == 0
    assert seen_waiting[0] == 1
    assert second.status is RunStatus.TIMEOUT and second.queue_seconds > 0.5
    assert client.waiting == 0


async def test_stats_and_policy_are_read_only_views_of_the_runner(service):
    client = service.client()
    status = await client.status()
    assert (status.capacity, status.running, status.waiting) == (4, 0, 0)
    assert status.where == f"sandboxd at {service.address}"
    assert await client.describe_policy() == json.loads(
        json.dumps(policy_summary(service.policy))  # as JSON carries it
    )


def dead_client(tmp_path) -> SandboxClient:
    return unix_client(tmp_path / "gone.sock")


async def test_the_chat_keeps_chatting_while_the_service_is_down(fake_openai, make_chat, tmp_path):
    from tests.fakes.openai_server import last_tool_result, reply, tool_call

    client = dead_client(tmp_path)
    service = make_chat(client, tmp_path)
    seen = {}

    def answer(body):
        seen.update(last_tool_result(body))
        return reply("The sandbox is down, but here is the idea: 2 + 2 = 4.")

    fake_openai.add(tool_call("print(2 + 2)"), answer, reply("Still here."))
    first = await service.turn("u1", "c1", "compute 2+2")
    second = await service.turn("u1", "c1", "hello?")
    await client.close()

    assert first.text.startswith("The sandbox is down") and second.text == "Still here."
    assert first.notices == ["The code sandbox is unavailable right now. Please try again later."]
    assert seen["status"] == "sandbox_error"
    assert seen["message"] == "the sandbox is unavailable right now; try again later"
    assert "sock" not in str(seen)  # no internals for the model


async def test_the_admins_sandbox_view_through_the_service(make_chat, service, tmp_path):
    from app.bot.exts.commands import CommandsCog
    from tests.fakes.discord_mocks import mock_bot, mock_interaction
    from tests.fakes.file_store import memory_store

    store = memory_store(tmp_path)
    for sandbox, expected in (
        (service.client(), (f"Sandbox: sandboxd at {service.address}", "network: none")),
        (dead_client(tmp_path), ("The sandbox is unavailable right now: cannot connect",)),
    ):
        cog = CommandsCog(mock_bot(make_chat(sandbox, tmp_path, store=store), store, sandbox, {7}))
        interaction = mock_interaction(user_id=7)
        await cog.sandbox.callback(cog, interaction)
        text = interaction.response.send_message.await_args.args[0]
        assert all(part in text for part in expected), text
        await sandbox.close()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user_id": "u1", "session_id": "../up"}, "session_id"),
        ({"user_id": "u1"}, "session_id"),
        ({"user_id": "not a user", "session_id": "s"}, "user_id"),
        (["u1", "s"], ""),
    ],
)
async def test_a_session_reset_takes_no_name_it_has_not_checked(service, body, field):
    status, answer = await service.post(
        json.dumps(body).encode(), content_type="application/json", path=wire.SESSION_RESET
    )
    assert status == 400
    assert answer.get("field", "") == field


async def test_a_session_reset_through_the_client(service):
    client = service.client()
    assert await client.reset_session("u1", "chat-1") is False  # nothing kept yet
    folder = service.tmp_path / "sessions"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert await dead_client(service.tmp_path).reset_session("u1", "chat-1") is False
