"""The sandbox side's session store, the state phases of the exec timer, and the model's view."""

import json
import os
import time

from app.chat.tools import describe_environment, system_prompt, tool_result
from app.sandbox import RunResult, RunStatus
from app.sandbox.environment import SandboxEnvironment
from app.sandbox.execution import PhaseWatch
from app.sandbox.markers import CODE_MARKER, SAVE_MARKER
from app.sandbox.sessions import SessionStates, is_session_id
from app.sandboxd import wire


def test_a_session_is_its_users_alone_and_no_name_becomes_a_path(tmp_path):
    states = SessionStates(tmp_path, 1024)
    keys = {
        states.key("alice", "s1"),
        states.key("bob", "s1"),
        states.key("alice", "s2"),
        states.key("alice\0s", "1"),
    }
    assert len(keys) == 4
    run = states.open_run("alice", "../../etc", "r1")
    assert run.folder.parent == tmp_path
    assert not is_session_id("../x") and not is_session_id("") and is_session_id("chat-1:2")


def test_commit_keeps_the_last_good_state_and_says_why_not(tmp_path):
    states = SessionStates(tmp_path, 1024)
    run = states.open_run("u", "s", "r1")
    run.incoming.mkdir()
    (run.incoming / "state").write_bytes(b"one")
    (run.incoming / "notes").write_text(json.dumps(["not kept: con (sqlite3.Connection)", 5]))
    notes = states.commit(run, {"state": run.incoming / "state", "notes": run.incoming / "notes"})
    assert notes == ["not kept: con (sqlite3.Connection)"]
    assert run.state.read_bytes() == b"one"
    states.discard(run)
    assert not run.incoming.exists()

    again = states.open_run("u", "s", "r2")
    again.incoming.mkdir()
    (again.incoming / "state").write_bytes(b"two")
    notes = states.commit(again, {"state": again.incoming / "state"}, "the run timed out")
    assert notes == [
        "state not saved (the run timed out); the next run starts from the state before this run"
    ]
    assert run.state.read_bytes() == b"one"
    assert states.commit(states.open_run("u", "s", "r3"), {})[0].startswith("state not saved")


def test_the_imports_of_saved_runs_are_remembered_for_the_next_run_alone(tmp_path):
    states = SessionStates(tmp_path, 1024)

    def run_once(run_id, imports, saved=True):
        run = states.open_run("u", "s", run_id)
        run.incoming.mkdir()
        (run.incoming / "state").write_bytes(b"x")
        problem = "" if saved else "the run timed out"
        states.commit(run, {"state": run.incoming / "state"}, problem, imports)

    run_once("r1", {"toolz", "pandas"})
    run_once("r2", {"humanize"})
    run_once("r3", {"never_saved"}, saved=False)  # its state was not kept: nor its imports
    assert states.imports("u", "s") == {"toolz", "pandas", "humanize"}
    assert states.imports("u", "other") == set() and states.imports("v", "s") == set()
    folder = tmp_path / states.key("u", "s")
    (folder / "imports").write_text('["ok", "../bad", 3, "a b"]')  # whatever the file says
    assert states.imports("u", "s") == {"ok"}
    (folder / "imports").write_text("not json")
    assert states.imports("u", "s") == set()
    run_once("r4", {f"m{i}" for i in range(200)})
    assert len(states.imports("u", "s")) == 64  # bounded
    assert states.reset("u", "s") and states.imports("u", "s") == set()


def test_reset_and_expiry_remove_the_state(tmp_path):
    states = SessionStates(tmp_path, 1024)
    for session in ("old", "new"):
        run = states.open_run("u", session, "r")
        run.state.write_bytes(b"x")
    old = states.open_run("u", "old", "r").state
    past = time.time() - 3 * 3600
    os.utime(old, (past, past))
    assert states.remove_expired(2 * 3600) == 1
    assert not old.exists()
    assert states.reset("u", "new") is True
    assert states.reset("u", "new") is False
    assert list(tmp_path.iterdir()) == []


def test_the_timer_counts_only_the_code_between_the_phase_marks():
    watch = PhaseWatch(started=100.0, timeout=10.0, state_seconds=30.0)
    assert watch.limit == 130.0  # restoring has its own bound
    watch.feed(b"restored" + CODE_MARKER[:5], 104.0)
    watch.feed(CODE_MARKER[5:] + b"output", 105.0)  # a mark split across chunks
    assert (watch.phase, watch.limit) == ("code", 115.0)
    watch.feed(b"more" + SAVE_MARKER + b"3\n", 108.0)
    assert (watch.phase, watch.status, watch.limit) == ("save", 3, 138.0)
    assert watch.code_seconds(200.0) == 3.0


def test_a_restore_that_overruns_starts_the_codes_timer():
    watch = PhaseWatch(started=0.0, timeout=10.0, state_seconds=5.0)
    assert watch.expired(5.0) is False
    assert (watch.phase, watch.limit) == ("code", 15.0)
    assert watch.expired(15.0) is True


def test_without_state_the_timer_is_the_plain_timeout():
    watch = PhaseWatch(started=0.0, timeout=10.0, state_seconds=None)
    watch.feed(SAVE_MARKER + b"0\n", 1.0)  # only a run with state has phases
    assert (watch.phase, watch.limit) == ("code", 10.0)


def test_the_description_says_what_the_sandbox_side_found():
    environment = SandboxEnvironment(
        preinstalled=("pandas==3.1.1", "numpy==2.4.6"),
        approved=("polars", "duckdb"),
        keeps_state=True,
        state_max_bytes=256 * 1024**2,
        max_output_files=20,
        max_output_bytes=100 * 1024**2,
        memory_bytes=1024**3,
    )
    text = describe_environment(environment, 300)
    assert "pandas==3.1.1, numpy==2.4.6" in text
    assert "installed automatically when the code imports them" in text and "polars" in text
    assert "like notebook cells" in text and "256.0 MB" in text
    assert "at most 20 files" in text and "1.0 GB of memory" in text
    assert "notebook cells" in system_prompt(environment)

    plain = describe_environment(SandboxEnvironment(), 300)
    assert "Each call starts from scratch" in plain
    assert "Nothing else can be installed" in plain and "polars" not in plain
    assert "notebook cells" not in system_prompt(SandboxEnvironment())


def test_the_environment_survives_the_wire_and_rejects_wrong_types():
    environment = SandboxEnvironment(preinstalled=("a==1",), keeps_state=True, max_timeout=30)
    assert SandboxEnvironment.from_dict(environment.to_dict()) == environment
    odd = SandboxEnvironment.from_dict(
        {"preinstalled": "x", "keeps_state": "yes", "memory_bytes": True}
    )
    assert odd == SandboxEnvironment()


def test_state_notes_reach_the_model_and_cross_the_wire():
    result = RunResult("r1", RunStatus.OK, state_notes=("not kept: con (sqlite3.Connection)",))
    assert json.loads(tool_result(result))["state_notes"] == ["not kept: con (sqlite3.Connection)"]
    values, _ = wire.result_from_wire(wire.result_to_wire(result))
    assert values["state_notes"] == result.state_notes
