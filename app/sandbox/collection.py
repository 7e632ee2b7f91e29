"""Collection: the output files of a run that is over, received on the host with caps.

The output warden (the sandbox's main process, under the keeper's uid) is the only collector,
and nothing of the code's uid is ever started or believed once the code may run: the code could
stop such a process (`runc init` of a `docker exec` included, which wedges the exec in the
engine), take it over or write into its output. So:

- the runner said it is done (or was told to stop at the timeout and did): the warden, asked
  `collect`, checks from /proc that only the runner, renamed done, is left, and sends the files
  (`from_warden`);
- the runner's stream ended without its markers (the code killed it): the warden, asked
  `collect-if-gone`, collects only once no process of the code's uid is left at all;
- otherwise (the code outlived its runner, or stopped it so it could not stop the code, or the
  warden does not answer) the container is killed and the outputs are dropped, with the reason.

The host re-checks everything the warden sends (app/sandbox/outputs.py), and its report is capped
and summarized before anything shows it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.filenames import safe_filename
from app.sandbox.engine import DeadlineExceeded, Engine, FramesReader
from app.sandbox.execution import ExecOutcome, finish_streams
from app.sandbox.outputs import MAX_SKIPPED, OutputReceiver
from app.sandbox.policy import SandboxPolicy
from app.sandbox.result import OutputFile, SkippedOutput
from app.sandbox.starter import Sandbox
from app.sandbox.warden import Warden, WardenGone

OUTPUT_FOLDER = "(output folder)"
# After the runner died, how long the code's last processes may take to be gone.
GONE_WAIT = 3.0
MAX_REASON = 200
SIGTERM_EXIT = 128 + 15


@dataclass
class Collected:
    files: list[OutputFile] = field(default_factory=list)
    skipped: list[SkippedOutput] = field(default_factory=list)
    oom_kills: int = 0
    container_oom: bool = False
    sandbox_stopped: bool = False
    engine_stopped: bool = False
    """The engine stopped the sandbox (its shutdown or restart, or `docker stop`), not the code."""
    seconds: float = 0.0
    state_files: dict[str, Path] = field(default_factory=dict)
    """The session's state files the warden sent (app/sandbox/outputs.py, STATE_FILES)."""


def summarized(skipped: list[SkippedOutput], more: int = 0) -> list[SkippedOutput]:
    """At most MAX_SKIPPED entries, then one that counts the rest: what a user or the model sees
    stays small however many entries the code made."""
    more += max(0, len(skipped) - MAX_SKIPPED)
    kept = skipped[:MAX_SKIPPED]
    if more > 0:
        kept.append(SkippedOutput(f"(+{more} more)", "skipped for the same reasons"))
    return kept


