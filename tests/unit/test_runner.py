"""SandboxRunner.run() through every path, on the fake engine: milliseconds, no Docker.

The fake plays the in-container protocol (tests/fakes/engine.py); the runner, the exec step, the
collection, the warden's host side and the output receiver are the real code. Isolation itself is
tested with real containers in tests/integration and tests/security.
"""

from __future__ import annotations

import random

import pytest

from app.sandbox import (
    InputFile,
    RunRequest,
    RunStatus,
    SandboxPolicy,
    SandboxRunner,
    WarmPool,
    collection,
    execution,
)
from app.sandbox.identities import CodeUids
from app.sandbox.markers import DONE_MARKER
from app.sandbox.names import CODE_UID_LABEL
from app.sandbox.pool import WarmContainer
from tests.fakes.engine import FakeEngine, Script


@pytest.fixture(autouse=True)
def quick_liveness(monkeypatch):
    monkeypatch.setattr(execution, "LIVENESS_INTERVAL", 0.02)


def make_runner(tmp_path, engine, *, warm: bool = False) -> SandboxRunner:
    policy = SandboxPolicy(image="img:test", data_dir=tmp_path)
    pool = None
    if warm:
        pool = WarmPool(policy, engine, size=1, max_age=60, staging_root=tmp_path / "pool")
    return SandboxRunner(policy, engine, max_timeout=5, pool=pool)


def request(tmp_path, code="print('hi')", **kwargs) -> RunRequest:
    return RunRequest(code=code, user_id="u1", output_dir=tmp_path / "out", **kwargs)


async def test_a_cold_run_is_collected_by_the_warden_without_another_exec(tmp_path):
    engine = FakeEngine(Script(stdout=b"hi\n", files={"plot.png": b"\x89PNG"}))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path))
    assert result.status is RunStatus.OK and result.exit_code == 0
    assert result.stdout == "hi\n"  # the done marker is not output
    assert [(f.name, f.path.read_bytes()) for f in result.files] == [("plot.png", b"\x89PNG")]
    assert engine.execs == ["runner"]  # no collector exec on the fast path
    assert engine.live() == []  # removed before run() returned (the runner is not started)


async def test_output_still_on_its_way_behind_forged_markers_is_kept(tmp_path):
    # The code printed done markers itself on both streams (it cannot know the run's nonce); the
    # runner's real stderr marker arrives while the end of stdout is still on its way.
    forged = DONE_MARKER + b"0\n"
    engine = FakeEngine(
        Script(stdout=b"first\n" + forged, stderr=forged, late_stdout=b"still running\n")
    )
    result = await make_runner(tmp_path, engine).run(request(tmp_path))
    assert result.status is RunStatus.OK
    assert result.stdout == "first\n" + forged.decode() + "still running\n"
    assert result.stderr == forged.decode()  # the code's own bytes are output; the runner's not


async def test_a_warm_run_takes_the_pools_container_and_stages_the_files(tmp_path, monkeypatch):
    engine = FakeEngine(Script(stdout=b"warm\n"))
    runner = make_runner(tmp_path, engine, warm=True)
    staged = []
    original = WarmContainer.stage

    def stage(self, source_dir, filenames):
        original(self, source_dir, filenames)
        staged.append(sorted(p.name for p in self.input_dir.iterdir()))

    monkeypatch.setattr(WarmContainer, "stage", stage)
    await runner.start()
    try:
        assert await runner.pool.wait_ready(timeout=10)
        user_dir = tmp_path / "users" / "u1"
        user_dir.mkdir(parents=True)
        (user_dir / "f1.csv").write_text("a\n1\n")
        (user_dir / "other.csv").write_text("not in the manifest\n")
        files = (InputFile(file_id="f1", name="a.csv", filename="f1.csv", size=4, type="csv"),)
        result = await runner.run(request(tmp_path, input_dir=user_dir, files=files))
        assert result.status is RunStatus.OK and result.stdout == "warm\n"
        assert runner.pool.stats.taken == 1 and staged == [["f1.csv"]]
    finally:
        await runner.close()
    assert engine.live() == []
    assert list((tmp_path / "pool").iterdir()) == []  # staging folders go with their containers


async def test_at_the_timeout_the_runner_stops_the_code_and_the_warden_collects(tmp_path):
    engine = FakeEngine(Script(stdout=b"partial\n", runner="hang", files={"half.txt": b"x"}))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path, timeout=0.2))
    assert result.status is RunStatus.TIMEOUT and result.exit_code is None
    assert result.stdout == "partial\n"
    assert "0.2 s limit" in result.message
    assert engine.execs == ["runner"]  # nothing is ever started as the code's uid after it
    assert [f.name for f in result.files] == ["half.txt"]
    assert result.exec_seconds < 1
    assert engine.live() == []


