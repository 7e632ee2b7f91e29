"""The timed step of a run: hand the code over and read until the code is over.

The code is over when the runner's done markers end both of its streams and the output warden
(another uid) confirms that no process of the code is left, or when the runner's stream ends.
Each run has a nonce that only the runner reads (the first line the host sends, before the job)
and writes in its markers: markers the code prints never end the run, and once both streams end
with the runner's own, nothing of the code's output can still be behind them.
At the timeout the runner (already running, so no exec is needed) is told to stop the code; the
host never starts a process as the code's uid while the code may still run, since the code could
stop or take over anything of its uid, `runc init` of an exec included. Every LIVENESS_INTERVAL,
the container is checked: a sandbox that died ends the step at once instead of at the timeout.
Output is kept up to a cap while it is read, so a flood costs the host no memory.
The warden's own deadline is armed as the code is handed over: when this process is gone or
stuck, the sandbox still ends shortly after the timeout.

With a session's state the child restores the state before the code and saves it after; its
phase markers (app/sandbox/markers.py) move the timer: restoring and saving each get
`state_seconds` of their own, and the timeout counts only the code between them. Code that
prints a marker itself only gives up time of its own; at most it gets both bounds beside its
timeout. A save that overruns its bound is stopped like a timeout, but the run keeps the code's
status and only its state is not saved.
"""

from __future__ import annotations

import codecs
import secrets
import time
from dataclasses import dataclass

import structlog

from app.sandbox.engine import STDERR, STDOUT, DeadlineExceeded, Engine, ExecStream
from app.sandbox.markers import CODE_MARKER, NONCE_LINE, PHASE_TAIL, SAVE_PATTERN
from app.sandbox.warden import DoneWatch, Warden, WardenGone

# How often the exec step checks that the container is still alive. Under gVisor an exec stream
# stays open when the whole sandbox dies (e.g. its memory cgroup killed it), so EOF alone is not
# enough to notice the end of a run.
LIVENESS_INTERVAL = 1.0
# How long a runner told to `stop` at the timeout has to kill the code and say it is done. It
# needs milliseconds; only code that stopped or killed its runner makes it wait this long.
STOP_GRACE = 5.0
# The sandbox's own deadline (the warden's, which nothing of the code's uid can stop) comes this
# long after the host's own stop would have: the host normally acts first, and the warden ends
# the sandbox only when the host is not there to (it died, hangs or lost the engine).
WARDEN_MARGIN = 2.0
log = structlog.get_logger(__name__)


