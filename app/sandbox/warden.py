"""Host side of the output warden (sandbox-image/runtime/sandbox_collect.py --serve).

The warden is started in every sandbox together with the runner, under the keeper's uid: the code
cannot signal it, trace it or write into its stream. Its stderr is a line channel (`ready`, then
one answer per request: `busy` or `collecting [exit status]`, the latter followed by the output
stream on stdout and a JSON report line on stderr). It is the only collector: nothing running as
the code's uid is ever asked for, or believed about, the outputs.

When the runner's done markers arrive (with the run's nonce: the code cannot print those), the
host asks `collect`. The warden answers `collecting` only when no process of the code is left and
the runner has renamed itself done (which the code cannot do for it), with the status from that
name, so the status is never the code's word. At the timeout the runner stops the code and says
it is done, so the same `collect` follows. When the runner's stream ends without its markers (the
code killed it) the host asks `collect-if-gone`: the warden collects only once no process of the
code's uid is left at all.

The warden is also the sandbox's own deadline (`arm`, sent as the code is handed over) and ends
the sandbox when this attach closes: the host going away ends its sandboxes within moments.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterator

from app.sandbox.engine import STDOUT, DeadlineExceeded, ExecStream
from app.sandbox.markers import DONE_MARKER, done_pattern, done_tail

__all__ = ["DONE_MARKER", "DoneWatch", "Warden", "WardenGone"]

ANSWER_TIMEOUT = 5.0
MAX_LINE = 65536


class WardenGone(RuntimeError):
    """The warden did not answer (it died, or the sandbox did): the outputs are lost."""


class DoneWatch:
    """Watches the ends of the runner's stdout and stderr for its done markers, those with this
    run's nonce (which the code never holds, so it cannot print them).

    The runner writes its marker last on both streams, after the code's processes are gone; each
    stream is in order, so once both end with its marker all of the code's output has arrived.
    """

    def __init__(self, nonce: bytes) -> None:
        self._pattern = done_pattern(nonce)
        self._tail = done_tail(nonce)
        self._tails = {STDOUT: b"", 2: b""}
        self._received = 0
        self._asked_at = -1

    def add(self, kind: int, chunk: bytes) -> None:
        self._tails[kind] = (self._tails[kind] + chunk)[-self._tail :]
        self._received += len(chunk)

    def ends_with_markers(self) -> bool:
        return all(self._pattern.search(tail) for tail in self._tails.values())

    def should_ask(self) -> bool:
        """Markers at both ends, and output arrived since the warden last said `busy`."""
        return self._received != self._asked_at and self.ends_with_markers()

    def asked(self) -> None:
        self._asked_at = self._received

    def marker_length(self, kind: int) -> int:
        match = self._pattern.search(self._tails[kind])
        return len(match.group(0)) if match else 0


class Warden:
    def __init__(self, stream: ExecStream) -> None:
        self.stream = stream
        self._lines = bytearray()
        # stdout and stderr are separate pipes: the outputs may overtake the `collecting` line.
        self._early: deque[bytes] = deque()

    def await_ready(self, deadline: float) -> None:
        try:
            line = self._line(deadline)
        except DeadlineExceeded:
            line = "no answer in time"
        if line != "ready":
            raise WardenGone(f"the output warden did not start: {line!r}")

    def arm(self, seconds: float) -> None:
        """Start the run's own deadline: past `seconds`, the warden ends the sandbox if the code
        still runs, whoever is (or is not) left on the host. No answer: the timer starts now."""
        try:
            self.stream.send(f"deadline {seconds:.3f}\n".encode())
        except OSError:
            pass  # gone: the next question says so

    def ask(self, request: str = "collect", timeout: float = ANSWER_TIMEOUT) -> str:
        """Ask `collect` or `collect-if-gone`; the one-line answer (see the module doc)."""
        try:
            self.stream.send(request.encode() + b"\n")
        except OSError:
            raise WardenGone("the output warden is gone") from None
        try:
            answer = self._line(time.monotonic() + timeout, keep_stdout=True)
        except DeadlineExceeded:
            answer = None
        if answer is None:
            raise WardenGone("the output warden did not answer")
        return answer

    def output_frames(self, deadline: float) -> Iterator[tuple[int, bytes]]:
        """The output stream on stdout after `collecting`; stderr is kept for the report line."""
        while self._early:
            yield STDOUT, self._early.popleft()
        while (item := self.stream.next_chunk(deadline)) is not None:
            kind, chunk = item
            if kind == STDOUT:
                yield item
            else:
                self._keep(chunk)

    def report(self, deadline: float) -> dict:
        """The JSON report line that ends a collection; {} when it did not come."""
        try:
            line = self._line(deadline)
        except DeadlineExceeded:
            return {}
        try:
            report = json.loads(line or "{}")
        except ValueError:
            return {}
        return report if isinstance(report, dict) else {}

    def is_quiet(self) -> bool:
        return not self._lines and not self._early and self.stream.is_quiet()

    def close(self) -> None:
        self.stream.close()

    def _keep(self, chunk: bytes) -> None:
        self._lines += chunk[: max(0, MAX_LINE - len(self._lines))]

    def _line(self, deadline: float, keep_stdout: bool = False) -> str | None:
        """The next stderr line; None at EOF. stdout that arrives meanwhile is the start of the
        output stream (keep_stdout) or dropped."""
        while b"\n" not in self._lines:
            if len(self._lines) >= MAX_LINE:
                return None
            item = self.stream.next_chunk(deadline)
            if item is None:
                return None
            kind, chunk = item
            if kind != STDOUT:
                self._keep(chunk)
            elif keep_stdout:
                self._early.append(chunk)
        line, _, rest = bytes(self._lines).partition(b"\n")
        self._lines = bytearray(rest)
        return line.decode("utf-8", errors="replace")
