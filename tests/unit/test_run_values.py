import pytest

from app.sandbox.execution import CappedBuffer
from app.sandbox.leftovers import owner_is_dead, owner_token
from app.sandbox.result import RunResult, RunStatus
from app.sandbox.status import classify


def test_capped_buffer_keeps_the_head_and_flags_the_rest():
    buf = CappedBuffer(10)
    for _ in range(1000):
        buf.add(b"0123456789")
    assert bytes(buf.data) == b"0123456789" and buf.truncated
    assert len(buf.data) == 10  # memory bounded whatever arrives


def test_capped_buffer_does_not_split_a_character():
    buf = CappedBuffer(5)
    buf.add("abcd\u00e9".encode())  # the cut lands inside the two bytes of é
    assert buf.text() == "abcd"


def test_invalid_utf8_is_replaced_not_fatal():
    buf = CappedBuffer(100)
    buf.add(b"ok \xff\xfe bytes")
    assert buf.text() == "ok \ufffd\ufffd bytes" and not buf.truncated


@pytest.mark.parametrize(
    "timed_out, exit_code, oom_kills, container_oom, expected",
    [
        (False, 0, 0, False, RunStatus.OK),
        (False, 1, 0, False, RunStatus.ERROR),
        (False, 3, 0, False, RunStatus.ERROR),
        (False, 137, 1, False, RunStatus.OOM),
        (False, None, 0, True, RunStatus.OOM),
        (False, 137, 0, False, RunStatus.KILLED),
        (False, None, 0, False, RunStatus.KILLED),
        (True, None, 5, False, RunStatus.TIMEOUT),
        (False, 0, 1, False, RunStatus.OK),  # a subprocess was OOM-killed but the code coped
    ],
)
def test_classify(timed_out, exit_code, oom_kills, container_oom, expected):
    assert (
        classify(
            timed_out=timed_out,
            exit_code=exit_code,
            oom_kills=oom_kills,
            container_oom=container_oom,
        )
        is expected
    )


@pytest.mark.parametrize(
    "exit_code, container_oom, expected",
    [
        (
            128,
            False,
            RunStatus.KILLED,
        ),  # gVisor: the runner's exec reports 128 when the sandbox dies
        (0, False, RunStatus.KILLED),
        (None, True, RunStatus.OOM),
        (137, True, RunStatus.OOM),
    ],
)
def test_a_sandbox_that_died_is_never_ok_or_error(exit_code, container_oom, expected):
    assert (
        classify(
            timed_out=False,
            exit_code=exit_code,
            oom_kills=0,
            container_oom=container_oom,
            sandbox_stopped=True,
        )
        is expected
    )


def test_result_json_shape():
    data = RunResult(run_id="r", status=RunStatus.OK, exit_code=0).to_dict()
    for key in (
        "status",
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "exec_seconds",
        "setup_seconds",
        "files",
        "skipped",
    ):
        assert key in data
    assert data["status"] == "ok"


def test_owner_liveness():
    assert not owner_is_dead(owner_token())
    host = owner_token().split(":")[0]
    assert owner_is_dead(f"{host}:999999999:0")
    assert not owner_is_dead("some-other-host:1:0")  # unknown there: never reaped on a guess


def test_result_dict_reports_installs_apart_from_exec():
    result = RunResult(
        run_id="r",
        status=RunStatus.OK,
        exec_seconds=0.5,
        install_seconds=3.21234,
        installed_packages=("toolz==1.2.0",),
    )
    data = result.to_dict()
    assert data["install_seconds"] == 3.2123 and data["exec_seconds"] == 0.5
    assert data["installed_packages"] == ["toolz==1.2.0"]
