"""Trusted output collector: reads a run's output folder once the code is over.

It writes the regular files of the output folder to stdout as a tar stream, and a JSON report
(skipped entries, OOM kills seen by the container's cgroup) to stderr. It never follows a symbolic
link and never opens a FIFO, socket or device; hidden entries are skipped; the number of files,
their total size and the folder depth are capped.

Two ways to start it:
- one-shot (`docker exec` as the code's uid, after the code ended or timed out): it first kills
  every remaining process of the sandbox user, then collects;
- warden (`--serve --code-uid N`): the sandbox's main process, under the keeper's uid, which the
  code cannot signal, trace or impersonate. It says `ready` on stderr and waits on stdin (the
  host's attach). For each `collect` line it checks that the code is over (`code_over`) and
  answers one line on stderr: `busy` (ask again later), `fallback <reason>` (it cannot read
  everything; the host then uses the one-shot way), or `collecting [exit status]`, followed by
  the tar on stdout and the report line on stderr. Running from the start, it spares the host a
  `docker exec` and a Python start-up on the reply's path. It cannot kill anything: when
  processes are left, the host does the killing. It keeps the sandbox alive until the host
  removes it (stdin stays open when the host detaches).

The host re-checks everything it receives: this program runs from the read-only image, but the
folder it reads was written by untrusted code.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import stat
import sys
import tarfile

from sandbox_runner import DONE_NAME, processes_of, reap_other_processes

MAX_REPORTED_SKIPS = 50


class Collector:
    def __init__(self, root: str, max_files: int, max_bytes: int, max_depth: int) -> None:
        self.root = root
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.files: list[tuple[str, os.stat_result]] = []
        self.total = 0
        self.skipped: list[dict[str, str]] = []
        self.skipped_more = 0
        self.denied: list[str] = []
        """Entries this process has no permission to read (the warden is not the code's uid)."""

    def skip(self, relpath: str, reason: str) -> None:
        if len(self.skipped) < MAX_REPORTED_SKIPS:
            self.skipped.append({"name": relpath, "reason": reason})
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
                if exc.errno == errno.EACCES:
                    self.denied.append(rel_dir or ".")
                self.skip(rel_dir or ".", f"unreadable folder ({exc.strerror})")
                continue
            subdirs = []
            for entry in entries:
                rel = os.path.join(rel_dir, entry.name)
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    if exc.errno == errno.EACCES:
                        self.denied.append(rel)
                    self.skip(rel, f"unreadable ({exc.strerror})")
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
                else:
                    if not os.access(entry.path, os.R_OK):
                        self.denied.append(rel)
                    self.files.append((rel, st))
                    self.total += st.st_size
            stack.extend(reversed(subdirs))

    def write_tar(self, out) -> None:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for rel, st in self.files:
                path = os.path.join(self.root, rel)
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError as exc:
                    self.skip(rel, f"unreadable ({exc.strerror})")
                    continue
                with os.fdopen(fd, "rb") as fh:
                    now = os.fstat(fh.fileno())
                    if not stat.S_ISREG(now.st_mode) or now.st_ino != st.st_ino:
                        self.skip(rel, "changed while collecting")
                        continue
                    info = tarfile.TarInfo(rel)
                    info.size = now.st_size
                    info.mtime = int(now.st_mtime)
                    info.mode = 0o644
                    tar.addfile(info, fh)


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


def collect_once(args: argparse.Namespace) -> int:
    reap_other_processes()
    collector = Collector(args.root, args.max_files, args.max_bytes, args.max_depth)
    collector.scan()
    collector.write_tar(sys.stdout.buffer)
    sys.stdout.buffer.flush()
    sys.stderr.write(report(collector))
    sys.stderr.flush()
    return 0


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


def say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def serve(args: argparse.Namespace) -> int:
    say("ready")
    for request in sys.stdin.buffer:
        if request.strip() != b"collect":
            continue
        status = code_over(args.code_uid)
        if status is None:
            say("busy")
            continue
        collector = Collector(args.root, args.max_files, args.max_bytes, args.max_depth)
        collector.scan()
        if collector.denied:
            say(f"fallback unreadable: {collector.denied[0][:100]}")
            continue
        say(f"collecting {status}".strip())
        collector.write_tar(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        say(report(collector))
    # stdin closed: the sandbox is being removed. Stay until then rather than stop it early.
    signal.pause()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="/mnt/output")
    parser.add_argument("--max-files", type=int, required=True)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--max-depth", type=int, default=8)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--code-uid", type=int, default=10001)
    args = parser.parse_args(argv)
    return serve(args) if args.serve else collect_once(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