class CappedBuffer:
    """Keeps the first `cap` bytes of a stream and remembers whether more arrived."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.truncated = False
        self.received = 0
        self.phases = False

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
        self.received += len(chunk)

    def drop_tail(self, n: int) -> None:
        """Forget the last `n` bytes received (the runner's done marker is not output)."""
        if n <= 0:
            return
        self.received -= n
        del self.data[self.received :]
        self.truncated = self.received > self.cap

    def text(self) -> str:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        data = bytes(self.data)
        if self.phases:  # the runner's phase markers are not output
            data = SAVE_PATTERN.sub(b"", data.replace(CODE_MARKER, b""))
        # A cut in the middle of a character drops the partial character instead of mangling it.
        return decoder.decode(data, final=not self.truncated)


@dataclass
class ExecOutcome:
    stdout: CappedBuffer
    stderr: CappedBuffer
    timed_out: bool
    seconds: float
    sandbox_died: bool = False
    collecting: bool = False
    """The warden confirmed that the code is over and is sending the outputs."""
    done_status: int | None = None
    """The code's exit status as the warden read it (None: the runner was gone; ask the engine)."""
    runner_lost: bool = False
    """Told to stop at the timeout, the runner did not: the code stopped or killed it."""
    watch: DoneWatch | None = None
    """With `collecting`: the tails of both streams, for finish_streams."""
    restore_seconds: float = 0.0
    save_seconds: float = 0.0
    save_overrun: bool = False
    """Saving the state took longer than its bound and was stopped (the state is not saved)."""
    code_status: int | None = None
    """The code's exit status as the save marker said (used when the save was stopped)."""


class PhaseWatch:
    """The timer of a run with state: restore (bounded) -> code (the timeout) -> save (bounded),
    moved by the phase markers on stdout (a marker split across chunks is found too)."""

    def __init__(self, started: float, timeout: float, state_seconds: float | None) -> None:
        self.timeout = timeout
        self.state_seconds = state_seconds
        self.started = started
        self.phase = "code" if state_seconds is None else "restore"
        self.code_started = started
        self.code_ended: float | None = None
        self.saved_at: float | None = None
        self.status: int | None = None
        self.limit = started + (timeout if state_seconds is None else state_seconds)
        self._tail = b""

    def feed(self, chunk: bytes, now: float) -> None:
        if self.phase not in ("restore", "code"):
            return
        data = self._tail + chunk
        self._tail = data[-PHASE_TAIL:]
        if self.phase == "restore" and CODE_MARKER in data:
            self._code_starts(now)
            data = data[data.index(CODE_MARKER) + len(CODE_MARKER) :]
        if self.phase == "code" and self.state_seconds is not None:
            match = SAVE_PATTERN.search(data)
            if match:
                self.status = int(match.group(1))
                self.code_ended = now
                self.phase = "save"
                self.limit = now + self.state_seconds

    def expired(self, now: float) -> bool:
        """The limit passed: True when the run's own time is up (a restore that overran starts
        the code's timer instead)."""
        if self.phase == "restore":
            self._code_starts(self.limit)
            return False
        return True

    def _code_starts(self, now: float) -> None:
        self.phase = "code"
        self.code_started = now
        self.limit = now + self.timeout

    def code_seconds(self, now: float) -> float:
        end = self.code_ended if self.code_ended is not None else now
        return max(0.0, end - self.code_started)


def timed_exec(
    engine: Engine,
    container_id: str,
    stream: ExecStream,
    warden: Warden,
    payload: bytes,
    timeout: float,
    max_stream_bytes: int,
    state_seconds: float | None = None,
) -> ExecOutcome:
    """Blocking: send the job, read both streams until the code is over. When `timeout` passes,
    the runner is told to `stop` the code and given STOP_GRACE to do so and say it is done; a
    runner that does not (the code stopped or killed it) leaves the run `runner_lost`.
    `state_seconds`: the run restores and saves a session's state, each within that bound."""
    stdout = CappedBuffer(max_stream_bytes)
    stderr = CappedBuffer(max_stream_bytes)
    stdout.phases = state_seconds is not None
    nonce = secrets.token_hex(16).encode()
    watch: DoneWatch | None = DoneWatch(nonce)
    timer = PhaseWatch(time.monotonic(), timeout, state_seconds)
    timed_out = died = lost = overrun = False
    seconds: float | None = None

    def outcome(**extra) -> ExecOutcome:
        now = time.monotonic()
        code_seconds = seconds if seconds is not None else timer.code_seconds(now)
        saved = timer.code_ended
        return ExecOutcome(
            stdout,
            stderr,
            timed_out,
            code_seconds,
            restore_seconds=max(0.0, timer.code_started - timer.started) if state_seconds else 0.0,
            save_seconds=(now - saved) if saved is not None else 0.0,
            save_overrun=overrun,
            code_status=timer.status,
            **extra,
        )

    try:
        # Restoring and saving a session's state each have their bound beside the timeout.
        warden.arm(timeout + 2 * (state_seconds or 0.0) + STOP_GRACE + WARDEN_MARGIN)
        stream.send(NONCE_LINE + nonce + b"\n" + payload)
        while True:
            check_at = min(timer.limit, time.monotonic() + LIVENESS_INTERVAL)
            try:
                item = stream.next_chunk(check_at)
            except DeadlineExceeded:
                now = time.monotonic()
                if now < timer.limit:
                    if not engine.is_running(container_id)[0]:
                        died = True
                        break
                    continue
                if not timer.expired(now):
                    continue  # the restore overran its bound: the code's timer runs now
                if timed_out or overrun:
                    lost = True  # the runner did not stop the code in time
                    break
                if timer.phase == "save":
                    overrun = True
                else:
                    timed_out, seconds = True, timer.code_seconds(now)
                stream.send(b"stop\n")
                timer.limit = time.monotonic() + STOP_GRACE
                continue
            if item is None:
                break
            kind, chunk = item
            (stdout if kind == STDOUT else stderr).add(chunk)
            if kind == STDOUT:
                timer.feed(chunk, time.monotonic())
            if watch is None:
                continue
            watch.add(kind, chunk)
            if not watch.should_ask():
                continue
            if seconds is None and not timed_out:
                seconds = timer.code_seconds(time.monotonic())
            watch.asked()
            answer = ask_warden(warden)
            if answer.startswith("collecting"):
                status = answer.partition(" ")[2]
                return outcome(
                    collecting=True,
                    done_status=int(status) if status.isdigit() else None,
                    watch=watch,
                )
            if not timed_out:
                seconds = None  # busy: a process of the code outlived the runner; read on
            if answer != "busy":
                # The warden is gone: the runner's exit ends the step; the outputs are lost.
                stdout.drop_tail(watch.marker_length(STDOUT))
                stderr.drop_tail(watch.marker_length(STDERR))
                watch = None
                stream.close_input()
    except OSError:
        pass  # the runner went away while we wrote: its exit status tells why
    if not timed_out:
        # The time ran out while this process could not act (stopped, starved): the sandbox's
        # own deadline ended the code, which is a timeout, not a crash.
        spent = seconds if seconds is not None else timer.code_seconds(time.monotonic())
        timed_out = spent >= timeout
    return outcome(sandbox_died=died, runner_lost=lost)


def finish_streams(stream: ExecStream, outcome: ExecOutcome) -> None:
    """After the warden said `collecting`: drop the runner's done markers from the output and
    close its stdin (it exits). Both streams ended with the markers of this run's nonce, which
    the runner writes after every process of the code is gone: no output is still on its way, so
    the host does not wait for the streams' end."""
    watch = outcome.watch
    if watch is None:
        return
    stream.close_input()
    outcome.stdout.drop_tail(watch.marker_length(STDOUT))
    outcome.stderr.drop_tail(watch.marker_length(STDERR))


def ask_warden(warden: Warden) -> str:
    """`collecting [status]`, `busy` (a process of the code is still there; read on), or `gone`."""
    try:
        answer = warden.ask()
    except WardenGone as exc:
        log.warning("output warden gone", error=str(exc))
        return "gone"
    return answer if answer == "busy" or answer.startswith("collecting") else "gone"
