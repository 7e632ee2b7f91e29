"""The sandbox service's format, addresses, settings and owner tokens, without a server."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, describe_errors
from app.sandbox import OutputFile, RunResult, RunStatus, SandboxPolicy, SkippedOutput
from app.sandbox.leftovers import LeftoverReaper, owner_token
from app.sandbox.policy import OWNER_LABEL
from app.sandboxd import AddressError, ServiceAddress, wire
from tests.fakes.engine import FakeEngine


@pytest.mark.parametrize("user_id", ["alice\n", "", "a/b", "x" * 65, 42, None])
def test_user_ids_follow_the_file_stores_rule(user_id):
    line = json.dumps({"code": "print(1)", "user_id": user_id, "timeout": 1}).encode()
    with pytest.raises(wire.RequestRejected) as caught:
        wire.parse_run(line, wire.RunLimits(4096, 5, 3, 1000))
    assert caught.value.field == "user_id"
    assert caught.value.status == 400


def test_every_result_field_survives_the_wire():
    result = RunResult(
        run_id="r1",
        status=RunStatus.TIMEOUT,
        exit_code=None,
        stdout="out ✓",
        stderr="err",
        stdout_truncated=True,
        timeout_seconds=2.5,
        queue_seconds=0.1,
        setup_seconds=0.2,
        exec_seconds=2.5,
        collect_seconds=0.01,
        install_seconds=1,
        installed_packages=("tabulate==0.9.0",),
        files=(OutputFile("plot.png", 3, Path("/srv/service/only/plot.png")),),
        skipped=(SkippedOutput("link", "not a regular file"),),
        message="the code ran longer than the 2.5 s limit",
    )
    data = wire.result_to_wire(result)
    assert data["files"] == [{"name": "plot.png", "size": 3}]  # never the service's paths
    values, announced = wire.result_from_wire({**data, "from_a_newer_service": 1})
    assert announced == [("plot.png", 3)]
    assert RunResult(**values, files=result.files) == result
    # a field added to RunResult later needs no change here as long as its type is plain
    plain = {f.name for f in dataclasses.fields(RunResult)} - {"files"}
    assert set(values) == plain


@pytest.mark.parametrize(
    "broken",
    [
        {"status": "exploded"},
        {"stdout": 5},
        {"exit_code": "0"},
        {"exec_seconds": True},
        {"files": [{"name": "a"}]},
        {"files": [{"name": 1, "size": 1}]},
        {"skipped": "none"},
        {"installed_packages": [1]},
    ],
)
def test_a_result_of_the_wrong_shape_is_a_protocol_error(broken):
    data = wire.result_to_wire(RunResult(run_id="r", status=RunStatus.OK))
    with pytest.raises(wire.ProtocolError):
        wire.result_from_wire({**data, **broken})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("unix:///run/codeinterp/sandboxd.sock", "unix:///run/codeinterp/sandboxd.sock"),
        ("http://sandbox:8750", "http://sandbox:8750"),
        ("http://127.0.0.1:8750/", "http://127.0.0.1:8750"),
    ],
)
def test_service_addresses(url, expected):
    assert str(ServiceAddress.parse(url)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "unix://relative.sock",
        "http://host",
        "http://host:99999",
        "http://user:pw@host:1",
        "https://host:1",
        "http://host:1/path",
        "unix:///" + "x" * 200,
    ],
)
def test_bad_service_addresses_are_refused_with_the_fix(url):
    with pytest.raises(AddressError, match="expected|shorter"):
        ServiceAddress.parse(url)


def test_tcp_needs_a_token_and_the_token_is_never_printed():
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, sandbox_service_url="http://sandbox:8750")
    assert "SANDBOX_SERVICE_TOKEN" in describe_errors(caught.value)[0]
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, sandboxd_listen="http://0.0.0.0:8750", sandbox_service_token="x y")
    (line,) = describe_errors(caught.value)
    assert "at least 16" in line and "x y" not in line
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, sandbox_service_url="tcp://sandbox:1")
    assert "unix:///absolute" in describe_errors(caught.value)[0]
    unix = Settings(_env_file=None, sandbox_service_url="unix:///run/s.sock")
    assert unix.sandbox_service_token is None  # a Unix socket's mode is its gate


def _container(engine: FakeEngine, owner: str) -> str:
    policy = SandboxPolicy(image="img", owner=owner)
    container_id, stream = engine.create_attach_start(
        policy.container_args(run_id="r", user_id="u", code_uid=20001, input_dir=None)
    )
    stream.close()
    return container_id


def test_a_service_reaps_any_other_services_containers_and_nobody_reaps_a_live_service():
    engine = FakeEngine()
    me = owner_token(service=True)
    mine = _container(engine, me)
    earlier_service = _container(engine, "sandboxd@old-container:1:12345")
    live_tool = _container(engine, owner_token())  # `run` in this very process, still alive
    dead_tool = _container(engine, f"{owner_token().split(':')[0]}:999999999:0")

    def leftovers(owner: str) -> set[str]:
        reaper = LeftoverReaper(
            SandboxPolicy(image="img", owner=owner), engine, max_age=1e12
        )  # the fake says Created 0
        return set(reaper.leftover_ids())

    assert leftovers(me) == {earlier_service, dead_tool}
    # An in-process tool cannot see another container's processes: a service's runs are never
    # its leftovers (only by age), and neither are its own live runs.
    assert leftovers(owner_token()) == {dead_tool}
    labels = engine.containers_made[mine].labels
    assert labels[OWNER_LABEL] == me and me.startswith("sandboxd@")
    assert live_tool not in leftovers(me)


def test_the_service_rows_hop_is_measured_per_run():
    from app.ops.bench_figures import Figure, figures

    row = Figure(
        "runc", "service", "pandas", samples=[12.0, 40.0, 13.0], baseline=[10.0, 39.0, 10.0]
    )
    row.hops = [1.0, 1.5, 9.0]
    data = row.to_dict()
    assert (data["p50_ms"], data["direct_p50_ms"]) == (13.0, 10.0)
    assert (data["hop_p50_ms"], data["hop_p95_ms"]) == (1.5, 9.0)
    found = figures({"results": [data]})
    assert found["runc service hop pandas p50 ms"] == 1.5
    assert found["runc warm via service pandas p50 ms"] == 13.0


def test_the_token_may_come_from_a_secret_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("a-token-from-a-swarm-secret\n")
    settings = Settings(
        _env_file=None, sandboxd_listen="http://0.0.0.0:8750", sandbox_service_token_file=secret
    )
    assert settings.sandbox_service_token.get_secret_value() == "a-token-from-a-swarm-secret"
    secret.write_text("short")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, sandbox_service_token_file=secret)
    (line,) = describe_errors(caught.value)
    assert "at least 16" in line and "short" not in line