class OutputCollector:
    def __init__(self, policy: SandboxPolicy, engine: Engine) -> None:
        self.policy = policy
        self.engine = engine

    def from_warden(
        self, warden: Warden, container_id: str, destination: Path, state_to: Path | None = None
    ) -> Collected:
        """Receive the outputs the warden is sending (it answered `collecting`); the session's
        state files into `state_to`."""
        started = time.monotonic()
        deadline = started + self.policy.collect_timeout
        receiver = OutputReceiver(
            destination,
            self.policy.max_output_files,
            self.policy.output_size_bytes,
            state_destination=state_to,
            state_max_bytes=self.policy.state_file_cap,
        )
        problems = []
        try:
            receiver.receive(FramesReader(warden.output_frames(deadline)))
            report = warden.report(deadline)
        except DeadlineExceeded:
            problems.append(SkippedOutput(OUTPUT_FOLDER, "collection took too long"))
            report = {}
        finally:
            warden.close()
        result = Collected(files=receiver.files, state_files=receiver.state_files)
        listed = report.get("skipped")
        listed = listed if isinstance(listed, list) else []  # one line of the warden: bounded
        reported = [
            SkippedOutput(
                safe_filename(str(item.get("name", "?"))),
                str(item.get("reason", ""))[:MAX_REASON],
            )
            for item in listed[:MAX_SKIPPED]
            if isinstance(item, dict)
        ]
        more = report.get("skipped_more", 0)
        more = more if isinstance(more, int) and 0 < more < 10**9 else 0
        more += max(0, len(listed) - MAX_SKIPPED)
        result.skipped = summarized(problems + reported + receiver.skipped, more)
        oom = report.get("oom_kills", 0)
        result.oom_kills = oom if isinstance(oom, int) and oom >= 0 else 0
        if not report:
            # The warden keeps a healthy sandbox running: a report that did not come means the
            # sandbox died meanwhile (gVisor stopping it under the code).
            self._sandbox_stopped(container_id, result, settle=3.0)
        result.seconds = time.monotonic() - started
        return result

    def after_runner(
        self,
        warden: Warden,
        container_id: str,
        destination: Path,
        *,
        runner_lost: bool,
        state_to: Path | None = None,
    ) -> Collected:
        """The runner ended without saying it is done, or did not stop the code when told to:
        collect only if nothing of the code is left, else drop the outputs and kill the sandbox."""
        started = time.monotonic()
        result = Collected()
        lost = SkippedOutput(OUTPUT_FOLDER, "lost: the sandbox stopped before collection")
        if self._sandbox_stopped(container_id, result):
            result.skipped.append(lost)
        elif runner_lost:
            self._drop(container_id, result, "the code stopped its runner, which could not stop it")
        else:
            answer = self._ask_until_gone(warden)
            if answer.startswith("collecting"):
                return self.from_warden(warden, container_id, destination, state_to)
            if answer == "busy":
                self._drop(container_id, result, "the code's processes outlived its runner")
            elif self._sandbox_stopped(container_id, result, settle=3.0):
                result.skipped.append(lost)
            else:
                self._drop(container_id, result, "the output warden did not answer")
        result.seconds = time.monotonic() - started
        return result

    def _ask_until_gone(self, warden: Warden) -> str:
        """`collecting`, `busy` (processes of the code are still there) or `gone`."""
        end = time.monotonic() + GONE_WAIT
        while True:
            try:
                answer = warden.ask("collect-if-gone")
            except WardenGone:
                return "gone"
            if answer != "busy" or time.monotonic() >= end:
                return answer
            time.sleep(0.1)

    def _drop(self, container_id: str, result: Collected, reason: str) -> None:
        self.engine.kill(container_id)  # nothing of the code outlives this
        result.skipped.append(SkippedOutput(OUTPUT_FOLDER, f"not collected: {reason}"))

    def _sandbox_stopped(self, container_id: str, result: Collected, settle: float = 0.0) -> bool:
        """Whether the sandbox stopped under the code (noted in `result`, OOM included). gVisor
        tears a sandbox down in steps, so `settle` gives the engine a moment to see the death."""
        running, oom = self.engine.is_running(container_id)
        end = time.monotonic() + settle
        while running and time.monotonic() < end:
            time.sleep(0.1)
            running, oom = self.engine.is_running(container_id)
        if running:
            return False
        result.sandbox_stopped = True
        result.container_oom = self._stopped_by_oom(container_id, oom)
        # SIGTERM ended the main process (the warden, which the code cannot signal): only the
        # engine sends that, when it shuts down or restarts, or when an admin stops the sandbox.
        state = self.engine.state(container_id)
        result.engine_stopped = not result.container_oom and state.get("ExitCode") == SIGTERM_EXIT
        return True

    def _stopped_by_oom(self, container_id: str, oom: bool, wait: float = 1.0) -> bool:
        """Whether a sandbox that stopped mid-run was killed for memory.

        The engine may record the OOM kill a moment after the exit, so wait briefly for it. A
        sandbox killed by SIGKILL (exit 137) that nobody here killed was killed by the kernel's
        OOM killer: code inside cannot signal gVisor's kernel.
        """
        end = time.monotonic() + wait
        while True:
            state = self.engine.state(container_id)
            if oom or state.get("OOMKilled") or state.get("ExitCode") == 137:
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.1)


async def collect_run(
    engine: Engine,
    collector: OutputCollector,
    sandbox: Sandbox,
    outcome: ExecOutcome,
    destination: Path,
    state_to: Path | None,
) -> tuple[Collected, int | None]:
    """The outputs (and the session's state files, into `state_to`), and the code's exit status
    (None after a timeout or a dead sandbox)."""
    exec_id = sandbox.stream.exec_id
    if outcome.collecting:
        # The warden confirmed that the code is over: it collects, no exec needed; all of the
        # runner's output is in (its markers came last).
        finish_streams(sandbox.stream, outcome)
        collected = await engine.call(
            collector.from_warden, sandbox.warden, sandbox.container_id, destination, state_to
        )
        sandbox.stream.close()
        if outcome.timed_out:
            return collected, None
        if outcome.done_status is not None:
            return collected, outcome.done_status
        status = await engine.call(engine.exec_status, exec_id)
        return collected, status.exit_code
    # Stop reading the runner before collecting: an unread stream (a flood cut at the
    # timeout) blocks the engine's I/O for the next exec of this container.
    sandbox.stream.close()
    collecting = engine.call(
        collector.after_runner,
        sandbox.warden,
        sandbox.container_id,
        destination,
        runner_lost=outcome.runner_lost,
        state_to=state_to,
    )
    if outcome.timed_out or outcome.sandbox_died:
        return await collecting, None
    # The runner has exited (its stream closed): its status is final and can be read while
    # the collector works, one round trip less.
    status, collected = await asyncio.gather(engine.call(engine.exec_status, exec_id), collecting)
    return collected, status.exit_code
