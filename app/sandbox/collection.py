"""Collection: the output files of a run that is over, received on the host with caps.

Two ways, both untimed:
- from the warden (the sandbox's main process, another uid than the code's), which already said
  `collecting`: its tar and report arrive on the stream the host attached at start;
- the one-shot collector (`docker exec` as the code's uid) after a timeout, or when the warden
  cannot (files made private, runner killed): a shell reaper first kills what the code left
  running (after a timeout), the collector then kills the rest, tars the folder and reports.

The host re-checks everything either sends (app/sandbox/outputs.py). A report proves the sandbox
alive only when it comes from the warden; with the one-shot collector the engine is asked too, so
a sandbox that died under the code is reported as such, not as the code's error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.filenames import safe_filename
from app.sandbox.engine import (
    DeadlineExceeded,
    Engine,
    EngineError,
    ExecStream,
    FramesReader,
)
from app.sandbox.outputs import OutputReceiver
from app.sandbox.policy import SandboxPolicy
from app.sandbox.result import OutputFile, SkippedOutput
from app.sandbox.warden import Warden

OUTPUT_FOLDER = "(output folder)"


@dataclass
class Collected:
    files: list[OutputFile] = field(default_factory=list)
    skipped: list[SkippedOutput] = field(default_factory=list)
    oom_kills: int = 0
    container_oom: bool = False
    sandbox_stopped: bool = False
    seconds: float = 0.0


class OutputCollector:
    def __init__(self, policy: SandboxPolicy, engine: Engine) -> None:
        self.policy = policy
        self.engine = engine

    def _receiver(self, destination: Path) -> OutputReceiver:
        return OutputReceiver(
            destination, self.policy.max_output_files, self.policy.output_size_bytes
        )

    def from_warden(self, warden: Warden, container_id: str, destination: Path) -> Collected:
        """Receive the outputs the warden is sending (it answered `collecting`)."""
        started = time.monotonic()
        deadline = started + self.policy.collect_timeout
        receiver = self._receiver(destination)
        problems = []
        try:
            receiver.receive(FramesReader(warden.tar_frames(deadline)))
            report = warden.report(deadline)
        except DeadlineExceeded:
            problems.append(SkippedOutput(OUTPUT_FOLDER, "collection took too long"))
            report = {}
        finally:
            warden.close()
        return self._collected(container_id, receiver, report, problems, started)

    def one_shot(self, container_id: str, destination: Path, reap_first: bool = False) -> Collected:
        started = time.monotonic()
        result = Collected()
        if reap_first:
            self._reap_code_processes(container_id)
        running, result.container_oom = self.engine.is_running(container_id)
        if not running:
            result.sandbox_stopped = True
            result.container_oom = self._stopped_by_oom(container_id, result.container_oom)
            result.skipped.append(
                SkippedOutput(OUTPUT_FOLDER, "lost: the sandbox stopped before collection")
            )
            result.seconds = time.monotonic() - started
            return result
        try:
            stream = self.engine.exec_attach(container_id, **self.policy.collector_exec())
        except EngineError as exc:
            # e.g. the code exhausted the process limit, so not even the collector can start
            running, oom = self.engine.is_running(container_id)
            if not running:
                result.sandbox_stopped = True
                result.container_oom = self._stopped_by_oom(container_id, oom)
            self.engine.kill(container_id)
            result.skipped.append(SkippedOutput(OUTPUT_FOLDER, f"not collected: {str(exc)[:200]}"))
            result.seconds = time.monotonic() - started
            return result
        receiver = self._receiver(destination)
        reader = FramesReader(self._collector_frames(stream))
        too_slow = []
        try:
            receiver.receive(reader)
            reader.drain()
        except DeadlineExceeded:
            too_slow.append(SkippedOutput(OUTPUT_FOLDER, "collection took too long"))
        finally:
            stream.close()
        report = _collector_report(bytes(reader.stderr))
        return self._collected(container_id, receiver, report, too_slow, started, trust=False)

    def _collected(
        self,
        container_id: str,
        receiver: OutputReceiver,
        report: dict,
        problems: list[SkippedOutput],
        started: float,
        trust: bool = True,
    ) -> Collected:
        """A collection's result from what arrived and the collector's report.

        trust: a report proves the sandbox alive (the warden, which runs only once the code is
        over). The one-shot collector runs after anything, a sandbox dying under it included, so
        with it the engine is asked as well.
        """
        result = Collected()
        result.files = receiver.files
        result.skipped = (
            problems
            + [
                SkippedOutput(
                    safe_filename(str(item.get("name", "?"))), str(item.get("reason", ""))
                )
                for item in report.get("skipped", [])
                if isinstance(item, dict)
            ]
            + receiver.skipped
        )
        more = report.get("skipped_more", 0)
        if isinstance(more, int) and more > 0:
            result.skipped.append(SkippedOutput(f"(+{more} more)", "skipped for the same reasons"))
        oom = report.get("oom_kills", 0)
        result.oom_kills = oom if isinstance(oom, int) else 0
        if report and trust:
            result.seconds = time.monotonic() - started
            return result
        # The warden keeps a healthy sandbox running; if it stopped meanwhile it died under the
        # code (gVisor with exhausted processes), and the runner's exit status was not the code's.
        running, container_oom = self.engine.is_running(container_id)
        # The collector always reports unless the sandbox died under it; gVisor tears a sandbox
        # down in steps, so give the engine a moment to see the death.
        settle = time.monotonic() + 3
        while running and not report and time.monotonic() < settle:
            time.sleep(0.1)
            running, container_oom = self.engine.is_running(container_id)
        if not running:
            result.sandbox_stopped = True
            result.container_oom = self._stopped_by_oom(container_id, container_oom)
        result.seconds = time.monotonic() - started
        return result

    def _reap_code_processes(self, container_id: str, wait: float = 5.0) -> None:
        """After a timeout: stop the code's processes with a shell before the collector starts."""
        try:
            stream = self.engine.exec_attach(container_id, **self.policy.reaper_exec())
        except EngineError:
            return  # the collector's own reaping, or killing the container, still follows
        try:
            for _ in stream.frames(time.monotonic() + wait):
                pass
        except DeadlineExceeded:
            pass
        finally:
            stream.close()

    def _collector_frames(self, stream: ExecStream) -> Iterator[tuple[int, bytes]]:
        """The collector's frames: the first within collector_start_timeout, all within
        collect_timeout."""
        started = time.monotonic()
        first = stream.next_chunk(started + self.policy.collector_start_timeout)
        if first is not None:
            yield first
            yield from stream.frames(started + self.policy.collect_timeout)

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


def _collector_report(raw: bytes) -> dict:
    try:
        report = json.loads(raw.decode("utf-8", errors="replace") or "{}")
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}