async def test_a_runner_the_code_stopped_costs_the_outputs_not_the_host(tmp_path, monkeypatch):
    monkeypatch.setattr(execution, "STOP_GRACE", 0.2)
    engine = FakeEngine(Script(runner="deaf", files={"half.txt": b"x"}))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path, timeout=0.2))
    assert result.status is RunStatus.TIMEOUT and result.files == ()
    assert any("stopped its runner" in s.reason for s in result.skipped), result.skipped
    assert engine.execs == ["runner"] and engine.live() == []


async def test_a_sandbox_that_dies_under_the_code_is_oom_not_an_error(tmp_path):
    engine = FakeEngine(Script(runner="die"))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path))
    assert result.status is RunStatus.OOM and "out of memory" in result.message
    assert any(s.reason.startswith("lost") for s in result.skipped)
    assert engine.live() == []


async def test_a_runner_killed_with_the_code_is_collected_once_nothing_is_left(tmp_path):
    engine = FakeEngine(Script(status=137, runner="exit", files={"kept.txt": b"k"}))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path))
    assert result.status is RunStatus.KILLED and "SIGKILL" in result.message
    assert engine.execs == ["runner"]
    assert [f.name for f in result.files] == ["kept.txt"]


async def test_code_that_outlives_its_killed_runner_loses_its_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(collection, "GONE_WAIT", 0.2)
    engine = FakeEngine(Script(status=137, runner="exit-alive", files={"forged.txt": b"f"}))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path))
    assert result.status is RunStatus.KILLED and result.files == ()
    assert any("outlived its runner" in s.reason for s in result.skipped), result.skipped
    assert engine.execs == ["runner"] and engine.live() == []


async def test_skipped_entries_are_capped_and_summarized(tmp_path):
    many = [{"name": f"link{i}", "reason": "symbolic link (never followed)"} for i in range(50)]
    engine = FakeEngine(Script(skipped=many))
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path))
    assert len(result.skipped) == 21 and result.skipped[-1].name == "(+30 more)"


async def test_every_container_gets_a_code_uid_of_its_own(tmp_path):
    engine = FakeEngine(Script())
    runner = make_runner(tmp_path, engine)
    results = [await runner.run(request(tmp_path)) for _ in range(3)]
    assert all(r.status is RunStatus.OK for r in results)
    uids = [c.labels[CODE_UID_LABEL] for c in engine.containers_made.values()]
    assert len(set(uids)) == 3
    for container in engine.containers_made.values():
        uid = container.labels[CODE_UID_LABEL]
        assert container.args["tmpfs"]["/mnt/output"].count(f"uid={uid},") == 1
        command = container.args["command"]
        assert command[command.index("--code-uid") + 1] == uid
        # Armed as the code was handed over: the timeout, the runner's grace and a margin.
        assert container.deadline is not None and container.deadline > 5
    assert engine.exec_users == [f"{uid}:{uid}" for uid in uids]


async def test_a_uid_an_older_container_holds_is_given_up(tmp_path):
    engine = FakeEngine(Script())
    policy = SandboxPolicy(image="img:test", data_dir=tmp_path)
    uids = CodeUids(policy, engine, rng=random.Random(7))
    first = uids.pick()
    older, _ = engine.create_attach_start({"labels": {CODE_UID_LABEL: str(first)}})
    newer, _ = engine.create_attach_start({"labels": {CODE_UID_LABEL: str(first)}})
    assert uids.keeps(older, first) and not uids.keeps(newer, first)


async def test_a_missing_image_is_a_sandbox_error_that_names_the_build_command(tmp_path):
    engine = FakeEngine(missing_image=True)
    runner = make_runner(tmp_path, engine)
    result = await runner.run(request(tmp_path))
    assert result.status is RunStatus.SANDBOX_ERROR
    assert (
        "'img:test' not found" in result.message and "python -m app image build" in result.message
    )
    assert engine.containers_made == {}


async def test_requests_are_checked_before_any_container_exists(tmp_path):
    engine = FakeEngine()
    runner = make_runner(tmp_path, engine)
    empty = await runner.run(request(tmp_path, code="   "))
    huge = await runner.run(request(tmp_path, code="x" * (SandboxPolicy.max_code_bytes + 1)))
    assert empty.message == "there is no code to run" and "over the limit" in huge.message
    assert engine.containers_made == {}
