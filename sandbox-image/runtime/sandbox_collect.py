"""The output warden: reads a run's output folder once the code is over, as another uid.

It is the sandbox's main process (`--serve --code-uid N`), under the keeper's uid, which the code
cannot signal, trace or impersonate. It says `ready` on stderr and waits on stdin (the host's
attach). For each request line it answers one line on stderr:

- `collect` (the runner's done markers arrived): if nothing of the code is left but the runner,
  named done (`code_over`), `collecting <exit status>`; else `busy` (ask again later).
- `collect-if-gone` (the runner died: the code may have killed it): if no process of the
  code's uid is left at all, `collecting`; else `busy`.
- `deadline <seconds>` (sent as the code is handed over; no answer): the run's own deadline,
  see below.

`collecting` is followed by the output stream on stdout (app/sandbox/outputs.py describes its
framing) and a JSON report line on stderr (skipped entries, OOM kills seen by the container's
cgroup). It never follows a symbolic link and never opens a FIFO, socket or device; hidden entries
are skipped; the number of files, their total size and the folder depth are capped. It cannot
signal the code (the runner stops it at the timeout; when processes are left, the host kills
the container and drops the outputs), and the host believes nothing that runs as the code's
uid. Running from the start, it spares the host a `docker exec` and a Python start-up on the
reply's path.

It is also the sandbox's own deadline, which nothing of the code's uid can stop: the sandbox
ends when this process exits (docker-init exits with it and the kernel kills every process of
the container). It exits when its stdin closes (the container is created with StdinOnce, so
that is the host's attach going away: its controller died or let go), when the run's deadline
has passed with a process of the code still running (the host was not there to stop it), when
the collection time after that deadline has passed too, and, before any run, after the
container's longest idle life (`--idle-seconds`).

The host re-checks everything it receives: this program runs from the read-only image, but the
folder it reads was written by untrusted code.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import struct
import sys
import threading
import time

from sandbox_runner import DONE_NAME, processes_of

MAX_REPORTED_SKIPS = 50
MAX_REPORTED_NAME = 200
# The output stream's framing: app/sandbox/outputs.py reads it (a unit test compares the two).
STREAM_MAGIC = b"CIOUT1\n"
FILE, DATA, DONE, END = b"F", b"D", b"Z", b"E"
# A file of the session's state folder (sandbox_state), framed as a file; never an output.
STATE = b"S"
STATE_FILES = ("notes", "state")
MAX_NOTES_BYTES = 64 * 1024
MAX_NAME_BYTES = 2048
MAX_CHUNK = 1024 * 1024


class Collector:
    def __init__(
        self,
        root: str,
        max_files: int,
        max_bytes: int,
        max_depth: int,
        state_root: str = "",
        state_max_bytes: int = 0,
    ) -> None:
        self.root = root
        self.state_root = state_root
        self.state_max_bytes = state_max_bytes
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.files: list[tuple[str, os.stat_result]] = []
        self.total = 0
        self.skipped: list[dict[str, str]] = []
        self.skipped_more = 0

    def skip(self, relpath: str, reason: str) -> None:
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append({"name": relpath[:MAX_REPORTED_NAME], "reason": reason})
        else:
            self.skipped_more += 1

    def scan(self) -> None:
        """Choose the files to send, in a stable order, without opening any of them."""
        stack: list[tuple[str, int]] = [("", 0)]
        while stack:
            rel_dir, depth = stack.pop()
            try:
                with os.scandir(os.path.join(self.root, rel_dir)) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.skip(rel_dir or ".", f"unreadable folder ({_why(exc)})")
                continue
            subdirs = []
            for entry in entries:
                rel = os.path.join(rel_dir, entry.name)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    self.skip(rel, f"unreadable ({_why(exc)})")
                    continue
                if entry.name.startswith("."):
                    self.skip(rel, "hidden")
                elif stat.S_ISLNK(st.st_mode):
                    self.skip(rel, "symbolic link (never followed)")
                elif stat.S_ISDIR(st.st_mode):
                    if depth + 1 > self.max_depth:
                        self.skip(rel, "folder nested too deep")
                    else:
                        subdirs.append((rel, depth + 1))
                elif not stat.S_ISREG(st.st_mode):
                    self.skip(rel, "not a regular file")
                elif len(self.files) >= self.max_files:
                    self.skip(rel, f"over the limit of {self.max_files} files")
                elif self.total + st.st_size > self.max_bytes:
                    self.skip(rel, f"over the total size limit of {self.max_bytes} bytes")
                elif not os.access(entry.path, os.R_OK):
                    self.skip(rel, "unreadable (made private by the code)")
                else:
                    self.files.append((rel, st))
                    self.total += st.st_size
            stack.extend(reversed(subdirs))

    def write_stream(self, out) -> None:
        """The chosen files in the output stream's framing (see the module doc)."""
        out.write(STREAM_MAGIC)
        for rel, st in self.files:
            name = os.fsencode(rel)
            if len(name) > MAX_NAME_BYTES:
                self.skip(rel, "name too long")
                continue
            try:
                path = os.path.join(self.root, rel)
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError as exc:
                self.skip(rel, f"unreadable ({_why(exc)})")
                continue
            self._send(out, FILE, name, fd, st, rel)
        if self.state_root:
            self._send_state(out)
        out.write(END)

    def _send_state(self, out) -> None:
        """The session's state files, when they are regular files within their caps (else the
        host keeps the state before this run)."""
        for name in STATE_FILES:
            cap = self.state_max_bytes if name == "state" else MAX_NOTES_BYTES
            path = os.path.join(self.state_root, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            self._send(out, STATE, name.encode(), fd, st, None)

    def _send(self, out, kind: bytes, name: bytes, fd: int, st, rel: str | None) -> None:
        with os.fdopen(fd, "rb") as fh:
            now = os.fstat(fh.fileno())
            if not stat.S_ISREG(now.st_mode) or now.st_ino != st.st_ino:
                if rel is not None:
                    self.skip(rel, "changed while collecting")
                return
            out.write(kind + struct.pack(">H", len(name)) + name)
            left = st.st_size  # what the caps were checked against
            while left > 0:
                chunk = fh.read(min(MAX_CHUNK, left))
                if not chunk:
                    break
                out.write(DATA + struct.pack(">I", len(chunk)) + chunk)
                left -= len(chunk)
            whole = left == 0 and not fh.read(1)
            out.write(DONE + (b"\x01" if whole else b"\x00"))
            if not whole and rel is not None:
                self.skip(rel, "changed while collecting")


def _why(exc: OSError) -> str:
    if exc.errno == errno.EACCES:
        return "made private by the code"
    return exc.strerror or str(exc)


def oom_kills() -> int:
    """OOM kills in this container's memory cgroup (v1 or v2), 0 when unknown."""
    for path, key in (
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    ):
        try:
            with open(path) as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def report(collector: Collector) -> str:
    return json.dumps(
        {
            "skipped": collector.skipped,
            "skipped_more": collector.skipped_more,
            "oom_kills": oom_kills(),
        }
    )


def code_over(code_uid: int) -> str | None:
    """None while the code may still act; else the runner's exit status ("" if it is gone).

    Over means: no process of the code's uid is left but the runner (started by exec: parent 0),
    and the runner, if still there, has named itself done (only it can: it is not traceable).
    """
    status = ""
    for _pid, parent, name in processes_of(code_uid):
        if parent != 0 or not name.startswith(DONE_NAME + "-"):
            return None
        status = name[len(DONE_NAME) + 1 :]
    return status if status.isdigit() or not status else None


def nothing_left(code_uid: int) -> bool:
    """After the host's reaping: no process of the code's uid at all, the runner included."""
    return not processes_of(code_uid)


class Deadline:
    """The sandbox's own end: a thread that exits the process when the time is up.

    Before a run the limit is the container's idle life; `arm` sets the run's: at `seconds` the
    code must be over (else the process exits at once), and `collect_seconds` later the host
    must have collected and removed the sandbox (else the process exits anyway).
    """

    def __init__(self, code_uid: int, idle_seconds: float, collect_seconds: float) -> None:
        self.code_uid = code_uid
        self.collect_seconds = collect_seconds
        self._changed = threading.Condition()
        self._kill_at = self._end_at = time.monotonic() + idle_seconds

    def arm(self, seconds: float) -> None:
        with self._changed:
            self._kill_at = time.monotonic() + seconds
            self._end_at = self._kill_at + self.collect_seconds
            self._changed.notify()

    def start(self) -> None:
        threading.Thread(target=self._watch, name="deadline", daemon=True).start()

    def _watch(self) -> None:
        checked = False
        with self._changed:
            while True:
                now = time.monotonic()
                if now >= self._end_at:
                    _end(EXIT_COLLECT_DEADLINE)
                if now >= self._kill_at and not checked:
                    if code_over(self.code_uid) is None and not nothing_left(self.code_uid):
                        _end(EXIT_DEADLINE)
                    checked = True
                wake = self._end_at if checked else self._kill_at
                if self._changed.wait(max(0.01, wake - now)):
                    checked = False  # re-armed


# The warden's (and so the container's) exit status when it ends the sandbox itself.
EXIT_DEADLINE = 124
EXIT_COLLECT_DEADLINE = 125
EXIT_CONTROLLER_GONE = 0
LINGER_SECONDS = 1.0


def _end(status: int) -> None:
    """End the sandbox now: docker-init exits with this process, the kernel kills the rest."""
    try:
        sys.stderr.flush()
    finally:
        os._exit(status)


def say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def serve(args: argparse.Namespace) -> int:
    deadline = Deadline(args.code_uid, args.idle_seconds, args.collect_seconds)
    deadline.start()
    say("ready")
    for line in sys.stdin.buffer:
        request = line.strip()
        if request.startswith(b"deadline "):
            try:
                deadline.arm(max(0.0, float(request.split()[1])))
            except (IndexError, ValueError):
                pass
            continue
        if request == b"collect":
            status = code_over(args.code_uid)
        elif request == b"collect-if-gone":
            status = "" if nothing_left(args.code_uid) else None
        else:
            continue
        if status is None:
            say("busy")
            continue
        collector = Collector(
            args.root,
            args.max_files,
            args.max_bytes,
            args.max_depth,
            args.state_root,
            args.state_max_bytes,
        )
        collector.scan()
        say(f"collecting {status}".strip())
        collector.write_stream(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        say(report(collector))
    # stdin closed: the host is done with the sandbox, or its controller is gone. The runner
    # (its stdin closed too) exits at once and may still be writing its last bytes: give it a
    # moment, then end the sandbox with whatever of the code is still running.
    end = time.monotonic() + LINGER_SECONDS
    while processes_of(args.code_uid) and time.monotonic() < end:
        time.sleep(0.02)
    _end(EXIT_CONTROLLER_GONE)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="/mnt/output")
    parser.add_argument("--max-files", type=int, required=True)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--state-root", default="")
    parser.add_argument("--state-max-bytes", type=int, default=0)
    parser.add_argument("--serve", action="store_true", required=True)
    parser.add_argument("--code-uid", type=int, required=True)
    parser.add_argument("--idle-seconds", type=float, default=3600.0)
    parser.add_argument("--collect-seconds", type=float, default=60.0)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
