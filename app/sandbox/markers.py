"""The bytes the in-container runner writes to tell the host where it is in a run.

The runner (sandbox-image/runtime/sandbox_runner.py) cannot import this package: it runs in the
image. tests/unit/test_markers.py reads its constants and fails when the two sides differ.
"""

from __future__ import annotations

import re

# Written once, before any user code exists: setup is over and the timer may start.
READY_MARKER = b"\x1e\x1ecodeinterp-ready\n"
# The host's first line to the runner, before the job: a nonce made for this run. Only the runner
# reads it (the code's processes were forked before it came, never hold the runner's stdin, and
# cannot read the memory of the runner, which is not dumpable).
NONCE_LINE = b"nonce "
# Written last on stdout and on stderr when the code is over, followed by its exit status, a
# space and the run's nonce: the code cannot forge it, so the host stops at it and need not wait
# for the streams' end to be sure that no output is still on its way behind it.
DONE_MARKER = b"\x1e\x1ecodeinterp-done "


def done_pattern(nonce: bytes) -> re.Pattern[bytes]:
    """The runner's done marker of the run with this nonce, at the end of a stream."""
    return re.compile(re.escape(DONE_MARKER) + rb"(\d{1,3}) " + re.escape(nonce) + rb"\n\Z")


def done_tail(nonce: bytes) -> int:
    """The longest done marker of the run with this nonce."""
    return len(DONE_MARKER) + 4 + len(nonce) + 1


# The runner's process name once the code is over, then "-" and the status (read by the warden).
DONE_NAME = "cidone"
# With a session's state: written by the run's child when the restored state is in place and the
# code starts, and when the code is over and its state is being saved (then its exit status). The
# exec timer counts only the time between; the code can print them too, which only shortens its
# own time (each phase has its own bound).
CODE_MARKER = b"\x1e\x1ecodeinterp-code\n"
SAVE_MARKER = b"\x1e\x1ecodeinterp-save "
SAVE_PATTERN = re.compile(re.escape(SAVE_MARKER) + rb"(\d{1,3})\n")
PHASE_TAIL = len(SAVE_MARKER) + 4
