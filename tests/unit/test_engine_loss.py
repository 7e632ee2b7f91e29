"""An engine lost mid-run, on the fake engine and on DockerEngine with a client that fails as
the docker SDK does: a clear sandbox_error, a removal that is remembered for the reaper, and
stopped sandboxes that are reaped after a grace whoever made them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from structlog.testing import capture_logs

from app.sandbox import RunStatus, SandboxPolicy, execution
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineUnavailable
from app.sandbox.leftovers import STOPPED_GRACE, LeftoverReaper
from app.sandbox.names import OWNER_LABEL
from app.sandbox.pool import remove_sandbox
from app.sandbox.status import ENGINE_RESTARTED
from tests.fakes.engine import FakeEngine, Script
from tests.unit.test_runner import make_runner, request


@pytest.fixture(autouse=True)
def quick_liveness(monkeypatch):
    monkeypatch.setattr(execution, "LIVENESS_INTERVAL", 0.02)


class LosingEngine(FakeEngine):
    """The engine goes away once the code runs: every call fails as an unreachable engine."""

    lost = False

    def _refuse(self) -> None:
        if self.lost:
            raise EngineUnavailable("sandbox unavailable: cannot reach the Docker engine at x")

    def is_running(self, container_id):
        self.lost = True  # the first liveness check of the exec step
        self._refuse()
        return super().is_running(container_id)

    def remove(self, container_id):
        if self.lost:  # as DockerEngine does: a removal that fails is kept for the reaper
            self.unremoved.add(container_id)
        self._refuse()
        return super().remove(container_id)


async def test_an_engine_lost_mid_run_is_a_sandbox_error_saying_so(tmp_path):
    engine = LosingEngine(Script(runner="hang"))
    runner = make_runner(tmp_path, engine)
    with capture_logs() as logs:
        result = await runner.run(request(tmp_path, timeout=2))
    assert result.status is RunStatus.SANDBOX_ERROR
    assert result.message == ENGINE_RESTARTED
    assert "restarted during the run" in result.message
    (container_id,) = engine.containers_made
    assert runner.leftovers.unremoved == {container_id}  # left to the reaper, remembered
    assert _count(logs, "sandbox removal failed; reaped later") == 1
    engine.lost = False  # back: the next reaping removes it, whoever owns it
    assert await runner.reap_leftovers() == 1
    assert engine.live() == [] and runner.leftovers.unremoved == set()


async def test_every_run_arms_the_sandbox_own_deadline(tmp_path):
    engine = FakeEngine(Script())
    runner = make_runner(tmp_path, engine)
    await runner.run(request(tmp_path, timeout=3))
    (container,) = engine.containers_made.values()
    assert container.deadline == 3 + execution.STOP_GRACE + execution.WARDEN_MARGIN


class SdkDown:
    """A docker client whose every request fails as requests does when dockerd is gone."""

    def __getattr__(self, name):
        return self

    def close(self) -> None:
        pass

    def __call__(self, *args, **kwargs):
        raise requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError(2))")


async def test_a_failed_removal_through_the_sdk_is_logged_once_and_remembered():
    engine = DockerEngine(lambda: SdkDown())  # type: ignore[arg-type, return-value]
    reaper = LeftoverReaper(SandboxPolicy(image="i"), engine, 600)
    try:
        with pytest.raises(EngineUnavailable):
            engine.remove("abc")
        with capture_logs() as logs:
            await remove_sandbox(engine, "abc123", None)
    finally:
        engine.close()
    # Both are kept for the reaper: the engine records every removal that failed, wherever.
    assert reaper.unremoved == {"abc", "abc123"} == engine.unremoved
    assert _count(logs, "sandbox removal failed; reaped later") == 1


class CreatesThenDown(SdkDown):
    """The low-level API of a client that creates a container and then loses the engine."""

    _version = "1.41"

    def create_container(self, **kwargs):
        return {"Id": "made-then-lost"}


class StartFails:
    """A docker client that creates a container and then loses the engine: start, attach and
    removal all fail as requests does when dockerd has gone."""

    def __init__(self) -> None:
        self.api = CreatesThenDown()

    def close(self) -> None:
        pass


def test_a_container_created_as_the_engine_went_is_kept_for_the_reaper():
    engine = DockerEngine(lambda: StartFails())  # type: ignore[arg-type, return-value]
    try:
        with pytest.raises(EngineUnavailable):
            engine.create_attach_start({"image": "i"})
    finally:
        engine.close()
    # Nobody above this layer ever saw the id: without the record it would stay "created".
    assert engine.unremoved == {"made-then-lost"}


class CreateAnswerLost(SdkDown):
    """The low-level API of a client whose create reached the engine but whose answer was lost."""

    _version = "1.41"

    def create_container(self, **kwargs):
        raise requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())")


class NamedListing(FakeEngine):
    """An engine, back, that lists the container made as it went, its id never seen."""

    def __init__(self, unremoved: set[str]) -> None:
        super().__init__()
        self.unremoved = unremoved

    def containers(self, filters):
        owner = SandboxPolicy(image="i").owner
        info = {"Id": "c9", "Names": ["/codeinterp-run1-20001"], "Labels": {OWNER_LABEL: owner}}
        return [{**info, "Created": time.time(), "State": "created"}]


def test_a_container_whose_create_answer_was_lost_is_found_by_its_name():
    args = SandboxPolicy(image="i").container_args(
        run_id="run1", user_id="u", code_uid=20001, input_dir=None
    )
    assert args["name"] == "codeinterp-run1-20001"
    lost = DockerEngine(
        lambda: type("C", (), {"api": CreateAnswerLost(), "close": lambda s: None})()
    )  # type: ignore[arg-type, return-value]
    try:
        with pytest.raises(EngineUnavailable):
            lost.create_attach_start(args)
    finally:
        lost.close()
    assert lost.unremoved == {"codeinterp-run1-20001"}
    # Its live owner would never remove it (it was never started): the name makes it a leftover.
    back = NamedListing(lost.unremoved)
    reaper = LeftoverReaper(SandboxPolicy(image="i"), back, max_age=10_000)
    assert reaper.leftover_ids() == ["c9"]


def _count(logs: list[dict], event: str) -> int:
    return sum(1 for entry in logs if entry.get("event") == event)


class ListingEngine(FakeEngine):
    def __init__(self, finished: datetime, state: str = "exited") -> None:
        super().__init__()
        self.finished, self.listed_state = finished, state
        self.created = finished.timestamp() if state == "created" else time.time()

    def containers(self, filters):
        owner = SandboxPolicy(image="i").owner or "this-host:1:1"
        return [
            {
                "Id": "c1",
                "Labels": {OWNER_LABEL: owner},
                "Created": self.created,
                "State": self.listed_state,
            }
        ]

    def state(self, container_id):
        return {"FinishedAt": self.finished.isoformat().replace("+00:00", "123Z")}


@pytest.mark.parametrize(
    ("ago", "state", "reaped"),
    [
        (STOPPED_GRACE + 30, "exited", True),
        (5, "exited", False),  # its live owner removes it in a moment
        (STOPPED_GRACE + 30, "running", False),
        (STOPPED_GRACE + 30, "created", True),  # its start failed and its id was lost
        (5, "created", False),  # its owner is about to start it
    ],
)
def test_a_stopped_sandbox_is_a_leftover_after_a_grace_whoever_owns_it(ago, state, reaped):
    finished = datetime.now(UTC) - timedelta(seconds=ago)
    engine = ListingEngine(finished, state)
    # The owner token is another host's: its liveness cannot be seen, so only the state counts.
    policy = SandboxPolicy(image="i", owner="elsewhere:1:1")
    reaper = LeftoverReaper(policy, engine, max_age=10_000)
    assert (reaper.leftover_ids() == ["c1"]) is reaped
